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

fn required_string(
    obj: &mut serde_json::Map<String, Value>,
    field: &str,
    max: Option<usize>,
) -> Result<String, EventError> {
    match obj.remove(field) {
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

/// See [`crate::parse_event`].
pub fn parse(bytes: &[u8], max_bytes: usize) -> Result<Event, EventError> {
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
    let event_id = required_string(&mut obj, "event_id", None)?;
    let customer_id = required_string(&mut obj, "customer_id", Some(MAX_CUSTOMER_ID_BYTES))?;
    let event_type = required_string(&mut obj, "type", Some(MAX_TYPE_BYTES))?;
    let ts = required_string(&mut obj, "timestamp", None)?;
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
