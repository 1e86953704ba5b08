//! JSON Schemas (draft 2020-12) of the formats journeyd exchanges with the teams around it,
//! printed by `journeyd schema --kind ...` (docs/reference/cli.md): the configuration file,
//! behavioural events (docs/reference/events.md), send commands (docs/reference/commands.md)
//! and decision records (docs/reference/decisions.md). The journey file schema is
//! [`crate::json_schema`].
//!
//! The record schemas (event, command, decision) accept fields they do not list, as readers are
//! told to ignore fields they do not know; the configuration schema does not, as the loader
//! rejects unknown keys. Rules a schema cannot express (byte lengths, declared channels, which
//! keys an environment variable overrides) are checked by the loader and the event parser.

use serde_json::{json, Value};

const SCHEMA: &str = "https://json-schema.org/draft/2020-12/schema";
const IDENTIFIER: &str = "^[a-z0-9_]+$";
const DURATION: &str = "^0*[1-9][0-9]*[smhdw]$";
const TIME_OF_DAY: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
/// RFC 3339 with an offset, as events carry it.
const RFC3339: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";
/// RFC 3339 in UTC with `Z`, as journeyd writes it.
const RFC3339_UTC: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$";
const COMMAND_ID: &str = "^[0-9a-f]{16}$";

/// Every decision kind the engine records.
pub const DECISION_KINDS: [&str; 13] = [
    "entered",
    "entry_suppressed",
    "sent",
    "skipped_channel",
    "deferred",
    "no_channel",
    "holdout",
    "split",
    "exited",
    "goal",
    "completed",
    "duplicate_event",
    "bad_timezone",
];

/// A behavioural event in the native format.
pub fn event_schema() -> Value {
    json!({
        "$schema": SCHEMA,
        "title": "journeyd behavioural event, version 1",
        "type": "object",
        "required": ["event_id", "customer_id", "type", "timestamp"],
        "properties": {
            "event_id": { "type": "string", "minLength": 1 },
            "customer_id": {
                "description": "Also the record key. At most 256 bytes of UTF-8.",
                "type": "string", "minLength": 1, "maxLength": 256
            },
            "type": {
                "description": "At most 128 bytes of UTF-8. Reserved: profile_updated, consent_updated.",
                "type": "string", "minLength": 1, "maxLength": 128
            },
            "timestamp": { "type": "string", "pattern": RFC3339 },
            "properties": { "type": ["object", "null"] }
        },
        "allOf": [
            {
                "if": { "required": ["type"], "properties": { "type": { "const": "consent_updated" } } },
                "then": {
                    "properties": {
                        "properties": {
                            "type": "object",
                            "required": ["channel", "status"],
                            "properties": {
                                "channel": { "type": "string" },
                                "status": { "enum": ["granted", "withdrawn"] }
                            }
                        }
                    }
                }
            }
        ]
    })
}

/// A send command (the record value on a channel topic).
pub fn command_schema() -> Value {
    json!({
        "$schema": SCHEMA,
        "title": "journeyd send command, version 1",
        "type": "object",
        "required": [
            "command_id", "customer_id", "channel", "address", "template", "data",
            "journey_id", "journey_version", "step_id", "trigger_event_id", "issued_at"
        ],
        "properties": {
            "command_id": { "type": "string", "pattern": COMMAND_ID },
            "customer_id": { "type": "string", "minLength": 1 },
            "channel": { "type": "string", "pattern": IDENTIFIER },
            "address": { "type": "string" },
            "template": { "type": "string", "minLength": 1 },
            "data": { "type": "object" },
            "journey_id": { "type": "string", "pattern": IDENTIFIER },
            "journey_version": { "type": "integer", "minimum": 1 },
            "step_id": { "type": "string", "pattern": IDENTIFIER },
            "trigger_event_id": { "type": "string", "minLength": 1 },
            "issued_at": { "type": "string", "pattern": RFC3339_UTC }
        }
    })
}

/// A decision record (the record value on the decisions topic).
pub fn decision_schema() -> Value {
    let requires = |kind: &str, fields: Value| {
        json!({
            "if": { "properties": { "kind": { "const": kind } } },
            "then": { "required": fields }
        })
    };
    let reason = |kind: &str, reasons: Value| {
        json!({
            "if": { "properties": { "kind": { "const": kind } } },
            "then": { "required": ["reason"], "properties": { "reason": reasons } }
        })
    };
    let instance = ["journey_id", "journey_version", "event_id", "holdout"];
    let at_step = |extra: &[&str]| {
        let mut v: Vec<&str> = instance.to_vec();
        v.push("step_id");
        v.extend_from_slice(extra);
        json!(v)
    };
    json!({
        "$schema": SCHEMA,
        "title": "journeyd decision record, version 1",
        "type": "object",
        "required": ["at", "customer_id", "kind"],
        "properties": {
            "at": { "type": "string", "pattern": RFC3339_UTC },
            "customer_id": { "type": "string", "minLength": 1 },
            "journey_id": { "type": "string", "pattern": IDENTIFIER },
            "journey_version": { "type": "integer", "minimum": 1 },
            "step_id": { "type": "string", "pattern": IDENTIFIER },
            "kind": { "enum": DECISION_KINDS },
            "channel": { "type": "string", "pattern": IDENTIFIER },
            "command_id": { "type": "string", "pattern": COMMAND_ID },
            "reason": { "type": "string" },
            "event_id": { "type": "string", "minLength": 1 },
            "until": { "type": "string", "pattern": RFC3339_UTC },
            "branch": { "type": "string", "minLength": 1 },
            "holdout": { "type": "boolean" }
        },
        "allOf": [
            requires("entered", json!(instance)),
            requires("entry_suppressed", json!(["journey_id", "journey_version", "event_id"])),
            reason("entry_suppressed", json!({ "enum": ["status", "reentry", "unless"] })),
            requires("sent", at_step(&["channel", "command_id"])),
            requires("skipped_channel", at_step(&["channel"])),
            reason(
                "skipped_channel",
                json!({ "pattern": "^(unreachable|no_consent|frequency_cap:.+)$" })
            ),
            requires("deferred", at_step(&["channel", "until"])),
            reason("deferred", json!({ "const": "quiet_hours" })),
            requires("no_channel", at_step(&[])),
            requires("holdout", at_step(&[])),
            requires("split", at_step(&["branch"])),
            requires("exited", at_step(&[])),
            {
                "if": {
                    "required": ["reason"],
                    "properties": { "kind": { "const": "exited" } }
                },
                "then": { "properties": { "reason": { "const": "no_channel" } } }
            },
            requires("goal", at_step(&[])),
            requires("completed", json!(instance)),
            requires("duplicate_event", json!(["event_id"])),
            requires("bad_timezone", json!(["event_id", "reason"]))
        ]
    })
}

/// The configuration file (docs/reference/configuration.md).
pub fn config_schema() -> Value {
    let positive = json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX });
    let nonempty = json!({ "type": "string", "minLength": 1 });
    json!({
        "$schema": SCHEMA,
        "title": "journeyd configuration file, version 1",
        "type": "object",
        "additionalProperties": false,
        "required": ["channels"],
        "properties": {
            "journeys_dir": nonempty,
            "state_dir": nonempty,
            "workers": { "type": ["integer", "null"], "minimum": 1, "maximum": crate::config::MAX_WORKERS },
            "kafka": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": {
                    "bootstrap_servers": nonempty,
                    "group_id": nonempty,
                    "input_topics": {
                        "anyOf": [
                            {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "anyOf": [
                                        nonempty,
                                        {
                                            "type": "object",
                                            "additionalProperties": false,
                                            "required": ["name"],
                                            "properties": {
                                                "name": nonempty,
                                                "format": {
                                                    "enum": ["native", "segment", "cloudevents"],
                                                    "default": "native"
                                                },
                                                "customer_id_attribute": {
                                                    "type": "string",
                                                    "pattern": "^[a-z0-9]+$",
                                                    "default": "subject"
                                                }
                                            }
                                        }
                                    ]
                                }
                            },
                            {
                                "description": "Comma-separated topic names.",
                                "type": "string", "pattern": "[^, ]"
                            }
                        ]
                    },
                    "dead_letter_topic": nonempty,
                    "decisions_topic": nonempty,
                    "state_topic": nonempty,
                    "client": {
                        "description": "librdkafka properties, passed through.",
                        "type": ["object", "null"],
                        "additionalProperties": { "type": ["string", "number", "boolean"] }
                    },
                    "commit_interval_ms": positive,
                    "max_event_bytes": positive,
                    "transactional_id": { "type": ["string", "null"], "minLength": 1 },
                    "static_membership": { "type": "boolean" },
                    "group_instance_id": { "type": ["string", "null"], "minLength": 1 }
                }
            },
            "metrics": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": {
                    "listen": { "type": "string", "pattern": "^.+:[0-9]{1,5}$" }
                }
            },
            "channels": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": { "pattern": IDENTIFIER },
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["address", "consent"],
                    "properties": {
                        "topic": nonempty,
                        "address": nonempty,
                        "consent": { "enum": ["opt_in", "opt_out"] },
                        "quiet_hours": { "type": "boolean", "default": false }
                    }
                }
            },
            "frequency_caps": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "channels", "max", "per"],
                    "properties": {
                        "name": nonempty,
                        "channels": {
                            "anyOf": [
                                { "const": "all" },
                                {
                                    "type": "array", "minItems": 1, "uniqueItems": true,
                                    "items": nonempty
                                }
                            ]
                        },
                        "max": positive,
                        "per": { "type": "string", "pattern": DURATION }
                    }
                }
            },
            "quiet_hours": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": {
                    "start": { "type": "string", "pattern": TIME_OF_DAY },
                    "end": { "type": "string", "pattern": TIME_OF_DAY },
                    "default_timezone": nonempty
                }
            },
            "event_catalog": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "required": ["events"],
                "properties": {
                    "unknown_events": { "enum": ["count", "dead_letter"], "default": "count" },
                    "events": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "type": ["object", "null"],
                            "additionalProperties": false,
                            "properties": {
                                "properties": {
                                    "type": ["array", "null"],
                                    "uniqueItems": true,
                                    "items": nonempty
                                }
                            }
                        }
                    }
                }
            },
            "inspect": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": {
                    "enabled": { "type": "boolean", "default": false },
                    "token": { "type": ["string", "null"], "minLength": 1 }
                }
            },
            "log": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": {
                    "format": { "enum": ["text", "json"], "default": "text" },
                    "level": nonempty
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    }

    /// A key added to the loader must be added to the schema too (and the other way round).
    #[test]
    fn config_schema_lists_exactly_the_loader_keys() {
        let s = config_schema();
        let props = &s["properties"];
        assert_eq!(keys(props), sorted(&crate::config::TOP_KEYS));
        assert_eq!(
            keys(&props["kafka"]["properties"]),
            sorted(&crate::config::KAFKA_KEYS)
        );
    }
}
