//! The JSON Schema (draft 2020-12) of journey files, for editors. It mirrors the loader: every
//! key, required key and value shape it checks that a schema can express. What a schema cannot
//! express (step references, reachability, loops, split totals, declared channels) is left to
//! `journeyd validate`.

use crate::model::Op;
use serde_json::{json, Map, Value};

const DURATION: &str = "^0*[1-9][0-9]*[smhdw]$";
const PERCENT: &str = r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)%?$";
const PERCENT_WITH_SIGN: &str = r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)%$";
const TIME_OF_DAY: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
const IDENTIFIER: &str = "^[a-z0-9_]+$";
const PATH_WITH_EVENT: &str = r"^((event|trigger)\.(type|properties(\.[^.]+)+)|profile(\.[^.]+)+)$";
const PATH_WITHOUT_EVENT: &str = r"^(trigger\.(type|properties(\.[^.]+)+)|profile(\.[^.]+)+)$";

/// JSON Schema (draft 2020-12) of journey files.
pub fn json_schema() -> Value {
    let mut defs = Map::new();
    defs.insert(
        "identifier".into(),
        json!({ "type": "string", "pattern": IDENTIFIER }),
    );
    defs.insert(
        "duration".into(),
        json!({
            "description": "A whole positive number and a unit: 30s, 15m, 2h, 7d, 2w.",
            "type": "string",
            "pattern": DURATION
        }),
    );
    defs.insert(
        "percent".into(),
        json!({
            "description": "0% to 100% with at most two decimals: 10%, 12.5%.",
            "anyOf": [
                { "type": "string", "pattern": PERCENT },
                { "type": "number", "minimum": 0, "maximum": 100 }
            ]
        }),
    );
    defs.insert(
        "percent_with_sign".into(),
        json!({
            "description": "0% to 100% with at most two decimals and a % sign: 10%, 0.5%.",
            "type": "string",
            "pattern": PERCENT_WITH_SIGN
        }),
    );
    defs.insert(
        "time_of_day".into(),
        json!({ "description": "HH:MM, 24-hour.", "type": "string", "pattern": TIME_OF_DAY }),
    );
    defs.insert(
        "next".into(),
        json!({
            "description": "A step id of this journey, or `end`.",
            "type": "string",
            "pattern": IDENTIFIER
        }),
    );
    defs.insert(
        "event_type".into(),
        json!({ "type": "string", "minLength": 1 }),
    );
    defs.insert("condition".into(), condition("condition", PATH_WITH_EVENT));
    defs.insert(
        "condition_without_event".into(),
        condition("condition_without_event", PATH_WITHOUT_EVENT),
    );
    defs.insert(
        "event_match".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["event"],
            "properties": {
                "event": { "$ref": "#/$defs/event_type" },
                "where": { "$ref": "#/$defs/condition" }
            }
        }),
    );
    defs.insert("step".into(), step());

    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "journeyd journey file, version 1",
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "version", "trigger", "steps"],
        "properties": {
            "id": { "$ref": "#/$defs/identifier" },
            "version": { "type": "integer", "minimum": 1, "maximum": u32::MAX },
            "name": { "type": "string" },
            "status": { "enum": ["active", "paused", "draining"], "default": "active" },
            "category": { "enum": ["marketing", "transactional"], "default": "marketing" },
            "priority": { "type": "integer", "default": 0 },
            "trigger": { "$ref": "#/$defs/event_match" },
            "entry": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "reentry": {
                        "default": "once",
                        "anyOf": [
                            { "enum": ["once", "always"] },
                            {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["after"],
                                "properties": { "after": { "$ref": "#/$defs/duration" } }
                            }
                        ]
                    },
                    "unless": { "$ref": "#/$defs/condition_without_event" },
                    "holdout": { "$ref": "#/$defs/percent_with_sign" }
                }
            },
            "exit_when": { "type": "array", "items": { "$ref": "#/$defs/event_match" } },
            "goal": {
                "type": "object",
                "additionalProperties": false,
                "required": ["event"],
                "properties": {
                    "event": { "$ref": "#/$defs/event_type" },
                    "where": { "$ref": "#/$defs/condition" },
                    "within": { "$ref": "#/$defs/duration" },
                    "exit": { "type": "boolean", "default": true }
                }
            },
            "steps": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/step" } }
        },
        "$defs": defs
    })
}

/// A condition whose paths must match `path_pattern`; `name` is its own `$defs` entry, for
/// the recursion of `all`, `any` and `not`.
fn condition(name: &str, path_pattern: &str) -> Value {
    let me = format!("#/$defs/{name}");
    let scalar = json!({ "type": ["string", "number", "boolean"] });
    let mut compare = Map::new();
    compare.insert(
        "path".into(),
        json!({ "type": "string", "pattern": path_pattern }),
    );
    for op in Op::ALL {
        let operand = match op {
            Op::Eq | Op::Ne | Op::Contains => scalar.clone(),
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => json!({ "type": ["number", "string"] }),
            Op::In | Op::NotIn => json!({ "type": "array", "items": scalar.clone() }),
            Op::StartsWith => json!({ "type": "string" }),
            Op::Exists => json!({ "type": "boolean" }),
        };
        compare.insert(op.key().into(), operand);
    }
    let list = json!({ "type": "array", "minItems": 1, "items": { "$ref": me } });
    json!({
        "type": "object",
        "anyOf": [
            {
                "description": "{ path: P, OP: VALUE, ... }: every comparison must hold.",
                "additionalProperties": false,
                "required": ["path"],
                "minProperties": 2,
                "properties": compare
            },
            {
                "description": "{ did: EVENT_TYPE, within: DURATION }",
                "additionalProperties": false,
                "required": ["did"],
                "properties": {
                    "did": { "$ref": "#/$defs/event_type" },
                    "within": { "$ref": "#/$defs/duration" }
                }
            },
            {
                "additionalProperties": false,
                "required": ["all"],
                "properties": { "all": list.clone() }
            },
            {
                "additionalProperties": false,
                "required": ["any"],
                "properties": { "any": list }
            },
            {
                "additionalProperties": false,
                "required": ["not"],
                "properties": { "not": { "$ref": me } }
            }
        ]
    })
}

fn step() -> Value {
    let actions = ["wait", "wait_until", "wait_for", "send", "branch", "split"];
    let one_action: Vec<Value> = actions.iter().map(|a| json!({ "required": [a] })).collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["id"],
        "oneOf": one_action,
        "properties": {
            "id": { "$ref": "#/$defs/identifier", "not": { "const": "end" } },
            "next": { "$ref": "#/$defs/next" },
            "wait": { "$ref": "#/$defs/duration" },
            "wait_until": {
                "type": "object",
                "additionalProperties": false,
                "required": ["time"],
                "properties": { "time": { "$ref": "#/$defs/time_of_day" } }
            },
            "wait_for": {
                "type": "object",
                "additionalProperties": false,
                "required": ["event", "timeout"],
                "properties": {
                    "event": { "$ref": "#/$defs/event_type" },
                    "where": { "$ref": "#/$defs/condition" },
                    "for_send": {
                        "$ref": "#/$defs/identifier",
                        "description": "only events whose properties.command_id is a command this send step issued in the customer's journey"
                    },
                    "timeout": { "$ref": "#/$defs/duration" },
                    "on_event": { "$ref": "#/$defs/next" },
                    "on_timeout": { "$ref": "#/$defs/next" }
                }
            },
            "send": {
                "type": "object",
                "additionalProperties": false,
                "required": ["channels", "template"],
                "properties": {
                    "channels": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": true,
                        "items": { "type": "string", "minLength": 1 }
                    },
                    "template": { "type": "string", "minLength": 1, "pattern": r"\S" },
                    "data": {
                        "type": "object",
                        "additionalProperties": {
                            "if": { "type": "object", "required": ["path"] },
                            "then": {
                                "additionalProperties": false,
                                "properties": {
                                    "path": { "type": "string", "pattern": PATH_WITHOUT_EVENT }
                                }
                            }
                        }
                    },
                    "if_no_channel": { "enum": ["continue", "exit"], "default": "continue" }
                }
            },
            "branch": {
                "type": "array",
                "minItems": 1,
                "description": "Only the last case may omit `when`.",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["next"],
                    "properties": {
                        "when": { "$ref": "#/$defs/condition_without_event" },
                        "next": { "$ref": "#/$defs/next" }
                    }
                }
            },
            "split": {
                "type": "array",
                "minItems": 1,
                "description": "Percentages must add up to 100.",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "percent", "next"],
                    "properties": {
                        "name": { "type": "string", "minLength": 1 },
                        "percent": { "$ref": "#/$defs/percent" },
                        "next": { "$ref": "#/$defs/next" }
                    }
                }
            }
        }
    })
}
