//! Condition evaluation (docs/journeys.md, "Conditions").
//!
//! Semantics chosen where the contract leaves room:
//! - a JSON `null` is treated like a missing value;
//! - numbers compare as `f64`, strings byte-wise, booleans only for (in)equality, lists and
//!   objects only for (in)equality by JSON value; any other pairing is "not comparable";
//! - every comparison on a missing value is false, except `exists: false`, `ne` and `not_in`,
//!   which are true;
//! - `ne` on a present value holds when both sides are comparable and differ (so, as the
//!   contract says, comparing a number with a string is false, for `ne` too);
//! - `in` holds when some list element is equal; `not_in` holds when no element is equal
//!   (elements of another type never equal);
//! - `contains`: substring for strings, element equality for lists;
//! - `did` without `within` means "ever since the engine has known the customer"; with
//!   `within: W` an earlier event at `t` counts when `t > now - W` (the same half-open window as
//!   frequency caps).

use crate::state::{InlineStr, PVal};
use journey_spec::{Condition, Duration, Op, Path, PathRoot};
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A borrowed view of a present, non-null value.
#[derive(Debug, Clone, Copy)]
pub enum V<'a> {
    Bool(bool),
    Num(f64),
    Str(&'a str),
    /// Lists and objects.
    Json(&'a Value),
}

impl<'a> V<'a> {
    /// `None` for `null`.
    pub fn of(v: &'a Value) -> Option<V<'a>> {
        match v {
            Value::Null => None,
            Value::Bool(b) => Some(V::Bool(*b)),
            Value::Number(n) => Some(V::Num(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => Some(V::Str(s)),
            other => Some(V::Json(other)),
        }
    }
    fn of_pval(v: &'a PVal) -> Option<V<'a>> {
        match v {
            PVal::Bool(b) => Some(V::Bool(*b)),
            PVal::Num(n) => Some(V::Num(n.as_f64().unwrap_or(f64::NAN))),
            PVal::Str(s) => Some(V::Str(s)),
            PVal::Json(j) => V::of(j),
        }
    }
}

/// Where `trigger.*` paths read from.
#[derive(Clone, Copy)]
pub enum TriggerSrc<'a> {
    /// At entry the trigger is the event being handled.
    Event(&'a str, &'a Map<String, Value>),
    /// Inside an instance: the trigger type and the properties kept at entry.
    Kept(&'a str, &'a [(InlineStr, Value)]),
}

/// Everything a condition can look at.
pub struct Env<'a> {
    /// The event being evaluated (type, properties), where `event.*` paths are allowed.
    pub event: Option<(&'a str, &'a Map<String, Value>)>,
    pub trigger: Option<TriggerSrc<'a>>,
    pub profile: &'a [(InlineStr, PVal)],
    /// `did` lookup: (event type, within) -> had it.
    pub did: &'a dyn Fn(&str, Option<Duration>) -> bool,
}

/// Maps of at most this many entries are searched by comparing keys instead of hashing.
const SCAN_MAX: usize = 8;

/// `m.get(key)`. The maps of events are small (a handful of properties), and `serde_json`'s
/// order-preserving map hashes with SipHash: comparing the few keys costs less than hashing
/// one. Keys are unique in a map, so both find the same entry.
#[inline]
pub(crate) fn get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if m.len() <= SCAN_MAX {
        m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        m.get(key)
    }
}

fn walk<'a>(mut v: &'a Value, rest: &[String]) -> Option<&'a Value> {
    for s in rest {
        v = get(v.as_object()?, s)?;
    }
    Some(v)
}

fn from_map<'a>(m: &'a Map<String, Value>, segs: &[String]) -> Option<V<'a>> {
    let (first, rest) = segs.split_first()?;
    V::of(walk(get(m, first)?, rest)?)
}

/// Resolves a path to a present value.
pub fn resolve<'a>(path: &Path, env: &Env<'a>) -> Option<V<'a>> {
    let segs = &path.segments;
    match path.root {
        PathRoot::Event => {
            let (ty, props) = env.event?;
            if segs.len() == 1 && segs[0] == "type" {
                return Some(V::Str(ty));
            }
            if segs.first().map(String::as_str) != Some("properties") {
                return None;
            }
            from_map(props, &segs[1..])
        }
        PathRoot::Trigger => {
            let src = env.trigger?;
            let ty = match src {
                TriggerSrc::Event(t, _) | TriggerSrc::Kept(t, _) => t,
            };
            if segs.len() == 1 && segs[0] == "type" {
                return Some(V::Str(ty));
            }
            if segs.first().map(String::as_str) != Some("properties") {
                return None;
            }
            match src {
                TriggerSrc::Event(_, props) => from_map(props, &segs[1..]),
                TriggerSrc::Kept(_, kept) => {
                    let (first, rest) = segs[1..].split_first()?;
                    let v = &kept.iter().find(|(k, _)| **k == **first)?.1;
                    V::of(walk(v, rest)?)
                }
            }
        }
        PathRoot::Profile => {
            let (first, rest) = segs.split_first()?;
            let pv = &env.profile.iter().find(|(k, _)| **k == **first)?.1;
            if rest.is_empty() {
                V::of_pval(pv)
            } else {
                match pv {
                    PVal::Json(j) => V::of(walk(j, rest)?),
                    _ => None,
                }
            }
        }
    }
}

/// Equality when comparable; `None` when the two values are of kinds that do not compare.
fn equal(a: V, b: V) -> Option<bool> {
    match (a, b) {
        (V::Num(x), V::Num(y)) => Some(x == y),
        (V::Str(x), V::Str(y)) => Some(x == y),
        (V::Bool(x), V::Bool(y)) => Some(x == y),
        (V::Json(x), V::Json(y)) => Some(x == y),
        _ => None,
    }
}

fn order(a: V, b: V) -> Option<Ordering> {
    match (a, b) {
        (V::Num(x), V::Num(y)) => x.partial_cmp(&y),
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// One comparison of a present-or-missing value against an operand.
pub fn compare(value: Option<V>, op: Op, operand: &Value) -> bool {
    let rhs = V::of(operand);
    match op {
        Op::Exists => operand.as_bool().unwrap_or(true) == value.is_some(),
        Op::Ne => match (value, rhs) {
            (None, _) => true,
            (Some(a), Some(b)) => equal(a, b) == Some(false),
            (Some(_), None) => false,
        },
        Op::NotIn => match value {
            None => true,
            Some(a) => match operand {
                Value::Array(items) => !items
                    .iter()
                    .any(|e| V::of(e).and_then(|b| equal(a, b)) == Some(true)),
                _ => false,
            },
        },
        _ => {
            let Some(a) = value else { return false };
            match op {
                Op::Eq => rhs.and_then(|b| equal(a, b)) == Some(true),
                Op::Gt => rhs.and_then(|b| order(a, b)) == Some(Ordering::Greater),
                Op::Gte => matches!(
                    rhs.and_then(|b| order(a, b)),
                    Some(Ordering::Greater | Ordering::Equal)
                ),
                Op::Lt => rhs.and_then(|b| order(a, b)) == Some(Ordering::Less),
                Op::Lte => matches!(
                    rhs.and_then(|b| order(a, b)),
                    Some(Ordering::Less | Ordering::Equal)
                ),
                Op::In => match operand {
                    Value::Array(items) => items
                        .iter()
                        .any(|e| V::of(e).and_then(|b| equal(a, b)) == Some(true)),
                    _ => false,
                },
                Op::Contains => match (a, rhs) {
                    (V::Str(s), Some(V::Str(needle))) => s.contains(needle),
                    (V::Json(Value::Array(items)), Some(b)) => items
                        .iter()
                        .any(|e| V::of(e).and_then(|x| equal(x, b)) == Some(true)),
                    _ => false,
                },
                Op::StartsWith => match (a, rhs) {
                    (V::Str(s), Some(V::Str(p))) => s.starts_with(p),
                    _ => false,
                },
                Op::Exists | Op::Ne | Op::NotIn => unreachable!("handled above"),
            }
        }
    }
}

/// Evaluates a condition.
pub fn eval(c: &Condition, env: &Env) -> bool {
    match c {
        Condition::Compare { path, comparisons } => {
            let v = resolve(path, env);
            comparisons.iter().all(|(op, x)| compare(v, *op, x))
        }
        Condition::Did { event, within } => (env.did)(event, *within),
        Condition::All(cs) => cs.iter().all(|c| eval(c, env)),
        Condition::Any(cs) => cs.iter().any(|c| eval(c, env)),
        Condition::Not(c) => !eval(c, env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_spec::{Path, PathRoot};
    use serde_json::json;

    fn path(root: PathRoot, segs: &[&str]) -> Path {
        Path {
            root,
            segments: segs.iter().map(|s| s.to_string()).collect(),
            text: segs.join("."),
        }
    }

    fn cmp(v: Option<Value>, op: Op, operand: Value) -> bool {
        compare(v.as_ref().and_then(V::of), op, &operand)
    }

    #[test]
    fn missing_value_semantics() {
        for (op, operand, expected) in [
            (Op::Eq, json!(1), false),
            (Op::Ne, json!(1), true),
            (Op::Gt, json!(1), false),
            (Op::Gte, json!(1), false),
            (Op::Lt, json!(1), false),
            (Op::Lte, json!(1), false),
            (Op::In, json!([1]), false),
            (Op::NotIn, json!([1]), true),
            (Op::Contains, json!("a"), false),
            (Op::StartsWith, json!("a"), false),
            (Op::Exists, json!(true), false),
            (Op::Exists, json!(false), true),
        ] {
            assert_eq!(cmp(None, op, operand.clone()), expected, "{op:?}");
            // null behaves as missing
            assert_eq!(cmp(Some(Value::Null), op, operand), expected, "null {op:?}");
        }
    }

    #[test]
    fn numbers_strings_and_mixing() {
        assert!(cmp(Some(json!(20)), Op::Gte, json!(20)));
        assert!(cmp(Some(json!(20.0)), Op::Eq, json!(20)));
        assert!(cmp(Some(json!(19.99)), Op::Lt, json!(20)));
        assert!(!cmp(Some(json!(21)), Op::Lte, json!(20)));
        assert!(cmp(Some(json!(21)), Op::Gt, json!(20)));
        assert!(cmp(Some(json!("b")), Op::Gt, json!("a")));
        assert!(
            cmp(Some(json!("10")), Op::Lt, json!("9")),
            "strings compare as strings"
        );
        // number vs string is false, for every operator that compares
        for op in [Op::Eq, Op::Ne, Op::Gt, Op::Gte, Op::Lt, Op::Lte] {
            assert!(!cmp(Some(json!(5)), op, json!("5")), "{op:?}");
            assert!(!cmp(Some(json!("5")), op, json!(5)), "{op:?}");
        }
        assert!(cmp(Some(json!(5)), Op::Ne, json!(6)));
        assert!(!cmp(Some(json!(5)), Op::Ne, json!(5)));
        assert!(cmp(Some(json!(true)), Op::Eq, json!(true)));
        assert!(!cmp(Some(json!(true)), Op::Gt, json!(false)));
    }

    #[test]
    fn lists_contains_prefix_exists() {
        assert!(cmp(Some(json!("GB")), Op::In, json!(["GB", "IE"])));
        assert!(!cmp(Some(json!("FR")), Op::In, json!(["GB", "IE"])));
        assert!(cmp(Some(json!("FR")), Op::NotIn, json!(["GB", "IE"])));
        assert!(!cmp(Some(json!("GB")), Op::NotIn, json!(["GB", "IE"])));
        assert!(cmp(Some(json!(5)), Op::NotIn, json!(["5"])));
        assert!(cmp(Some(json!(2)), Op::In, json!([1, 2.0])));
        assert!(cmp(Some(json!("tent-2")), Op::Contains, json!("nt")));
        assert!(cmp(Some(json!(["a", "b"])), Op::Contains, json!("b")));
        assert!(!cmp(Some(json!(["a", "b"])), Op::Contains, json!("c")));
        assert!(!cmp(Some(json!(5)), Op::Contains, json!("5")));
        assert!(cmp(Some(json!("TENT-2")), Op::StartsWith, json!("TENT")));
        assert!(!cmp(Some(json!("TENT-2")), Op::StartsWith, json!("ENT")));
        assert!(cmp(Some(json!("x")), Op::Exists, json!(true)));
        assert!(!cmp(Some(json!("x")), Op::Exists, json!(false)));
        assert!(cmp(Some(json!({"a":1})), Op::Eq, json!({"a":1})));
    }

    #[test]
    fn paths_and_combinators() {
        let props: Map<String, Value> =
            serde_json::from_value(json!({"cart_value": 59.0, "item": {"sku": "TENT-2"}})).unwrap();
        let kept: Vec<(InlineStr, Value)> = vec![("cart_value".into(), json!(10))];
        let profile: Vec<(InlineStr, PVal)> = vec![
            ("tier".into(), PVal::Str("vip".into())),
            ("prefs".into(), PVal::Json(Box::new(json!({"lang": "en"})))),
        ];
        let did = |t: &str, w: Option<Duration>| t == "order_completed" && w.is_none();
        let env = Env {
            event: Some(("cart_updated", &props)),
            trigger: Some(TriggerSrc::Kept("cart_updated", &kept)),
            profile: &profile,
            did: &did,
        };
        let c = |p: Path, op: Op, v: Value| Condition::Compare {
            path: p,
            comparisons: vec![(op, v)],
        };
        let ev_sku = c(
            path(PathRoot::Event, &["properties", "item", "sku"]),
            Op::Eq,
            json!("TENT-2"),
        );
        assert!(eval(&ev_sku, &env));
        assert!(eval(
            &c(
                path(PathRoot::Event, &["type"]),
                Op::Eq,
                json!("cart_updated")
            ),
            &env
        ));
        assert!(eval(
            &c(
                path(PathRoot::Trigger, &["properties", "cart_value"]),
                Op::Eq,
                json!(10)
            ),
            &env
        ));
        assert!(eval(
            &c(
                path(PathRoot::Profile, &["prefs", "lang"]),
                Op::Eq,
                json!("en")
            ),
            &env
        ));
        assert!(!eval(
            &c(
                path(PathRoot::Profile, &["tier", "x"]),
                Op::Exists,
                json!(true)
            ),
            &env
        ));
        let did_any = Condition::Did {
            event: "order_completed".into(),
            within: None,
        };
        let did_win = Condition::Did {
            event: "order_completed".into(),
            within: Some(Duration::from_secs(60)),
        };
        assert!(eval(&did_any, &env));
        assert!(!eval(&did_win, &env));
        assert!(eval(
            &Condition::All(vec![did_any.clone(), ev_sku.clone()]),
            &env
        ));
        assert!(!eval(
            &Condition::All(vec![did_win.clone(), ev_sku.clone()]),
            &env
        ));
        assert!(eval(
            &Condition::Any(vec![did_win.clone(), ev_sku.clone()]),
            &env
        ));
        assert!(eval(&Condition::Not(Box::new(did_win)), &env));
        // Multiple comparisons on one path must all hold.
        let range = Condition::Compare {
            path: path(PathRoot::Event, &["properties", "cart_value"]),
            comparisons: vec![(Op::Gte, json!(20)), (Op::Lt, json!(50))],
        };
        assert!(!eval(&range, &env));
        // No event in scope: event paths are missing.
        let env2 = Env { event: None, ..env };
        assert!(!eval(&ev_sku, &env2));
    }
}
