//! Conditions (`{ path: P, OP: V }`, `{ did: T, within: D }`, `all`, `any`, `not`) and paths
//! used in conditions and send data.

use crate::check::{one_of, Cx};
use crate::model::{Condition, Op, Path, PathRoot};
use crate::values::{self, did_you_mean};
use crate::yaml::{Kind, Node, Scalar};

/// Where a condition or path is written decides whether `event.` paths are allowed: only in
/// `trigger`, `exit_when`, `goal` and `wait_for`, where there is an event being evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    WithEvent,
    WithoutEvent,
}

const FORMS: [&str; 5] = ["path", "did", "all", "any", "not"];

fn op_keys() -> impl Iterator<Item = &'static str> {
    Op::ALL.iter().map(|op| op.key())
}

/// Converts a condition node; reports every problem inside it.
pub(crate) fn condition(cx: &mut Cx, node: &Node, scope: Scope) -> Option<Condition> {
    let Kind::Map(entries) = &node.kind else {
        cx.err(node, "a condition must be a mapping");
        return None;
    };
    let keys: Vec<(String, &Node)> = entries.iter().map(|(k, _)| (k.display_text(), k)).collect();
    let present: Vec<&(String, &Node)> = keys
        .iter()
        .filter(|(k, _)| FORMS.contains(&k.as_str()))
        .collect();
    let form = match present.as_slice() {
        [] => {
            // `{ eq: 1 }` is a comparison that lacks its path; anything else is unrecognisable.
            if keys.iter().any(|(k, _)| op_keys().any(|op| op == k)) {
                "path"
            } else if keys.is_empty() {
                cx.err(
                    node,
                    format!("empty condition: expected {}", one_of(&FORMS)),
                );
                return None;
            } else {
                let all: Vec<&str> = FORMS
                    .iter()
                    .copied()
                    .chain(op_keys())
                    .chain(["within"])
                    .collect();
                for (name, key) in &keys {
                    let hint = did_you_mean(name, all.iter().copied());
                    cx.err(key, format!("unknown key `{name}` in condition{hint}"));
                }
                return None;
            }
        }
        [(first, _)] => first.as_str(),
        [(first, _), (second, second_key), ..] => {
            cx.err(
                second_key,
                format!(
                    "condition has both `{first}` and `{second}`; nest conditions in `all` or `any` to combine them"
                ),
            );
            return None;
        }
    };
    match form {
        "path" => compare(cx, node, scope),
        "did" => did(cx, node),
        "all" | "any" => {
            let fields = cx.fields(node, "a condition", "condition", &[form])?;
            let value = fields.get(form)?;
            let items = cx.list(value, &format!("`{form}`"))?;
            if items.is_empty() {
                cx.err(value, format!("`{form}` must list at least one condition"));
                return None;
            }
            let converted: Vec<Option<Condition>> = items
                .iter()
                .map(|item| condition(cx, item, scope))
                .collect();
            let conditions: Option<Vec<Condition>> = converted.into_iter().collect();
            let conditions = conditions?;
            Some(if form == "all" {
                Condition::All(conditions)
            } else {
                Condition::Any(conditions)
            })
        }
        _ => {
            let fields = cx.fields(node, "a condition", "condition", &["not"])?;
            let inner = condition(cx, fields.get("not")?, scope)?;
            Some(Condition::Not(Box::new(inner)))
        }
    }
}

fn compare(cx: &mut Cx, node: &Node, scope: Scope) -> Option<Condition> {
    let allowed: Vec<&str> = ["path"].into_iter().chain(op_keys()).collect();
    let fields = cx.fields(node, "a condition", "condition", &allowed)?;
    let path = fields.require(cx, "path").and_then(|p| path(cx, p, scope));
    let mut comparisons = Vec::new();
    let mut ok = true;
    for (key, value) in fields.entries {
        let Some(op) = Op::ALL
            .iter()
            .copied()
            .find(|op| key.text() == Some(op.key()))
        else {
            continue;
        };
        match operand(cx, op, value) {
            Some(v) => comparisons.push((op, v)),
            None => ok = false,
        }
    }
    if comparisons.is_empty() && ok {
        let ops: Vec<&str> = op_keys().collect();
        cx.err(
            node,
            format!(
                "missing operator in condition; expected one of {}",
                one_of(&ops)
            ),
        );
        return None;
    }
    if !ok {
        return None;
    }
    Some(Condition::Compare {
        path: path?,
        comparisons,
    })
}

/// Checks an operator's value type and converts it to JSON.
fn operand(cx: &mut Cx, op: Op, value: &Node) -> Option<serde_json::Value> {
    let scalar = value.scalar();
    let is_plain_value = |s: Option<&Scalar>| {
        matches!(
            s,
            Some(Scalar::Str(_) | Scalar::Int(_) | Scalar::Float(_) | Scalar::Bool(_))
        )
    };
    let key = op.key();
    let problem = match op {
        Op::Eq | Op::Ne | Op::Contains => {
            (!is_plain_value(scalar)).then(|| format!("`{key}` needs a string, number or boolean"))
        }
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => (!matches!(
            scalar,
            Some(Scalar::Str(_) | Scalar::Int(_) | Scalar::Float(_))
        ))
        .then(|| format!("`{key}` needs a number or a string")),
        Op::StartsWith => {
            (!matches!(scalar, Some(Scalar::Str(_)))).then(|| format!("`{key}` needs a string"))
        }
        Op::Exists => (!matches!(scalar, Some(Scalar::Bool(_))))
            .then(|| format!("`{key}` needs true or false")),
        Op::In | Op::NotIn => match &value.kind {
            Kind::Seq(items) => {
                let mut bad = false;
                for item in items {
                    if !is_plain_value(item.scalar()) {
                        cx.err(
                            item,
                            format!("`{key}` items must be strings, numbers or booleans"),
                        );
                        bad = true;
                    }
                }
                if bad {
                    return None;
                }
                None
            }
            _ => Some(format!("`{key}` needs a list of values")),
        },
    };
    match problem {
        Some(message) => {
            cx.err(value, message);
            None
        }
        None => Some(value.to_json()),
    }
}

fn did(cx: &mut Cx, node: &Node) -> Option<Condition> {
    let fields = cx.fields(node, "a condition", "condition", &["did", "within"])?;
    let event = fields.get("did").and_then(|n| cx.nonempty_string(n, "did"));
    let within = match fields.get("within") {
        Some(n) => Some(cx.duration(n)?),
        None => None,
    };
    Some(Condition::Did {
        event: event?,
        within,
    })
}

/// Converts a path node, checking that `event.` is allowed where it is written.
pub(crate) fn path(cx: &mut Cx, node: &Node, scope: Scope) -> Option<Path> {
    let text = cx.nonempty_string(node, "path")?;
    match values::parse_path(&text) {
        Ok(path) if path.root == PathRoot::Event && scope == Scope::WithoutEvent => {
            cx.err(
                node,
                format!(
                    "path `{text}` is not allowed here: `event.` paths only work in trigger, \
                     exit_when, goal and wait_for conditions"
                ),
            );
            None
        }
        Ok(path) => Some(path),
        Err(message) => {
            cx.err(node, message);
            None
        }
    }
}
