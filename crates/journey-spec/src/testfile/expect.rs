//! A test case's expectations: sends, decisions and sends that must not happen, each with its
//! time window.

use super::inputs::customer_ref;
use super::load::{located_string, pos, time};
use super::{
    DecisionExpect, Expectation, Located, NoSendExpect, SendExpect, TestCustomer, Window,
    DECISION_KINDS,
};
use crate::check::{Cx, Fields};
use crate::yaml::Node;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub(super) fn window(
    cx: &mut Cx,
    f: &Fields,
    start: Option<DateTime<Utc>>,
) -> Option<Option<Located<Window>>> {
    match (f.get("at"), f.get("between")) {
        (Some(a), Some(b)) => {
            cx.err(b, "give either `at` or `between`, not both");
            let _ = a;
            None
        }
        (Some(n), None) => {
            let t = time(cx, n, start)?;
            Some(Some(Located {
                value: Window { from: t, to: t },
                pos: pos(n),
            }))
        }
        (None, Some(n)) => {
            let items = cx.list(n, "`between`")?;
            if items.len() != 2 {
                cx.err(n, "`between` must be two times: [FROM, TO]");
                return None;
            }
            let from = time(cx, &items[0], start);
            let to = time(cx, &items[1], start);
            let (from, to) = (from?, to?);
            if to < from {
                cx.err(
                    n,
                    "`between` must go forward: its second time is before its first",
                );
                return None;
            }
            Some(Some(Located {
                value: Window { from, to },
                pos: pos(n),
            }))
        }
        (None, None) => Some(None),
    }
}

pub(super) fn expectations(
    cx: &mut Cx,
    node: &Node,
    start: Option<DateTime<Utc>>,
    customers: &[TestCustomer],
) -> Option<Vec<Expectation>> {
    let items = cx.list(node, "`expect`")?;
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(f) = cx.fields(
            item,
            "an expectation",
            "expectation",
            &["send", "decision", "no_send"],
        ) else {
            ok = false;
            continue;
        };
        if f.entries.len() != 1 {
            cx.err(
                item,
                "an expectation is exactly one of `send`, `decision` or `no_send`",
            );
            ok = false;
            continue;
        }
        let (key, value) = &f.entries[0];
        let parsed = match key.text() {
            Some("send") => send_expect(cx, value, start, customers).map(Expectation::Send),
            Some("decision") => {
                decision_expect(cx, value, start, customers).map(Expectation::Decision)
            }
            Some("no_send") => no_send_expect(cx, value, start, customers).map(Expectation::NoSend),
            _ => None,
        };
        match parsed {
            Some(e) => out.push(e),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The customer an expectation is about: any customer when several are declared and none is
/// named.
fn optional_customer(
    cx: &mut Cx,
    f: &Fields,
    customers: &[TestCustomer],
) -> Option<Option<Located<String>>> {
    customer_ref(cx, f, customers, None)
}

fn send_expect(
    cx: &mut Cx,
    node: &Node,
    start: Option<DateTime<Utc>>,
    customers: &[TestCustomer],
) -> Option<SendExpect> {
    let f = cx.fields(
        node,
        "`send`",
        "send expectation",
        &[
            "customer", "channel", "template", "journey", "step", "at", "between", "data",
        ],
    )?;
    let customer = optional_customer(cx, &f, customers);
    let channel = located_string(cx, &f, "channel");
    let template = located_string(cx, &f, "template");
    let journey = located_string(cx, &f, "journey");
    let step = located_string(cx, &f, "step");
    let window = window(cx, &f, start);
    let data = match f.get("data") {
        Some(n) => match n.to_json() {
            Value::Object(m) => Some(m),
            _ => {
                cx.err(
                    n,
                    "`data` must be a mapping of the fields expected in the message",
                );
                None
            }
        },
        None => Some(Map::new()),
    };
    Some(SendExpect {
        pos: pos(node),
        customer: customer?,
        channel: channel?,
        template: template?,
        journey: journey?,
        step: step?,
        window: window?,
        data: data?,
    })
}

fn decision_expect(
    cx: &mut Cx,
    node: &Node,
    start: Option<DateTime<Utc>>,
    customers: &[TestCustomer],
) -> Option<DecisionExpect> {
    let f = cx.fields(
        node,
        "`decision`",
        "decision expectation",
        &[
            "customer", "kind", "reason", "journey", "step", "channel", "branch", "holdout", "at",
            "between",
        ],
    )?;
    let kind = match f.require(cx, "kind") {
        Some(n) => {
            let kinds: Vec<(&str, &str)> = DECISION_KINDS.iter().map(|k| (*k, *k)).collect();
            cx.choice(n, "decision kind", &kinds).map(|k| Located {
                value: k.to_string(),
                pos: pos(n),
            })
        }
        None => None,
    };
    let customer = optional_customer(cx, &f, customers);
    let reason = located_string(cx, &f, "reason");
    let journey = located_string(cx, &f, "journey");
    let step = located_string(cx, &f, "step");
    let channel = located_string(cx, &f, "channel");
    let branch = located_string(cx, &f, "branch");
    let holdout = match f.get("holdout") {
        Some(n) => cx.bool(n, "holdout").map(Some),
        None => Some(None),
    };
    let window = window(cx, &f, start);
    Some(DecisionExpect {
        pos: pos(node),
        customer: customer?,
        kind: kind?,
        reason: reason?.map(|r| r.value),
        journey: journey?,
        step: step?,
        channel: channel?,
        branch: branch?.map(|b| b.value),
        holdout: holdout?,
        window: window?,
    })
}

fn no_send_expect(
    cx: &mut Cx,
    node: &Node,
    start: Option<DateTime<Utc>>,
    customers: &[TestCustomer],
) -> Option<NoSendExpect> {
    let f = cx.fields(
        node,
        "`no_send`",
        "no_send expectation",
        &[
            "customer", "channel", "template", "journey", "from", "until",
        ],
    )?;
    let customer = optional_customer(cx, &f, customers);
    let channel = located_string(cx, &f, "channel");
    let template = located_string(cx, &f, "template");
    let journey = located_string(cx, &f, "journey");
    let from = match f.get("from") {
        Some(n) => time(cx, n, start),
        None => start,
    };
    let until_node = f.require(cx, "until");
    let until = until_node.and_then(|n| time(cx, n, start));
    let (from, until, until_node) = (from?, until?, until_node?);
    if until < from {
        cx.err(until_node, "`until` is before `from`");
        return None;
    }
    Some(NoSendExpect {
        pos: pos(node),
        customer: customer?,
        channel: channel?,
        template: template?,
        journey: journey?,
        window: Located {
            value: Window { from, to: until },
            pos: pos(until_node),
        },
    })
}
