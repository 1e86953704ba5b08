//! What the runtime writes to Kafka besides commands and decisions (which are produced
//! straight from the engine's effects), as plain values: changelog entries and the dead-letter
//! record of a bad input. Keeping this pure lets it be tested without a broker; the
//! transaction only hands the values to the producer.

/// One record to produce inside the open transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub topic: String,
    /// Explicit partition (the changelog is written to the input partition's number); `None`
    /// lets the producer's partitioner choose by key.
    pub partition: Option<i32>,
    pub key: String,
    /// `None` is a tombstone (a customer without state in the compacted changelog).
    pub payload: Option<Vec<u8>>,
}

/// The changelog entry of one customer: its exported state, or a tombstone.
pub fn changelog_record(
    state_topic: &str,
    partition: i32,
    customer: &str,
    state: Option<Vec<u8>>,
) -> OutRecord {
    OutRecord {
        topic: state_topic.to_owned(),
        partition: Some(partition),
        key: customer.to_owned(),
        payload: state,
    }
}

/// Where a bad input record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// The dead-letter record for a bad input: the original key and payload unchanged, plus the
/// headers docs/reference/events.md documents (`error`, `source_topic`, `source_partition`,
/// `source_offset`).
pub fn dead_letter_record(
    dead_letter_topic: &str,
    source: &Source<'_>,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    error: &str,
) -> DeadLetter {
    DeadLetter {
        topic: dead_letter_topic.to_owned(),
        key: key.map(<[u8]>::to_vec),
        payload: payload.map(<[u8]>::to_vec),
        headers: dead_letter_headers(source, error),
    }
}

/// The headers of a dead-letter record, in a fixed order.
pub fn dead_letter_headers(source: &Source<'_>, error: &str) -> Vec<(String, String)> {
    vec![
        ("error".to_owned(), error.to_owned()),
        ("source_topic".to_owned(), source.topic.to_owned()),
        ("source_partition".to_owned(), source.partition.to_string()),
        ("source_offset".to_owned(), source.offset.to_string()),
    ]
}

/// A dead-letter record. Key and payload are raw bytes: a bad input need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_keeps_bytes_and_names_its_source() {
        let source = Source {
            topic: "events",
            partition: 4,
            offset: 1234,
        };
        let dl = dead_letter_record(
            "events.dead_letter",
            &source,
            Some(b"c-1"),
            Some(b"\xff not json"),
            "not JSON: expected value at line 1 column 1",
        );
        assert_eq!(dl.topic, "events.dead_letter");
        assert_eq!(dl.key.as_deref(), Some(&b"c-1"[..]));
        assert_eq!(dl.payload.as_deref(), Some(&b"\xff not json"[..]));
        assert_eq!(
            dl.headers,
            vec![
                (
                    "error".to_owned(),
                    "not JSON: expected value at line 1 column 1".to_owned()
                ),
                ("source_topic".to_owned(), "events".to_owned()),
                ("source_partition".to_owned(), "4".to_owned()),
                ("source_offset".to_owned(), "1234".to_owned()),
            ]
        );
    }

    #[test]
    fn dead_letter_without_key_or_payload() {
        let source = Source {
            topic: "t",
            partition: 0,
            offset: 0,
        };
        let dl = dead_letter_record("dl", &source, None, None, "empty record");
        assert_eq!(dl.key, None);
        assert_eq!(dl.payload, None);
    }

    #[test]
    fn changelog_record_targets_the_input_partition_and_tombstones_empty_state() {
        let r = changelog_record("journeyd.state", 3, "c-9", None);
        assert_eq!(r.partition, Some(3));
        assert_eq!(r.key, "c-9");
        assert_eq!(r.payload, None);
        let r = changelog_record("journeyd.state", 0, "c-1", Some(vec![1, 2]));
        assert_eq!(r.payload, Some(vec![1, 2]));
        assert_eq!(r.topic, "journeyd.state");
    }
}
