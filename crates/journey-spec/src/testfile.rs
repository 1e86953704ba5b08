//! Journey test files (`*.test.yaml`, docs/journeys.md "Testing journeys"): the typed model and
//! its loader. A test file names the configuration and journeys it runs with, and holds test
//! cases: customers (profile, consent), timed events, and expectations about the sends and
//! decisions the engine makes.
//!
//! It lives in this crate, beside journeys and configuration, because it is read with the same
//! positioned YAML tree and checker, so every problem is reported as `FILE:LINE:COLUMN`. What
//! needs the loaded journeys (unknown journey, step, channel or template in an expectation) is
//! checked by the caller with the positions kept in the model ([`Pos`]).
//!
//! Times are absolute RFC 3339 instants (`2026-11-27T09:00:00Z`) or offsets from the test's
//! `start` (`+2h`, `+1d2h30m`).

use crate::check::{Cx, Fields};
use crate::diagnostic::Diagnostic;
use crate::values;
use crate::yaml::{self, Kind, Node, Scalar};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// A 1-based line and column in the test file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

/// A loaded test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    pub path: PathBuf,
    /// The configuration, resolved against the test file's directory.
    pub config: Option<Located<PathBuf>>,
    /// Journey files to load instead of the configuration's `journeys_dir`, resolved against
    /// the test file's directory.
    pub journeys: Option<Vec<Located<PathBuf>>>,
    pub tests: Vec<TestCase>,
}

/// Whether expectations must be met in the order written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Each expectation is met after the one before it (the default).
    Sequence,
    /// Each expectation is met by a distinct record, in any order.
    Set,
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub pos: Pos,
    pub start: DateTime<Utc>,
    pub customers: Vec<TestCustomer>,
    pub events: Vec<TestEvent>,
    pub order: Order,
    /// When true, a send that no `send` expectation matches fails the test.
    pub no_other_sends: bool,
    /// Timers are fired up to this instant after the last event: `until`, else 30 days after
    /// the last event, or the latest time an expectation names when that is later.
    pub until: DateTime<Utc>,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub struct TestCustomer {
    pub id: String,
    pub pos: Pos,
    pub profile: Map<String, Value>,
    /// `(channel, granted)` in the order written.
    pub consent: Vec<(Located<String>, bool)>,
}

#[derive(Debug, Clone)]
pub struct TestEvent {
    pub pos: Pos,
    pub event_id: String,
    pub customer: String,
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub properties: Map<String, Value>,
}

/// An inclusive time window; `at:` is a window of one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum Expectation {
    Send(SendExpect),
    Decision(DecisionExpect),
    NoSend(NoSendExpect),
}

impl Expectation {
    pub fn pos(&self) -> Pos {
        match self {
            Expectation::Send(e) => e.pos,
            Expectation::Decision(e) => e.pos,
            Expectation::NoSend(e) => e.pos,
        }
    }
}

/// `send:`: a command was issued with these fields (those not given match anything).
#[derive(Debug, Clone)]
pub struct SendExpect {
    pub pos: Pos,
    pub customer: Option<Located<String>>,
    pub channel: Option<Located<String>>,
    pub template: Option<Located<String>>,
    pub journey: Option<Located<String>>,
    pub step: Option<Located<String>>,
    pub window: Option<Located<Window>>,
    /// Every key given must be in the command's data with an equal value.
    pub data: Map<String, Value>,
}

/// `decision:`: a decision record with these fields.
#[derive(Debug, Clone)]
pub struct DecisionExpect {
    pub pos: Pos,
    pub customer: Option<Located<String>>,
    pub kind: Located<String>,
    pub reason: Option<String>,
    pub journey: Option<Located<String>>,
    pub step: Option<Located<String>>,
    pub channel: Option<Located<String>>,
    pub branch: Option<String>,
    pub holdout: Option<bool>,
    pub window: Option<Located<Window>>,
}

/// `no_send:`: no command matching the filters was issued from `from` to `until` inclusive.
#[derive(Debug, Clone)]
pub struct NoSendExpect {
    pub pos: Pos,
    pub customer: Option<Located<String>>,
    pub channel: Option<Located<String>>,
    pub template: Option<Located<String>>,
    pub journey: Option<Located<String>>,
    pub window: Located<Window>,
}

/// How long after the last event a test without `until` runs (its timers fire up to then).
pub const DEFAULT_RUN_AFTER_LAST_EVENT: chrono::Duration = chrono::Duration::days(30);

/// Every decision kind the engine records (docs/reference/decisions.md).
pub use crate::contracts::DECISION_KINDS;

fn pos(node: &Node) -> Pos {
    Pos {
        line: node.line,
        column: node.col,
    }
}

/// Reads and checks a test file; every problem is a `FILE:LINE:COLUMN` diagnostic.
pub fn load_test_file(path: &Path) -> Result<TestFile, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::whole_file(
            path,
            format!("cannot read file: {e}"),
        )]
    })?;
    parse_test_file(&text, path)
}

/// Parses the text of a test file (`file` names it in diagnostics and anchors relative paths).
pub fn parse_test_file(text: &str, file: &Path) -> Result<TestFile, Vec<Diagnostic>> {
    let parsed = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Err(vec![Diagnostic::new(
                file,
                e.line,
                e.col,
                format!("invalid YAML: {}", e.message),
            )])
        }
    };
    let mut cx = Cx::new(file);
    for p in &parsed.problems {
        cx.at(p.line, p.col, p.message.clone());
    }
    let Some(root) = parsed.root else {
        return Err(vec![Diagnostic::whole_file(file, "the test file is empty")]);
    };
    let result = file_model(&mut cx, &root, file);
    let diagnostics = cx.finish();
    match result {
        Some(model) if diagnostics.is_empty() => Ok(model),
        _ => Err(diagnostics),
    }
}

const FILE_KEYS: &[&str] = &["config", "journeys", "start", "tests"];
const TEST_KEYS: &[&str] = &[
    "name",
    "start",
    "customers",
    "events",
    "order",
    "no_other_sends",
    "until",
    "expect",
];

fn file_model(cx: &mut Cx, root: &Node, file: &Path) -> Option<TestFile> {
    let f = cx.fields(root, "a test file", "test file", FILE_KEYS)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let config = match f.get("config") {
        Some(n) => cx.nonempty_string(n, "config").map(|s| {
            Some(Located {
                value: base.join(s),
                pos: pos(n),
            })
        }),
        None => Some(None),
    };
    let journeys = match f.get("journeys") {
        Some(n) => cx.list(n, "`journeys`").map(|items| {
            Some(
                items
                    .iter()
                    .filter_map(|item| {
                        cx.nonempty_string(item, "journeys").map(|s| Located {
                            value: base.join(s),
                            pos: pos(item),
                        })
                    })
                    .collect(),
            )
        }),
        None => Some(None),
    };
    let start = match f.get("start") {
        Some(n) => absolute_time(cx, n, "start"),
        None => None,
    };
    let tests_node = f.require(cx, "tests")?;
    let items = cx.list(tests_node, "`tests`")?;
    if items.is_empty() {
        cx.err(tests_node, "`tests` must hold at least one test");
    }
    let mut tests = Vec::new();
    let mut names: Vec<(String, Pos)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(test) = test_case(cx, item, i, start) {
            if let Some((_, first)) = names.iter().find(|(n, _)| *n == test.name) {
                cx.err(
                    item,
                    format!(
                        "duplicate test name `{}` (first at line {})",
                        test.name, first.line
                    ),
                );
            }
            names.push((test.name.clone(), test.pos));
            tests.push(test);
        }
    }
    Some(TestFile {
        path: file.to_path_buf(),
        config: config?,
        journeys: journeys?,
        tests,
    })
}

fn absolute_time(cx: &mut Cx, node: &Node, name: &str) -> Option<DateTime<Utc>> {
    let text = node.display_text();
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            cx.err(
                node,
                format!(
                    "bad `{name}` `{text}`: expected an RFC 3339 instant with an offset, like \
                     `2026-11-23T10:00:00Z`"
                ),
            );
            None
        }
    }
}

/// `+2h`, `+1d2h30m` (offsets from `start`) or an RFC 3339 instant.
pub fn parse_time(text: &str, start: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(rest) = text.strip_prefix('+') {
        let bad = || {
            format!(
                "bad time `{text}`: expected an offset from the start such as `+2h` or \
                 `+1d2h30m`, or an instant such as `2026-11-27T09:00:00Z`"
            )
        };
        if rest == "0" {
            return Ok(start);
        }
        let mut total = chrono::Duration::zero();
        let mut piece_start = 0;
        for (i, c) in rest.char_indices() {
            if c.is_ascii_alphabetic() {
                let piece = &rest[piece_start..=i];
                total += values::parse_duration(piece)
                    .map_err(|_| bad())?
                    .as_chrono();
                piece_start = i + 1;
            }
        }
        if piece_start != rest.len() || rest.is_empty() {
            return Err(bad());
        }
        return Ok(start + total);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "bad time `{text}`: expected an offset from the start such as `+2h`, or an \
                 RFC 3339 instant such as `2026-11-27T09:00:00Z`"
            )
        })
}

fn time(cx: &mut Cx, node: &Node, start: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let text = node.display_text();
    let Some(start) = start else {
        // No start: only absolute instants can be read; the missing start is reported once.
        return DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .ok();
    };
    match parse_time(&text, start) {
        Ok(t) => Some(t),
        Err(message) => {
            cx.err(node, message);
            None
        }
    }
}

fn located_string(cx: &mut Cx, f: &Fields, key: &str) -> Option<Option<Located<String>>> {
    match f.get(key) {
        Some(n) => cx
            .nonempty_string(n, key)
            .map(|value| Some(Located { value, pos: pos(n) })),
        None => Some(None),
    }
}

fn test_case(
    cx: &mut Cx,
    node: &Node,
    index: usize,
    file_start: Option<DateTime<Utc>>,
) -> Option<TestCase> {
    let f = cx.fields(node, "a test", "test", TEST_KEYS)?;
    let name = f
        .require(cx, "name")
        .and_then(|n| cx.nonempty_string(n, "name"));
    let start = match f.get("start") {
        Some(n) => absolute_time(cx, n, "start"),
        None => {
            if file_start.is_none() {
                cx.err(
                    node,
                    "missing `start`: give the instant the test begins, in the test or at the \
                     top of the file",
                );
            }
            file_start
        }
    };
    let order = match f.get("order") {
        Some(n) => cx.choice(
            n,
            "order",
            &[("sequence", Order::Sequence), ("set", Order::Set)],
        ),
        None => Some(Order::Sequence),
    };
    let no_other_sends = match f.get("no_other_sends") {
        Some(n) => cx.bool(n, "no_other_sends"),
        None => Some(false),
    };
    let customers_node = f.require(cx, "customers");
    let customers = customers(cx, customers_node);
    let slug = format!("t{}", index + 1);
    let events = match (f.require(cx, "events"), &customers) {
        (Some(n), Some(customers)) => events(cx, n, customers, start, &slug),
        _ => None,
    };
    let expect = match (f.require(cx, "expect"), &customers) {
        (Some(n), Some(customers)) => expectations(cx, n, start, customers),
        _ => None,
    };
    let until = match f.get("until") {
        Some(n) => time(cx, n, start).map(Some),
        None => Some(None),
    };
    let (start, customers, events, expect, until) = (start?, customers?, events?, expect?, until?);
    // The run goes on until the last event, the last time an expectation names, or `until`.
    let mut end = events.last().map_or(start, |e| e.at);
    for e in &expect {
        let window = match e {
            Expectation::Send(s) => s.window.as_ref().map(|w| w.value),
            Expectation::Decision(d) => d.window.as_ref().map(|w| w.value),
            Expectation::NoSend(n) => Some(n.window.value),
        };
        if let Some(w) = window {
            end = end.max(w.to);
        }
    }
    match until {
        Some(u) => end = end.max(u),
        // Without `until`, pending waits play out: timers fire up to 30 days after the last
        // event (or the latest time an expectation names, when later).
        None => end = end.max(events.last().map_or(start, |e| e.at) + DEFAULT_RUN_AFTER_LAST_EVENT),
    }
    // An expectation whose time is before the first event can never be met.
    if let Some(first) = events.first() {
        for e in &expect {
            let window = match e {
                Expectation::Send(s) => s.window.as_ref(),
                Expectation::Decision(d) => d.window.as_ref(),
                Expectation::NoSend(n) => Some(&n.window),
            };
            if let Some(w) = window {
                if w.value.to < first.at {
                    cx.at(
                        w.pos.line,
                        w.pos.column,
                        format!(
                            "this expectation can never be met: its time ({}) is before the \
                             test's first event ({})",
                            fmt_time(w.value.to),
                            fmt_time(first.at)
                        ),
                    );
                }
            }
        }
    }
    Some(TestCase {
        name: name?,
        pos: pos(node),
        start,
        customers,
        events,
        order: order?,
        no_other_sends: no_other_sends?,
        until: end,
        expect,
    })
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn customers(cx: &mut Cx, node: Option<&Node>) -> Option<Vec<TestCustomer>> {
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
fn customer_ref(
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

fn events(
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

fn window(
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

fn expectations(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TestFile, Vec<String>> {
        parse_test_file(text, Path::new("dir/a.test.yaml"))
            .map_err(|ds| ds.into_iter().map(|d| d.to_string()).collect())
    }

    const GOOD: &str = "\
config: ../deploy/journeyd.yaml
start: 2026-11-23T10:00:00Z
tests:
  - name: reminder
    customers:
      - id: c-ada
        profile: { email: ada@example.com }
        consent: { sms: granted, push: false }
    events:
      - { at: +0, type: cart_updated, properties: { cart_value: 59 } }
      - { at: +30m, type: page_viewed }
    expect:
      - send: { channel: email, template: cart_reminder_1, at: +1h, data: { campaign: spring } }
      - decision: { kind: skipped_channel, channel: sms, reason: no_consent }
      - no_send: { channel: sms, until: +1d2h }
";

    #[test]
    fn a_good_file_loads_with_times_resolved() {
        let file = parse(GOOD).unwrap();
        assert_eq!(
            file.config.unwrap().value,
            Path::new("dir/../deploy/journeyd.yaml")
        );
        let test = &file.tests[0];
        assert_eq!(test.customers[0].consent.len(), 2);
        assert!(test.customers[0].consent[0].1);
        assert_eq!(test.events[1].event_id, "t1-e2");
        assert_eq!(test.events[1].customer, "c-ada");
        assert_eq!(fmt_time(test.events[1].at), "2026-11-23T10:30:00Z");
        let Expectation::NoSend(n) = &test.expect[2] else {
            panic!()
        };
        assert_eq!(fmt_time(n.window.value.to), "2026-11-24T12:00:00Z");
        assert_eq!(
            fmt_time(test.until),
            "2026-12-23T10:30:00Z",
            "without `until`, 30 days after the last event"
        );
        assert_eq!(test.order, Order::Sequence);
    }

    #[test]
    fn times() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = |s: &str| parse_time(s, start).map(fmt_time);
        assert_eq!(t("+1d2h30m").unwrap(), "2026-01-02T02:30:00Z");
        assert_eq!(t("+0").unwrap(), "2026-01-01T00:00:00Z");
        assert_eq!(
            t("2026-11-27T09:00:00+01:00").unwrap(),
            "2026-11-27T08:00:00Z"
        );
        for bad in ["+", "+2", "+2x", "+h", "2h", "tomorrow", "+1.5h"] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn problems_are_positioned() {
        let text = GOOD
            .replace("kind: skipped_channel", "kind: skiped_channel")
            .replace("at: +30m", "at: soon")
            .replace(
                "  - name: reminder\n",
                "  - name: reminder\n    colour: red\n",
            );
        assert_eq!(
            parse(&text).unwrap_err(),
            [
                "dir/a.test.yaml:5:5: unknown key `colour` in test",
                "dir/a.test.yaml:12:15: bad time `soon`: expected an offset from the start such \
                 as `+2h`, or an RFC 3339 instant such as `2026-11-27T09:00:00Z`",
                "dir/a.test.yaml:15:27: bad decision kind `skiped_channel`: expected `entered`, \
                 `entry_suppressed`, `sent`, `skipped_channel`, `deferred`, `no_channel`, \
                 `holdout`, `split`, `exited`, `goal`, `completed`, `duplicate_event` or \
                 `bad_timezone`; did you mean `skipped_channel`?",
            ]
        );
    }

    #[test]
    fn unreachable_expectations_and_backward_events_are_invalid() {
        let text = GOOD.replace("at: +1h,", "at: 2026-11-23T09:00:00Z,");
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "dir/a.test.yaml:13:64: this expectation can never be met: its time \
                 (2026-11-23T09:00:00Z) is before the test's first event (2026-11-23T10:00:00Z)"
            ),
            "{errors:?}"
        );
        let text = GOOD.replace("at: +30m", "at: 2026-11-23T09:59:00Z");
        assert_eq!(
            parse(&text).unwrap_err(),
            [
                "dir/a.test.yaml:11:9: events must be listed in time order: this one \
              (2026-11-23T09:59:00Z) is before the one on line 10 (2026-11-23T10:00:00Z)"
            ]
        );
    }

    #[test]
    fn several_customers_need_names() {
        let text = GOOD.replace(
            "        consent: { sms: granted, push: false }\n",
            "        consent: { sms: granted, push: false }\n      - id: c-bob\n",
        );
        let errors = parse(&text).unwrap_err();
        assert_eq!(
            errors,
            [
                "dir/a.test.yaml:11:9: missing `customer`: the test has several customers, say \
                 which one",
                "dir/a.test.yaml:12:9: missing `customer`: the test has several customers, say \
                 which one"
            ]
        );
    }

    #[test]
    fn the_schema_accepts_the_example() {
        let schema = test_json_schema();
        assert_eq!(schema["$defs"]["test"]["required"][0], "name");
    }
}
