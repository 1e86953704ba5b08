//! Loading a test file: the file's keys, times (absolute or `+offset` from `start`) and each
//! test case, its customers, events and expectations read by the sibling modules.

use super::expect::expectations;
use super::inputs::{customers, events};
use super::{Expectation, Located, Order, Pos, TestCase, TestFile, DEFAULT_RUN_AFTER_LAST_EVENT};
use crate::check::{Cx, Fields};
use crate::diagnostic::Diagnostic;
use crate::values;
use crate::yaml::{self, Node};
use chrono::{DateTime, Utc};
use std::path::Path;

pub(super) fn pos(node: &Node) -> Pos {
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

pub(super) fn time(
    cx: &mut Cx,
    node: &Node,
    start: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
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

pub(super) fn located_string(
    cx: &mut Cx,
    f: &Fields,
    key: &str,
) -> Option<Option<Located<String>>> {
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

pub(super) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
