//! A test case's inputs: its customers (profile, consent) and its timed events.

use super::load::{fmt_time, pos, time};
use super::{Located, TestCustomer, TestEvent};
use crate::check::{Cx, Fields};
use crate::values;
use crate::yaml::{Kind, Node, Scalar};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub(super) fn customers(cx: &mut Cx, node: Option<&Node>) -> Option<Vec<TestCustomer>> {
    let node = node?;
    let items = cx.list(node, "`customers`")?;
    if items.is_empty() {
        cx.err(node, "`customers` must hold at least one customer");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(f) = cx.fields(
            item,
            "a customer",
            "customer",
            &["id", "profile", "consent"],
        ) else {
            ok = false;
            continue;
        };
        let id = f
            .require(cx, "id")
            .and_then(|n| cx.nonempty_string(n, "id"));
        let profile = match f.get("profile") {
            Some(n) => match n.to_json() {
                Value::Object(m) => Some(m),
                _ => {
                    cx.err(n, "`profile` must be a mapping of attributes");
                    None
                }
            },
            None => Some(Map::new()),
        };
        let mut consent = Vec::new();
        if let Some(n) = f.get("consent") {
            match &n.kind {
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let granted = match (v.scalar(), v.text()) {
                            (Some(Scalar::Bool(b)), _) => Some(*b),
                            (_, Some("granted")) => Some(true),
                            (_, Some("withdrawn")) => Some(false),
                            _ => {
                                cx.err(
                                    v,
                                    "consent must be `granted` or `withdrawn` (or true / false)",
                                );
                                None
                            }
                        };
                        if let Some(granted) = granted {
                            consent.push((
                                Located {
                                    value: k.display_text(),
                                    pos: pos(k),
                                },
                                granted,
                            ));
                        } else {
                            ok = false;
                        }
                    }
                }
                _ => {
                    cx.err(n, "`consent` must map channels to `granted` or `withdrawn`");
                    ok = false;
                }
            }
        }
        match (id, profile) {
            (Some(id), Some(profile)) => {
                if out.iter().any(|c: &TestCustomer| c.id == id) {
                    cx.err(item, format!("duplicate customer `{id}`"));
                    ok = false;
                }
                out.push(TestCustomer {
                    id,
                    pos: pos(item),
                    profile,
                    consent,
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// The customer an event or expectation names, checked against the declared ones; the only
/// customer when there is one and none is named.
pub(super) fn customer_ref(
    cx: &mut Cx,
    f: &Fields,
    customers: &[TestCustomer],
    required_for: Option<&Node>,
) -> Option<Option<Located<String>>> {
    match f.get("customer") {
        Some(n) => {
            let id = cx.nonempty_string(n, "customer")?;
            if !customers.iter().any(|c| c.id == id) {
                let hint = values::did_you_mean(&id, customers.iter().map(|c| c.id.as_str()));
                cx.err(
                    n,
                    format!("customer `{id}` is not declared in `customers`{hint}"),
                );
                return None;
            }
            Some(Some(Located {
                value: id,
                pos: pos(n),
            }))
        }
        None if customers.len() == 1 => Some(Some(Located {
            value: customers[0].id.clone(),
            pos: pos(f.node),
        })),
        None => {
            if let Some(node) = required_for {
                cx.err(
                    node,
                    "missing `customer`: the test has several customers, say which one",
                );
                return None;
            }
            Some(None)
        }
    }
}

pub(super) fn events(
    cx: &mut Cx,
    node: &Node,
    customers: &[TestCustomer],
    start: Option<DateTime<Utc>>,
    slug: &str,
) -> Option<Vec<TestEvent>> {
    let items = cx.list(node, "`events`")?;
    let mut out: Vec<TestEvent> = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let Some(f) = cx.fields(
            item,
            "an event",
            "event",
            &["at", "customer", "type", "properties", "event_id"],
        ) else {
            ok = false;
            continue;
        };
        let at = f.require(cx, "at").and_then(|n| time(cx, n, start));
        let customer = customer_ref(cx, &f, customers, Some(item));
        let event_type = f
            .require(cx, "type")
            .and_then(|n| cx.nonempty_string(n, "type"));
        let properties = match f.get("properties") {
            Some(n) => match n.to_json() {
                Value::Object(m) => Some(m),
                _ => {
                    cx.err(n, "`properties` must be a mapping");
                    None
                }
            },
            None => Some(Map::new()),
        };
        let event_id = match f.get("event_id") {
            Some(n) => cx.nonempty_string(n, "event_id"),
            None => Some(format!("{slug}-e{}", i + 1)),
        };
        match (at, customer, event_type, properties, event_id) {
            (
                Some(at),
                Some(Some(customer)),
                Some(event_type),
                Some(properties),
                Some(event_id),
            ) => {
                if let Some(prev) = out.last() {
                    if at < prev.at {
                        cx.err(
                            item,
                            format!(
                                "events must be listed in time order: this one ({}) is before \
                                 the one on line {} ({})",
                                fmt_time(at),
                                prev.pos.line,
                                fmt_time(prev.at)
                            ),
                        );
                        ok = false;
                    }
                }
                out.push(TestEvent {
                    pos: pos(item),
                    event_id,
                    customer: customer.value,
                    event_type,
                    at,
                    properties,
                });
            }
            _ => ok = false,
        }
    }
    if out.is_empty() && ok {
        cx.err(node, "`events` must hold at least one event");
        return None;
    }
    // Customers are kept in the model for expectations; the list itself must be valid.
    ok.then_some(out)
}
