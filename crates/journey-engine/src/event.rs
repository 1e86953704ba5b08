//! Parsing and validation of behavioural events (docs/reference/events.md). A record that fails
//! here goes to the dead-letter topic with the readable message as its `error` header.

use crate::{Event, EventError};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Largest accepted `customer_id`, in bytes.
pub const MAX_CUSTOMER_ID_BYTES: usize = 256;
/// Largest accepted `type`, in bytes.
pub const MAX_TYPE_BYTES: usize = 128;

fn err(kind: &'static str, message: String) -> EventError {
    EventError { kind, message }
}

/// A required string field taken from its parsed value.
fn required_string(
    value: Option<Value>,
    field: &str,
    max: Option<usize>,
) -> Result<String, EventError> {
    match value {
        None | Some(Value::Null) => Err(err(
            "missing_field",
            format!("missing required field `{field}`"),
        )),
        Some(Value::String(s)) => {
            if s.is_empty() {
                return Err(err(
                    "invalid_field",
                    format!("field `{field}` must not be empty"),
                ));
            }
            if let Some(max) = max {
                check_len(field, &s, max)?;
            }
            Ok(s)
        }
        Some(other) => Err(err(
            "invalid_field",
            format!(
                "field `{field}` must be a string, found {}",
                kind_of(&other)
            ),
        )),
    }
}

/// A string field of at most `max` bytes.
pub(crate) fn check_len(field: &str, s: &str, max: usize) -> Result<(), EventError> {
    if s.len() > max {
        return Err(err(
            "invalid_field",
            format!(
                "field `{field}` is {} bytes long, at most {max} are allowed",
                s.len()
            ),
        ));
    }
    Ok(())
}

/// A record value within the size limit.
pub(crate) fn check_size(bytes: &[u8], max_bytes: usize) -> Result<(), EventError> {
    if bytes.len() > max_bytes {
        return Err(err(
            "too_large",
            format!(
                "event is {} bytes, larger than the maximum of {max_bytes} bytes",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// An RFC 3339 time with an offset, in UTC.
pub(crate) fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, EventError> {
    Ok(DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            err(
                "invalid_field",
                format!("field `{field}` is not RFC 3339 with an offset ({text:?}): {e}"),
            )
        })?
        .with_timezone(&Utc))
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The top level of a record as parsed: the five fields an event is made of, as JSON values
/// (the last one wins when a field is repeated, as in a parsed JSON object), or what the record
/// is when it is not an object. Other fields are parsed (so the record is exactly as valid as
/// when parsed whole) and dropped. Reading the top level this way, instead of into a
/// `serde_json::Map` whose entries are then taken out, spares the map and an owned key per
/// field. (One lives on the stack while a record is parsed, never in a collection, so the size
/// of the object variant costs nothing.)
#[allow(clippy::large_enum_variant)]
enum Top {
    Object {
        event_id: Option<Value>,
        customer_id: Option<Value>,
        event_type: Option<Value>,
        timestamp: Option<Value>,
        properties: Option<Value>,
    },
    /// Not an object: the kind of value found.
    Other(&'static str),
}

/// A top-level field name, read without allocating when it is one of the five.
enum Field {
    EventId,
    CustomerId,
    Type,
    Timestamp,
    Properties,
    Other,
}

impl<'de> serde::Deserialize<'de> for Field {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "event_id" => Field::EventId,
                    "customer_id" => Field::CustomerId,
                    "type" => Field::Type,
                    "timestamp" => Field::Timestamp,
                    "properties" => Field::Properties,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::Deserialize<'de> for Top {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::SeqAccessDeserializer;
        use serde::de::{MapAccess, SeqAccess};
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let (mut event_id, mut customer_id, mut event_type, mut timestamp) =
                    (None, None, None, None);
                let mut properties = None;
                while let Some(field) = map.next_key::<Field>()? {
                    let slot = match field {
                        Field::EventId => &mut event_id,
                        Field::CustomerId => &mut customer_id,
                        Field::Type => &mut event_type,
                        Field::Timestamp => &mut timestamp,
                        Field::Properties => &mut properties,
                        Field::Other => {
                            map.next_value::<Value>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<Value>()?);
                }
                Ok(Top::Object {
                    event_id,
                    customer_id,
                    event_type,
                    timestamp,
                    properties,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Top, A::Error> {
                // Parsed whole, so that a malformed array is still "not valid JSON".
                <Value as serde::Deserialize>::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(Top::Other("an array"))
            }
            fn visit_unit<E>(self) -> Result<Top, E> {
                Ok(Top::Other("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
                Ok(Top::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
                Ok(Top::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
                Ok(Top::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
                Ok(Top::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Top, E> {
                Ok(Top::Other("a string"))
            }
        }
        d.deserialize_any(V)
    }
}

/// See [`crate::parse_event`].
pub fn parse(bytes: &[u8], max_bytes: usize) -> Result<Event, EventError> {
    check_size(bytes, max_bytes)?;
    let top: Top = serde_json::from_slice(bytes)
        .map_err(|e| err("not_json", format!("not valid JSON: {e}")))?;
    let (event_id, customer_id, event_type, timestamp, properties) = match top {
        Top::Object {
            event_id,
            customer_id,
            event_type,
            timestamp,
            properties,
        } => (event_id, customer_id, event_type, timestamp, properties),
        Top::Other(kind) => {
            return Err(err(
                "not_object",
                format!("event must be a JSON object, found {kind}"),
            ))
        }
    };
    let event_id = required_string(event_id, "event_id", None)?;
    let customer_id = required_string(customer_id, "customer_id", Some(MAX_CUSTOMER_ID_BYTES))?;
    let event_type = required_string(event_type, "type", Some(MAX_TYPE_BYTES))?;
    let ts = required_string(timestamp, "timestamp", None)?;
    let timestamp = parse_time("timestamp", &ts)?;
    let properties = match properties {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(err(
                "invalid_field",
                format!(
                    "field `properties` must be an object, found {}",
                    kind_of(&other)
                ),
            ))
        }
    };
    Ok(Event {
        event_id,
        customer_id,
        event_type,
        timestamp,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Event, EventError> {
        parse(s.as_bytes(), 65536)
    }

    #[test]
    fn parses_a_valid_event_and_normalises_to_utc() {
        let e = p(r#"{"event_id":"e-1","customer_id":"c-42","type":"cart_updated","timestamp":"2026-11-23T11:15:00+01:00","properties":{"cart_value":59.0},"extra":1}"#).unwrap();
        assert_eq!(e.event_id, "e-1");
        assert_eq!(e.customer_id, "c-42");
        assert_eq!(e.event_type, "cart_updated");
        assert_eq!(e.timestamp.to_rfc3339(), "2026-11-23T10:15:00+00:00");
        assert_eq!(e.properties["cart_value"], 59.0);
    }

    #[test]
    fn properties_default_to_empty() {
        let e = p(
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(e.properties.is_empty());
    }

    #[test]
    fn rejects_bad_records_with_readable_reasons() {
        let cases = [
            ("nope", "not_json", "not valid JSON"),
            ("[1]", "not_object", "must be a JSON object, found an array"),
            (
                r#"{"customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
                "missing_field",
                "missing required field `event_id`",
            ),
            (
                r#"{"event_id":"e","customer_id":"c","type":"t"}"#,
                "missing_field",
                "missing required field `timestamp`",
            ),
            (
                r#"{"event_id":"","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
                "invalid_field",
                "field `event_id` must not be empty",
            ),
            (
                r#"{"event_id":"e","customer_id":5,"type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
                "invalid_field",
                "field `customer_id` must be a string, found a number",
            ),
            (
                r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00"}"#,
                "invalid_field",
                "field `timestamp` is not RFC 3339",
            ),
            (
                r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z","properties":[]}"#,
                "invalid_field",
                "field `properties` must be an object",
            ),
        ];
        for (input, kind, msg) in cases {
            let e = p(input).unwrap_err();
            assert_eq!(e.kind, kind, "{input}");
            assert!(e.message.contains(msg), "{input}: {}", e.message);
        }
    }

    /// Parsing the whole record into a `serde_json::Value` first, as the parser did before it
    /// read the top level field by field: the results must be the same, errors included.
    fn parse_via_value(bytes: &[u8], max_bytes: usize) -> Result<Event, EventError> {
        check_size(bytes, max_bytes)?;
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| err("not_json", format!("not valid JSON: {e}")))?;
        let mut obj = match value {
            Value::Object(m) => m,
            other => {
                return Err(err(
                    "not_object",
                    format!("event must be a JSON object, found {}", kind_of(&other)),
                ))
            }
        };
        let event_id = required_string(obj.remove("event_id"), "event_id", None)?;
        let customer_id = required_string(
            obj.remove("customer_id"),
            "customer_id",
            Some(MAX_CUSTOMER_ID_BYTES),
        )?;
        let event_type = required_string(obj.remove("type"), "type", Some(MAX_TYPE_BYTES))?;
        let ts = required_string(obj.remove("timestamp"), "timestamp", None)?;
        let timestamp = parse_time("timestamp", &ts)?;
        let properties = match obj.remove("properties") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(err(
                    "invalid_field",
                    format!(
                        "field `properties` must be an object, found {}",
                        kind_of(&other)
                    ),
                ))
            }
        };
        Ok(Event {
            event_id,
            customer_id,
            event_type,
            timestamp,
            properties,
        })
    }

    fn same(input: &[u8]) {
        let fast = parse(input, 65536);
        let whole = parse_via_value(input, 65536);
        match (&fast, &whole) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    (&a.event_id, &a.customer_id, &a.event_type, a.timestamp),
                    (&b.event_id, &b.customer_id, &b.event_type, b.timestamp)
                );
                // Same entries in the same order.
                assert_eq!(
                    serde_json::to_string(&a.properties).unwrap(),
                    serde_json::to_string(&b.properties).unwrap(),
                    "{}",
                    String::from_utf8_lossy(input)
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(input)),
            _ => panic!("{}: {fast:?} vs {whole:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn reads_the_top_level_as_a_parsed_object_would() {
        let valid = r#"{"event_id":"e-1","customer_id":"c-42","type":"cart_updated","extra":{"a":[1,2e3,null]},"timestamp":"2026-11-23T11:15:00+01:00","properties":{"z":1,"cart_value":59.0,"items":[{"sku":"a"}],"n":null}}"#;
        same(valid.as_bytes());
        // Every prefix: truncated records fail at the same place with the same message.
        for i in 0..valid.len() {
            same(&valid.as_bytes()[..i]);
        }
        let cases = [
            "[1]",
            "[1,",
            "[1,}",
            "null",
            "true",
            "-3",
            "1.5",
            "18446744073709551616",
            r#""text""#,
            "{} x",
            " {}",
            r#"{"event_id":"a","event_id":"b","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z","properties":{"a":1,"a":2,"b":3}}"#,
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z","x":1e400}"#,
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z","properties":"p"}"#,
            r#"{"event_id":null,"customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
            r#"{"event_id":["e"],"customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#,
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":5}"#,
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z","properties":null}"#,
            r#"{1:2}"#,
        ];
        for c in cases {
            same(c.as_bytes());
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        same(deep.as_bytes());
        let deep_obj = format!(
            r#"{{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z","x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        same(deep_obj.as_bytes());
    }

    #[test]
    fn enforces_sizes() {
        let long_c = "c".repeat(257);
        let e = p(&format!(r#"{{"event_id":"e","customer_id":"{long_c}","type":"t","timestamp":"2026-01-01T00:00:00Z"}}"#)).unwrap_err();
        assert_eq!(e.kind, "invalid_field");
        let ok_c = "c".repeat(256);
        assert!(p(&format!(r#"{{"event_id":"e","customer_id":"{ok_c}","type":"t","timestamp":"2026-01-01T00:00:00Z"}}"#)).is_ok());
        let long_t = "t".repeat(129);
        let e = p(&format!(r#"{{"event_id":"e","customer_id":"c","type":"{long_t}","timestamp":"2026-01-01T00:00:00Z"}}"#)).unwrap_err();
        assert!(e.message.contains("`type` is 129 bytes"));
        let body =
            r#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#;
        let e = parse(body.as_bytes(), body.len() - 1).unwrap_err();
        assert_eq!(e.kind, "too_large");
        assert!(parse(body.as_bytes(), body.len()).is_ok());
    }
}
