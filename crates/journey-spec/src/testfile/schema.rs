//! The JSON Schema of test files, for editors.

use super::DECISION_KINDS;
use serde_json::{json, Value};

/// JSON Schema (draft 2020-12) of test files, for editors.
pub fn test_json_schema() -> Value {
    let time = json!({
        "description": "An offset from the test's start (+2h, +1d2h30m) or an RFC 3339 instant.",
        "type": "string",
        "pattern": r"^(\+(0|([0-9]+[smhdw])+)|[0-9]{4}-[0-9]{2}-[0-9]{2}T.+)$"
    });
    let instant = json!({
        "description": "An RFC 3339 instant with an offset, like 2026-11-23T10:00:00Z.",
        "type": "string",
        "format": "date-time"
    });
    let name = json!({ "type": "string", "minLength": 1 });
    let expect = expect_schema();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://journeyd.dev/schema/journey-test.json",
        "title": "journeyd journey test file (*.test.yaml)",
        "type": "object",
        "additionalProperties": false,
        "required": ["tests"],
        "properties": {
            "config": { "description": "Configuration file, relative to this file.", "type": "string" },
            "journeys": {
                "description": "Journey files to load instead of the configuration's journeys_dir.",
                "type": "array", "items": { "type": "string" }
            },
            "start": { "$ref": "#/$defs/instant" },
            "tests": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/test" } }
        },
        "$defs": {
            "time": time,
            "instant": instant,
            "name": name,
            "window": {
                "properties": {
                    "at": { "$ref": "#/$defs/time" },
                    "between": {
                        "type": "array", "minItems": 2, "maxItems": 2,
                        "items": { "$ref": "#/$defs/time" }
                    }
                }
            },
            "test": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "customers", "events", "expect"],
                "properties": {
                    "name": { "$ref": "#/$defs/name" },
                    "start": { "$ref": "#/$defs/instant" },
                    "customers": {
                        "type": "array", "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["id"],
                            "properties": {
                                "id": { "$ref": "#/$defs/name" },
                                "profile": { "type": "object" },
                                "consent": {
                                    "type": "object",
                                    "additionalProperties": {
                                        "anyOf": [
                                            { "enum": ["granted", "withdrawn"] },
                                            { "type": "boolean" }
                                        ]
                                    }
                                }
                            }
                        }
                    },
                    "events": {
                        "type": "array", "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["at", "type"],
                            "properties": {
                                "at": { "$ref": "#/$defs/time" },
                                "customer": { "$ref": "#/$defs/name" },
                                "type": { "$ref": "#/$defs/name" },
                                "properties": { "type": "object" },
                                "event_id": { "$ref": "#/$defs/name" }
                            }
                        }
                    },
                    "order": { "enum": ["sequence", "set"] },
                    "no_other_sends": { "type": "boolean" },
                    "until": { "$ref": "#/$defs/time" },
                    "expect": expect
                }
            }
        }
    })
}

fn expect_schema() -> Value {
    json!({
                        "type": "array",
                        "items": {
                            "type": "object",
                            "minProperties": 1,
                            "maxProperties": 1,
                            "additionalProperties": false,
                            "properties": {
                                "send": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "$ref": "#/$defs/window",
                                    "properties": {
                                        "customer": { "$ref": "#/$defs/name" },
                                        "channel": { "$ref": "#/$defs/name" },
                                        "template": { "$ref": "#/$defs/name" },
                                        "journey": { "$ref": "#/$defs/name" },
                                        "step": { "$ref": "#/$defs/name" },
                                        "at": true,
                                        "between": true,
                                        "data": { "type": "object" }
                                    }
                                },
                                "decision": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["kind"],
                                    "$ref": "#/$defs/window",
                                    "properties": {
                                        "customer": { "$ref": "#/$defs/name" },
                                        "kind": { "enum": DECISION_KINDS },
                                        "reason": { "type": "string" },
                                        "journey": { "$ref": "#/$defs/name" },
                                        "step": { "$ref": "#/$defs/name" },
                                        "channel": { "$ref": "#/$defs/name" },
                                        "branch": { "type": "string" },
                                        "holdout": { "type": "boolean" },
                                        "at": true,
                                        "between": true
                                    }
                                },
                                "no_send": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["until"],
                                    "properties": {
                                        "customer": { "$ref": "#/$defs/name" },
                                        "channel": { "$ref": "#/$defs/name" },
                                        "template": { "$ref": "#/$defs/name" },
                                        "journey": { "$ref": "#/$defs/name" },
                                        "from": { "$ref": "#/$defs/time" },
                                        "until": { "$ref": "#/$defs/time" }
                                    }
                                }
                            }
                        }
    })
}
