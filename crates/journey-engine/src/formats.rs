//! Decoders of the event formats other teams already produce, into the same [`Event`] and the
//! same typed [`EventError`] as the native format (docs/reference/events.md, "Other formats").
//! Pure functions: bytes and headers in, an event or a dead-letter reason out.
//!
//! - **Segment** (the Segment Spec, as Segment and RudderStack write it): `track` is an event
//!   named by `event` with its `properties`; `identify` is `profile_updated` with the `traits`;
//!   `page` and `screen` are `page_viewed` and `screen_viewed` with their `properties` (plus the
//!   call's `name`, when given and not already a property). The customer id is `userId`, else
//!   `anonymousId`; the event id is `messageId`; the time is `timestamp`, else
//!   `originalTimestamp`. `group` and `alias` calls are rejected (`unsupported`).
//! - **CloudEvents 1.0**, JSON structured mode (the record value is the event) or Kafka binary
//!   mode (attributes in `ce_*` headers, the value is the data): `id`, `type`, `time` and `data`
//!   (a JSON object, or nothing) become the event id, type, timestamp and properties; the
//!   customer id is the `subject` attribute, or the configured extension attribute.

use crate::event::{check_len, kind_of, parse_time, MAX_CUSTOMER_ID_BYTES, MAX_TYPE_BYTES};
use crate::{Event, EventError};
use serde_json::{Map, Value};

/// The format of an input topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format<'a> {
    /// journeyd's own JSON (docs/reference/events.md).
    Native,
    /// Segment Spec messages.
    Segment,
    /// CloudEvents 1.0; the customer id is this attribute (`subject`, or an extension).
    CloudEvents { customer_id_attribute: &'a str },
}

fn err(kind: &'static str, message: String) -> EventError {
    EventError { kind, message }
}

/// Decodes one record of `format`. `headers` are the record's headers (CloudEvents binary mode
/// reads its `ce_*` attributes there); `max_bytes` bounds the value as for native events.
pub fn decode(
    format: Format<'_>,
    payload: &[u8],
    headers: &[(&str, &[u8])],
    max_bytes: usize,
) -> Result<Event, EventError> {
    match format {
        Format::Native => crate::event::parse(payload, max_bytes),
        Format::Segment => segment(object(payload, max_bytes)?),
        Format::CloudEvents {
            customer_id_attribute,
        } => {
            if headers.iter().any(|(k, _)| *k == "ce_specversion") {
                cloudevents_binary(payload, headers, max_bytes, customer_id_attribute)
            } else {
                cloudevents_structured(object(payload, max_bytes)?, customer_id_attribute)
            }
        }
    }
}

/// The value as a JSON object, within the size limit.
fn object(payload: &[u8], max_bytes: usize) -> Result<Map<String, Value>, EventError> {
    crate::event::check_size(payload, max_bytes)?;
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| err("not_json", format!("not valid JSON: {e}")))?;
    match value {
        Value::Object(m) => Ok(m),
        other => Err(err(
            "not_object",
            format!("event must be a JSON object, found {}", kind_of(&other)),
        )),
    }
}

/// A string attribute: `None` when absent or null, an error when of another type or empty.
fn opt_string(
    obj: &mut Map<String, Value>,
    field: &str,
    max: Option<usize>,
) -> Result<Option<String>, EventError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(err(
            "invalid_field",
            format!("field `{field}` must not be empty"),
        )),
        Some(Value::String(s)) => {
            if let Some(max) = max {
                check_len(field, &s, max)?;
            }
            Ok(Some(s))
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

fn required(value: Option<String>, field: &str) -> Result<String, EventError> {
    value.ok_or_else(|| err("missing_field", format!("missing required field `{field}`")))
}

/// An object-valued field (`properties`, `traits`, `data`): `{}` when absent or null.
fn opt_object(obj: &mut Map<String, Value>, field: &str) -> Result<Map<String, Value>, EventError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(err(
            "invalid_field",
            format!(
                "field `{field}` must be an object, found {}",
                kind_of(&other)
            ),
        )),
    }
}

fn segment(mut obj: Map<String, Value>) -> Result<Event, EventError> {
    let call = required(opt_string(&mut obj, "type", None)?, "type")?;
    let customer_id = match opt_string(&mut obj, "userId", Some(MAX_CUSTOMER_ID_BYTES))? {
        Some(id) => id,
        None => {
            opt_string(&mut obj, "anonymousId", Some(MAX_CUSTOMER_ID_BYTES))?.ok_or_else(|| {
                err(
                    "missing_field",
                    "missing `userId` and `anonymousId`: one of them is the customer id".into(),
                )
            })?
        }
    };
    let event_id = required(opt_string(&mut obj, "messageId", None)?, "messageId")?;
    let time = match opt_string(&mut obj, "timestamp", None)? {
        Some(t) => ("timestamp", t),
        None => (
            "originalTimestamp",
            opt_string(&mut obj, "originalTimestamp", None)?.ok_or_else(|| {
                err(
                    "missing_field",
                    "missing `timestamp` and `originalTimestamp`".into(),
                )
            })?,
        ),
    };
    let timestamp = parse_time(time.0, &time.1)?;
    let (event_type, properties) = match call.as_str() {
        "track" => (
            required(opt_string(&mut obj, "event", Some(MAX_TYPE_BYTES))?, "event")?,
            opt_object(&mut obj, "properties")?,
        ),
        "identify" => ("profile_updated".to_owned(), opt_object(&mut obj, "traits")?),
        "page" | "screen" => {
            let mut properties = opt_object(&mut obj, "properties")?;
            if let Some(name) = opt_string(&mut obj, "name", None)? {
                properties
                    .entry("name")
                    .or_insert_with(|| Value::String(name));
            }
            let ty = if call == "page" {
                "page_viewed"
            } else {
                "screen_viewed"
            };
            (ty.to_owned(), properties)
        }
        "group" | "alias" => {
            return Err(err(
                "unsupported",
                format!(
                    "Segment `{call}` calls are not supported; journeyd reads track, identify, page and screen"
                ),
            ))
        }
        other => {
            return Err(err(
                "invalid_field",
                format!(
                    "field `type` is `{other}`, not a Segment call (track, identify, page, screen)"
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

/// The attributes journeyd reads, whatever the mode.
struct CloudAttributes {
    specversion: Option<String>,
    id: Option<String>,
    event_type: Option<String>,
    time: Option<String>,
    customer_id: Option<String>,
}

fn cloudevent(
    attrs: CloudAttributes,
    data: Map<String, Value>,
    customer_id_attribute: &str,
) -> Result<Event, EventError> {
    match attrs.specversion.as_deref() {
        Some("1.0") => {}
        Some(v) => {
            return Err(err(
                "invalid_field",
                format!("CloudEvents `specversion` is `{v}`; journeyd reads 1.0"),
            ))
        }
        None => {
            return Err(err(
                "missing_field",
                "missing required field `specversion`".into(),
            ))
        }
    }
    let event_id = required(attrs.id, "id")?;
    let event_type = required(attrs.event_type, "type")?;
    check_len("type", &event_type, MAX_TYPE_BYTES)?;
    let time = required(attrs.time, "time")?;
    let timestamp = parse_time("time", &time)?;
    let customer_id = required(attrs.customer_id, customer_id_attribute)?;
    check_len(customer_id_attribute, &customer_id, MAX_CUSTOMER_ID_BYTES)?;
    Ok(Event {
        event_id,
        customer_id,
        event_type,
        timestamp,
        properties: data,
    })
}

fn cloudevents_structured(
    mut obj: Map<String, Value>,
    customer_id_attribute: &str,
) -> Result<Event, EventError> {
    if obj.get("data_base64").is_some_and(|v| !v.is_null()) {
        return Err(err(
            "unsupported",
            "CloudEvents `data_base64` (binary data) is not supported; send JSON `data`".into(),
        ));
    }
    let attrs = CloudAttributes {
        specversion: opt_string(&mut obj, "specversion", None)?,
        id: opt_string(&mut obj, "id", None)?,
        event_type: opt_string(&mut obj, "type", None)?,
        time: opt_string(&mut obj, "time", None)?,
        customer_id: opt_string(&mut obj, customer_id_attribute, None)?,
    };
    let data = opt_object(&mut obj, "data")?;
    cloudevent(attrs, data, customer_id_attribute)
}

fn cloudevents_binary(
    payload: &[u8],
    headers: &[(&str, &[u8])],
    max_bytes: usize,
    customer_id_attribute: &str,
) -> Result<Event, EventError> {
    crate::event::check_size(payload, max_bytes)?;
    let header = |name: &str| -> Result<Option<String>, EventError> {
        let key = format!("ce_{name}");
        match headers.iter().rev().find(|(k, _)| *k == key) {
            None => Ok(None),
            Some((_, [])) => Ok(None),
            Some((_, v)) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| err("invalid_field", format!("header `{key}` is not UTF-8"))),
        }
    };
    let attrs = CloudAttributes {
        specversion: header("specversion")?,
        id: header("id")?,
        event_type: header("type")?,
        time: header("time")?,
        customer_id: header(customer_id_attribute)?,
    };
    let data = if payload.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        let value: Value = serde_json::from_slice(payload)
            .map_err(|e| err("not_json", format!("data is not valid JSON: {e}")))?;
        match value {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                return Err(err(
                    "invalid_field",
                    format!("data must be a JSON object, found {}", kind_of(&other)),
                ))
            }
        }
    };
    cloudevent(attrs, data, customer_id_attribute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAX: usize = 65_536;

    fn seg(v: Value) -> Result<Event, EventError> {
        decode(Format::Segment, v.to_string().as_bytes(), &[], MAX)
    }

    fn ce(v: Value, attribute: &str) -> Result<Event, EventError> {
        decode(
            Format::CloudEvents {
                customer_id_attribute: attribute,
            },
            v.to_string().as_bytes(),
            &[],
            MAX,
        )
    }

    fn fails(r: Result<Event, EventError>, kind: &str, message: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.kind, kind, "{}", e.message);
        assert!(e.message.contains(message), "{}", e.message);
    }

    #[test]
    fn segment_track_is_an_event_named_by_event() {
        let e = seg(json!({"type": "track", "event": "order_completed", "userId": "c-42", "anonymousId": "a-1", "messageId": "m-1", "timestamp": "2026-11-23T10:15:00.123+01:00", "properties": {"total": 59.0}, "context": {"ip": "1.2.3.4"}})).unwrap();
        assert_eq!(e.event_id, "m-1");
        assert_eq!(e.customer_id, "c-42");
        assert_eq!(e.event_type, "order_completed");
        assert_eq!(e.timestamp.to_rfc3339(), "2026-11-23T09:15:00.123+00:00");
        assert_eq!(e.properties, *json!({"total": 59.0}).as_object().unwrap());
    }

    #[test]
    fn segment_identify_page_and_screen() {
        let e = seg(json!({"type": "identify", "anonymousId": "a-1", "messageId": "m-2", "originalTimestamp": "2026-11-23T10:00:00Z", "traits": {"email": "ada@example.com"}})).unwrap();
        assert_eq!(
            (e.customer_id.as_str(), e.event_type.as_str()),
            ("a-1", "profile_updated")
        );
        assert_eq!(e.properties["email"], "ada@example.com");
        let e = seg(json!({"type": "page", "userId": "c", "messageId": "m", "timestamp": "2026-11-23T10:00:00Z", "name": "Tents", "properties": {"url": "/tents"}})).unwrap();
        assert_eq!(e.event_type, "page_viewed");
        assert_eq!(
            e.properties,
            *json!({"url": "/tents", "name": "Tents"})
                .as_object()
                .unwrap()
        );
        // A `name` property wins over the call's name.
        let e = seg(json!({"type": "screen", "userId": "c", "messageId": "m", "timestamp": "2026-11-23T10:00:00Z", "name": "Home", "properties": {"name": "Basket"}})).unwrap();
        assert_eq!(e.event_type, "screen_viewed");
        assert_eq!(e.properties["name"], "Basket");
        let e = seg(json!({"type": "page", "userId": "c", "messageId": "m", "timestamp": "2026-11-23T10:00:00Z"})).unwrap();
        assert!(e.properties.is_empty());
    }

    #[test]
    fn segment_rejections_say_why() {
        let base = json!({"type": "track", "event": "x", "userId": "c", "messageId": "m", "timestamp": "2026-11-23T10:00:00Z"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        let without = |k: &str| {
            let mut b = base.clone();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        fails(
            seg(with("type", json!("group"))),
            "unsupported",
            "Segment `group` calls are not supported",
        );
        fails(seg(with("type", json!("alias"))), "unsupported", "`alias`");
        fails(
            seg(with("type", json!("trak"))),
            "invalid_field",
            "not a Segment call",
        );
        fails(seg(without("type")), "missing_field", "`type`");
        fails(seg(without("event")), "missing_field", "`event`");
        fails(
            seg(without("userId")),
            "missing_field",
            "missing `userId` and `anonymousId`",
        );
        fails(
            seg(with("userId", json!(42))),
            "invalid_field",
            "`userId` must be a string",
        );
        fails(seg(without("messageId")), "missing_field", "`messageId`");
        fails(
            seg(without("timestamp")),
            "missing_field",
            "missing `timestamp` and `originalTimestamp`",
        );
        fails(
            seg(with("timestamp", json!("yesterday"))),
            "invalid_field",
            "`timestamp` is not RFC 3339",
        );
        fails(
            seg(with("properties", json!([1]))),
            "invalid_field",
            "`properties` must be an object",
        );
        fails(
            seg(with("event", json!("e".repeat(129)))),
            "invalid_field",
            "`event` is 129 bytes",
        );
        fails(
            seg(with("userId", json!("c".repeat(257)))),
            "invalid_field",
            "`userId` is 257 bytes",
        );
        fails(
            decode(Format::Segment, b"[]", &[], MAX),
            "not_object",
            "found an array",
        );
        fails(
            decode(Format::Segment, b"{", &[], MAX),
            "not_json",
            "not valid JSON",
        );
        let body = base.to_string();
        fails(
            decode(Format::Segment, body.as_bytes(), &[], body.len() - 1),
            "too_large",
            "larger than",
        );
    }

    #[test]
    fn cloudevents_structured_mode() {
        let v = json!({"specversion": "1.0", "id": "ce-1", "source": "/orders", "type": "order_completed", "subject": "c-42", "time": "2026-11-23T10:15:00Z", "datacontenttype": "application/json", "data": {"total": 59.0}, "customerid": "c-7"});
        let e = ce(v.clone(), "subject").unwrap();
        assert_eq!(
            (
                e.event_id.as_str(),
                e.customer_id.as_str(),
                e.event_type.as_str()
            ),
            ("ce-1", "c-42", "order_completed")
        );
        assert_eq!(e.timestamp.to_rfc3339(), "2026-11-23T10:15:00+00:00");
        assert_eq!(e.properties["total"], 59.0);
        assert_eq!(ce(v.clone(), "customerid").unwrap().customer_id, "c-7");
        let mut no_data = v.clone();
        no_data.as_object_mut().unwrap().remove("data");
        assert!(ce(no_data, "subject").unwrap().properties.is_empty());
        let with = |k: &str, x: Value| {
            let mut b = v.clone();
            b[k] = x;
            b
        };
        let without = |k: &str| {
            let mut b = v.clone();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        fails(
            ce(with("specversion", json!("0.3")), "subject"),
            "invalid_field",
            "`specversion` is `0.3`",
        );
        fails(
            ce(without("specversion"), "subject"),
            "missing_field",
            "`specversion`",
        );
        fails(ce(without("time"), "subject"), "missing_field", "`time`");
        fails(ce(without("id"), "subject"), "missing_field", "`id`");
        fails(
            ce(without("subject"), "subject"),
            "missing_field",
            "`subject`",
        );
        fails(ce(v.clone(), "tenant"), "missing_field", "`tenant`");
        fails(
            ce(with("data", json!("text")), "subject"),
            "invalid_field",
            "`data` must be an object",
        );
        fails(
            ce(with("data_base64", json!("AAAA")), "subject"),
            "unsupported",
            "data_base64",
        );
    }

    #[test]
    fn cloudevents_binary_mode() {
        let headers: Vec<(&str, &[u8])> = vec![
            ("ce_specversion", b"1.0"),
            ("ce_id", b"ce-2"),
            ("ce_source", b"/crm"),
            ("ce_type", b"profile_updated"),
            ("ce_time", b"2026-11-23T10:15:00+02:00"),
            ("ce_subject", b"c-42"),
            ("ce_partnerid", b"p-9"),
            ("content-type", b"application/json"),
        ];
        let f = Format::CloudEvents {
            customer_id_attribute: "subject",
        };
        let e = decode(f, br#"{"tier":"vip"}"#, &headers, MAX).unwrap();
        assert_eq!(
            (
                e.event_id.as_str(),
                e.customer_id.as_str(),
                e.event_type.as_str()
            ),
            ("ce-2", "c-42", "profile_updated")
        );
        assert_eq!(e.timestamp.to_rfc3339(), "2026-11-23T08:15:00+00:00");
        assert_eq!(e.properties["tier"], "vip");
        let f_ext = Format::CloudEvents {
            customer_id_attribute: "partnerid",
        };
        assert_eq!(
            decode(f_ext, b"", &headers, MAX).unwrap().customer_id,
            "p-9"
        );
        assert!(decode(f, b"", &headers, MAX).unwrap().properties.is_empty());
        fails(
            decode(f, b"[1]", &headers, MAX),
            "invalid_field",
            "data must be a JSON object",
        );
        fails(
            decode(f, b"{", &headers, MAX),
            "not_json",
            "data is not valid JSON",
        );
        let mut bad = headers.clone();
        bad[5] = ("ce_subject", b"\xff");
        fails(
            decode(f, b"", &bad, MAX),
            "invalid_field",
            "`ce_subject` is not UTF-8",
        );
        let no_time: Vec<_> = headers
            .iter()
            .filter(|(k, _)| *k != "ce_time")
            .copied()
            .collect();
        fails(decode(f, b"", &no_time, MAX), "missing_field", "`time`");
    }

    #[test]
    fn native_is_parse_event() {
        let line =
            br#"{"event_id":"e","customer_id":"c","type":"t","timestamp":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(
            decode(Format::Native, line, &[], MAX),
            crate::parse_event(line, MAX)
        );
    }
}
