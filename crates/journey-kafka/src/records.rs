//! What the runtime reads and writes besides commands and decisions (which are produced
//! straight from the engine's effects), as plain values: the decoding of one input record into
//! an event ([`decode_record`]), changelog entries and the dead-letter record of a bad input.
//! Keeping this pure lets it be tested without a broker; the worker only hands records in and
//! values out.

use journey_engine::formats::Format;
use journey_engine::{decode_event, Event, EventError};
use journey_spec::{Config, InputFormat, UnknownEvents};
use rdkafka::message::{Headers, Message};

/// Longest record key quoted in a dead-letter reason, in characters.
const MAX_QUOTED_KEY: usize = 300;

/// A decoded input record.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub event: Event,
    /// The configured event catalogue does not list the event's type (and says to count it).
    pub uncatalogued: bool,
}

/// Decodes one input record of `topic` into an event (docs/reference/events.md): the value is
/// parsed and validated in the topic's format (native, Segment, CloudEvents: `headers` carry
/// CloudEvents binary-mode attributes), the record key must be the event's `customer_id`
/// (after decoding: a Segment `userId`, a CloudEvents `subject`...), and with an event
/// catalogue an event of an unlisted type is counted or rejected (`unknown_events`). An error
/// is the dead-letter reason: its `kind` is the metric label, its message the `error` header.
/// `headers` are the record's headers (name, value).
pub fn decode_record(
    config: &Config,
    topic: &str,
    key: Option<&[u8]>,
    headers: &[(&str, &[u8])],
    payload: &[u8],
) -> Result<Decoded, EventError> {
    let format = match config.kafka.input_format(topic) {
        InputFormat::Native => Format::Native,
        InputFormat::Segment => Format::Segment,
        InputFormat::CloudEvents {
            customer_id_attribute,
        } => Format::CloudEvents {
            customer_id_attribute,
        },
    };
    let event = decode_event(format, payload, headers, config.kafka.max_event_bytes)?;
    check_key(key, &event.customer_id)?;
    let mut uncatalogued = false;
    if let Some(catalog) = &config.event_catalog {
        if !catalog.knows(&event.event_type) {
            match catalog.unknown_events {
                UnknownEvents::Count => uncatalogued = true,
                UnknownEvents::DeadLetter => {
                    return Err(EventError {
                        kind: "unknown_type",
                        message: format!(
                            "event type `{}` is not in the event catalog",
                            event.event_type
                        ),
                    })
                }
            }
        }
    }
    Ok(Decoded {
        event,
        uncatalogued,
    })
}

/// The record key must be the customer id, so that all of a customer's records share one
/// partition (and one engine).
fn check_key(key: Option<&[u8]>, customer_id: &str) -> Result<(), EventError> {
    match key {
        Some(k) if k == customer_id.as_bytes() => Ok(()),
        Some(k) => {
            let shown: String = String::from_utf8_lossy(k)
                .chars()
                .take(MAX_QUOTED_KEY)
                .collect();
            Err(EventError {
                kind: "key_mismatch",
                message: format!(
                    "record key {shown:?} is not the event's customer_id {customer_id:?}"
                ),
            })
        }
        None => Err(EventError {
            kind: "key_mismatch",
            message: format!(
                "record has no key; it must be the event's customer_id {customer_id:?}"
            ),
        }),
    }
}

/// [`decode_record`] of a consumed Kafka record; counts an uncatalogued event in `metrics`.
pub fn decode_message(
    config: &Config,
    msg: &impl Message,
    metrics: &crate::metrics::Metrics,
) -> Result<Event, EventError> {
    let headers: Vec<(&str, &[u8])> = match msg.headers() {
        Some(h) => h
            .iter()
            .map(|h| (h.key, h.value.unwrap_or_default()))
            .collect(),
        None => Vec::new(),
    };
    let decoded = decode_record(
        config,
        msg.topic(),
        msg.key(),
        &headers,
        msg.payload().unwrap_or_default(),
    )?;
    if decoded.uncatalogued {
        metrics.uncatalogued_event(msg.topic());
    }
    Ok(decoded.event)
}

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
    use journey_spec::EventCatalog;

    const EVENT: &str = r#"{"event_id":"e-1","customer_id":"c-42","type":"cart_updated","timestamp":"2026-11-23T10:15:00Z","properties":{"cart_value":59.0}}"#;

    fn decode(config: &Config, key: Option<&[u8]>, payload: &str) -> Result<Decoded, EventError> {
        decode_record(config, "events", key, &[], payload.as_bytes())
    }

    fn with_catalog(unknown_events: UnknownEvents) -> Config {
        let mut config = Config::example();
        config.event_catalog = Some(EventCatalog {
            events: [("order_completed".to_string(), vec!["total".to_string()])]
                .into_iter()
                .collect(),
            unknown_events,
        });
        config
    }

    #[test]
    fn a_valid_record_keyed_by_its_customer_decodes() {
        let d = decode(&Config::example(), Some(b"c-42"), EVENT).unwrap();
        assert_eq!(d.event.customer_id, "c-42");
        assert_eq!(d.event.event_type, "cart_updated");
        assert!(!d.uncatalogued);
    }

    #[test]
    fn the_key_must_be_the_customer_id() {
        let config = Config::example();
        let e = decode(&config, Some(b"c-7"), EVENT).unwrap_err();
        assert_eq!(e.kind, "key_mismatch");
        assert_eq!(
            e.message,
            r#"record key "c-7" is not the event's customer_id "c-42""#
        );
        let e = decode(&config, None, EVENT).unwrap_err();
        assert_eq!(e.kind, "key_mismatch");
        assert_eq!(
            e.message,
            r#"record has no key; it must be the event's customer_id "c-42""#
        );
        // A bad value is reported as such, whatever the key.
        let e = decode(&config, Some(b"c-7"), "nope").unwrap_err();
        assert_eq!(e.kind, "not_json");
        // A long key is quoted shortened.
        let long = vec![b'k'; 10_000];
        let e = decode(&config, Some(&long), EVENT).unwrap_err();
        assert!(e.message.len() < 400, "{}", e.message);
    }

    #[test]
    fn the_topic_format_chooses_the_decoder() {
        let text = "journeys_dir: j\nkafka:\n  input_topics:\n    - events\n    - { name: web, format: segment }\n    - { name: crm, format: cloudevents, customer_id_attribute: customerid }\nchannels:\n  email: { address: email, consent: opt_out }\n";
        let config =
            journey_spec::parse_config(text, std::path::Path::new("journeyd.yaml"), &[]).unwrap();
        let segment = r#"{"type":"track","event":"cart_updated","userId":"c-42","messageId":"m-1","timestamp":"2026-11-23T10:15:00Z","properties":{"cart_value":59.0}}"#;
        let e = decode_record(&config, "web", Some(b"c-42"), &[], segment.as_bytes())
            .unwrap()
            .event;
        assert_eq!(
            (e.event_id.as_str(), e.event_type.as_str()),
            ("m-1", "cart_updated")
        );
        // The same record on a native topic is not a valid event.
        let err =
            decode_record(&config, "events", Some(b"c-42"), &[], segment.as_bytes()).unwrap_err();
        assert_eq!(err.kind, "missing_field");
        // Segment calls journeyd does not read are dead-lettered with a reason that says so.
        let group = segment.replace(r#""type":"track""#, r#""type":"group""#);
        let err = decode_record(&config, "web", Some(b"c-42"), &[], group.as_bytes()).unwrap_err();
        assert_eq!(err.kind, "unsupported");
        // CloudEvents in binary mode, the customer in an extension attribute; the key must be
        // that customer.
        let headers: Vec<(&str, &[u8])> = vec![
            ("ce_specversion", b"1.0"),
            ("ce_id", b"ce-1"),
            ("ce_source", b"/crm"),
            ("ce_type", b"profile_updated"),
            ("ce_time", b"2026-11-23T10:15:00Z"),
            ("ce_customerid", b"c-42"),
        ];
        let e = decode_record(
            &config,
            "crm",
            Some(b"c-42"),
            &headers,
            br#"{"tier":"vip"}"#,
        )
        .unwrap()
        .event;
        assert_eq!(
            (e.customer_id.as_str(), e.event_type.as_str()),
            ("c-42", "profile_updated")
        );
        let err = decode_record(&config, "crm", Some(b"c-1"), &headers, b"").unwrap_err();
        assert_eq!(err.kind, "key_mismatch");
    }

    #[test]
    fn uncatalogued_types_are_counted_or_dead_lettered() {
        let count = with_catalog(UnknownEvents::Count);
        assert!(decode(&count, Some(b"c-42"), EVENT).unwrap().uncatalogued);
        let order = EVENT.replace("cart_updated", "order_completed");
        assert!(!decode(&count, Some(b"c-42"), &order).unwrap().uncatalogued);
        let consent = EVENT.replace("cart_updated", "consent_updated");
        assert!(
            !decode(&count, Some(b"c-42"), &consent)
                .unwrap()
                .uncatalogued
        );
        let dead = with_catalog(UnknownEvents::DeadLetter);
        let e = decode(&dead, Some(b"c-42"), EVENT).unwrap_err();
        assert_eq!(e.kind, "unknown_type");
        assert_eq!(
            e.message,
            "event type `cart_updated` is not in the event catalog"
        );
        assert!(decode(&dead, Some(b"c-42"), &order).is_ok());
    }

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
