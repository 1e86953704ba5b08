//! Conversion of one journey file's YAML tree into [`Journey`], with every per-field check of
//! the journey language (references, `for_send`, declared channels, split totals); the step
//! graph is checked in [`super::graph`].
//!
//! Over 600 lines on purpose: it is one walk of the journey grammar, a method per construct in
//! the order of docs/journeys.md, and reads best in one place.

use crate::check::{one_of, Cx, Fields};
use crate::condition::{condition, path, Scope};
use crate::model::*;
use crate::values::{did_you_mean, format_percent};
use crate::yaml::{self, Node};
use indexmap::IndexMap;
use std::path::Path as FsPath;

const JOURNEY_KEYS: [&str; 11] = [
    "id",
    "version",
    "name",
    "status",
    "category",
    "priority",
    "trigger",
    "entry",
    "exit_when",
    "goal",
    "steps",
];
pub(super) const ACTIONS: [&str; 6] = ["wait", "wait_until", "wait_for", "send", "branch", "split"];
const STEP_KEYS: [&str; 8] = [
    "id",
    "next",
    "wait",
    "wait_until",
    "wait_for",
    "send",
    "branch",
    "split",
];

pub(super) struct Converter<'a, 'f> {
    pub(super) cx: &'a mut Cx<'f>,
    pub(super) channels: Option<&'a IndexMap<String, ChannelConfig>>,
}

/// A `next`, `on_event` or `on_timeout` reference, checked once every step id is known.
struct Reference<'n> {
    key: &'static str,
    node: &'n Node,
}

impl<'n> Converter<'_, '_> {
    pub(super) fn journey(
        &mut self,
        root: &'n Node,
        file: &FsPath,
        id_out: &mut Option<(String, usize, usize)>,
    ) -> Option<Journey> {
        let f = self
            .cx
            .fields(root, "a journey file", "journey", &JOURNEY_KEYS)?;
        let id = f.require(self.cx, "id").and_then(|n| {
            let id = self.cx.identifier(n, "journey id")?;
            *id_out = Some((id.clone(), n.line, n.col));
            Some(id)
        });
        let version = f
            .require(self.cx, "version")
            .and_then(|n| self.cx.positive_int(n, "version", u32::MAX as u64));
        let name = f.get("name").and_then(|n| self.cx.string(n, "name"));
        let name_ok = f.get("name").is_none() || name.is_some();
        let status = self.optional(&f, "status", Status::Active, |cx, n| {
            cx.choice(
                n,
                "status",
                &[
                    ("active", Status::Active),
                    ("paused", Status::Paused),
                    ("draining", Status::Draining),
                ],
            )
        });
        let category = self.optional(&f, "category", Category::Marketing, |cx, n| {
            cx.choice(
                n,
                "category",
                &[
                    ("marketing", Category::Marketing),
                    ("transactional", Category::Transactional),
                ],
            )
        });
        let priority = self.optional(&f, "priority", 0, |cx, n| cx.int(n, "priority"));
        let trigger = f
            .require(self.cx, "trigger")
            .and_then(|n| self.event_match(n, "`trigger`", "trigger"));
        let entry = self.optional(&f, "entry", Entry::default(), |cx, n| {
            Converter { cx, channels: None }.entry(n)
        });
        let exit_when = self.optional(&f, "exit_when", Vec::new(), |cx, n| {
            let items = cx.list(n, "`exit_when`")?;
            let mut conv = Converter { cx, channels: None };
            let matches: Vec<Option<EventMatch>> = items
                .iter()
                .map(|item| conv.event_match(item, "each exit_when entry", "exit_when entry"))
                .collect();
            matches.into_iter().collect()
        });
        let goal = match f.get("goal") {
            Some(n) => self.goal(n).map(Some),
            None => Some(None),
        };
        let steps = f.require(self.cx, "steps").and_then(|n| self.steps(n));
        Some(Journey {
            id: id?,
            version: version? as u32,
            name: if name_ok { name } else { return None },
            status: status?,
            category: category?,
            priority: priority?,
            trigger: trigger?,
            entry: entry?,
            exit_when: exit_when?,
            goal: goal?,
            steps: steps?,
            source: file.to_path_buf(),
        })
    }

    /// The value of an optional key: `Some(default)` when absent, `None` after an error.
    fn optional<T>(
        &mut self,
        f: &Fields<'n>,
        key: &str,
        default: T,
        convert: impl FnOnce(&mut Cx, &'n Node) -> Option<T>,
    ) -> Option<T> {
        match f.get(key) {
            Some(n) => convert(self.cx, n),
            None => Some(default),
        }
    }

    fn event_match(&mut self, node: &'n Node, subject: &str, context: &str) -> Option<EventMatch> {
        let f = self
            .cx
            .fields(node, subject, context, &["event", "where"])?;
        let event = f
            .require(self.cx, "event")
            .and_then(|n| self.cx.nonempty_string(n, "event"));
        let condition = match f.get("where") {
            Some(n) => Some(condition(self.cx, n, Scope::WithEvent)?),
            None => None,
        };
        Some(EventMatch {
            event: event?,
            condition,
        })
    }

    fn entry(&mut self, node: &'n Node) -> Option<Entry> {
        let f = self
            .cx
            .fields(node, "`entry`", "entry", &["reentry", "unless", "holdout"])?;
        let reentry = self.optional(&f, "reentry", Reentry::Once, reentry);
        let unless = match f.get("unless") {
            Some(n) => condition(self.cx, n, Scope::WithoutEvent).map(Some),
            None => Some(None),
        };
        let holdout = self.optional(&f, "holdout", Percent::default(), |cx, n| {
            cx.percent_with_sign(n)
        });
        Some(Entry {
            reentry: reentry?,
            unless: unless?,
            holdout: holdout?,
        })
    }

    fn goal(&mut self, node: &'n Node) -> Option<Goal> {
        let f = self.cx.fields(
            node,
            "`goal`",
            "goal",
            &["event", "where", "within", "exit"],
        )?;
        let event = f
            .require(self.cx, "event")
            .and_then(|n| self.cx.nonempty_string(n, "event"));
        let condition = match f.get("where") {
            Some(n) => condition(self.cx, n, Scope::WithEvent).map(Some),
            None => Some(None),
        };
        let within = match f.get("within") {
            Some(n) => self.cx.duration(n).map(Some),
            None => Some(None),
        };
        let exit = self.optional(&f, "exit", true, |cx, n| cx.bool(n, "exit"));
        Some(Goal {
            event: event?,
            condition: condition?,
            within: within?,
            exit: exit?,
        })
    }

    fn steps(&mut self, node: &'n Node) -> Option<Vec<Step>> {
        let items = self.cx.list(node, "`steps`")?;
        if items.is_empty() {
            self.cx.err(node, "`steps` must list at least one step");
            return None;
        }
        let mut refs: Vec<Reference<'n>> = Vec::new();
        let mut ids: IndexMap<String, &'n Node> = IndexMap::new();
        let mut steps: Vec<Option<Step>> = Vec::new();
        for item in items {
            steps.push(self.step(item, &mut refs, &mut ids));
        }
        // Resolve references only now that every step id is known.
        for r in &refs {
            let Some(target) = r.node.text() else {
                self.cx
                    .err(r.node, format!("`{}` must be a step id or `end`", r.key));
                continue;
            };
            if target != "end" && !ids.contains_key(target) {
                let hint = did_you_mean(target, ids.keys().map(String::as_str));
                self.cx.err(
                    r.node,
                    format!("`{}` names unknown step `{target}`{hint}", r.key),
                );
            }
        }
        self.for_send_checks(items, &steps);
        self.graph_checks(items);
        steps.into_iter().collect()
    }

    /// Every `wait_for.for_send` names a `send` step of the journey.
    fn for_send_checks(&mut self, items: &'n [Node], steps: &[Option<Step>]) {
        let kind_of = |id: &str| {
            steps
                .iter()
                .flatten()
                .find(|s| s.id == id)
                .map(|s| s.action.kind())
        };
        let ids: Vec<&str> = steps.iter().flatten().map(|s| s.id.as_str()).collect();
        for (item, step) in items.iter().zip(steps) {
            let Some(Step {
                action: Action::WaitFor(w),
                ..
            }) = step
            else {
                continue;
            };
            let Some(target) = &w.for_send else { continue };
            let node = match &item.kind {
                yaml::Kind::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k.text() == Some("wait_for"))
                    .and_then(|(_, v)| match &v.kind {
                        yaml::Kind::Map(w) => w
                            .iter()
                            .find(|(k, _)| k.text() == Some("for_send"))
                            .map(|(_, n)| n),
                        _ => None,
                    }),
                _ => None,
            };
            let Some(node) = node else { continue };
            match kind_of(target) {
                Some("send") => {}
                Some(kind) => self.cx.err(
                    node,
                    format!("`for_send` must name a `send` step; `{target}` is a `{kind}` step"),
                ),
                None => {
                    let hint = did_you_mean(target, ids.iter().copied());
                    self.cx.err(
                        node,
                        format!("`for_send` names unknown step `{target}`{hint}"),
                    );
                }
            }
        }
    }

    fn step(
        &mut self,
        node: &'n Node,
        refs: &mut Vec<Reference<'n>>,
        ids: &mut IndexMap<String, &'n Node>,
    ) -> Option<Step> {
        let f = self.cx.fields(node, "each step", "step", &STEP_KEYS)?;
        let id = f.require(self.cx, "id").and_then(|n| {
            let id = self.cx.identifier(n, "step id")?;
            if id == "end" {
                self.cx.err(n, "step id `end` is reserved");
                return None;
            }
            if let Some(first) = ids.get(&id) {
                let line = first.line;
                self.cx.err(
                    n,
                    format!("duplicate step id `{id}` (first at line {line})"),
                );
                return None;
            }
            ids.insert(id.clone(), n);
            Some(id)
        });
        let next = match f.get("next") {
            Some(n) => {
                refs.push(Reference {
                    key: "next",
                    node: n,
                });
                Some(next_of(n))
            }
            None => None,
        };
        let actions: Vec<&Node> = f
            .entries
            .iter()
            .filter(|(k, _)| ACTIONS.iter().any(|a| k.text() == Some(a)))
            .map(|(k, _)| k)
            .collect();
        let action = match actions.as_slice() {
            [] => {
                let subject = match &id {
                    Some(id) => format!("step `{id}`"),
                    None => "step".to_string(),
                };
                self.cx.err(
                    node,
                    format!(
                        "{subject} has no action; expected one of {}",
                        one_of(&ACTIONS)
                    ),
                );
                None
            }
            [key] => {
                let kind = key.display_text();
                let value = f.get(&kind)?;
                self.action(&kind, value, refs)
            }
            [first, second, ..] => {
                self.cx.err(
                    second,
                    format!(
                        "step has more than one action (`{}` and `{}`); a step does exactly one thing",
                        first.display_text(),
                        second.display_text()
                    ),
                );
                None
            }
        };
        Some(Step {
            id: id?,
            action: action?,
            next,
        })
    }

    fn action(
        &mut self,
        kind: &str,
        value: &'n Node,
        refs: &mut Vec<Reference<'n>>,
    ) -> Option<Action> {
        match kind {
            "wait" => self.cx.duration(value).map(Action::Wait),
            "wait_until" => {
                let f = self
                    .cx
                    .fields(value, "`wait_until`", "wait_until", &["time"])?;
                let time = f.require(self.cx, "time")?;
                self.cx.time_of_day(time).map(Action::WaitUntil)
            }
            "wait_for" => self.wait_for(value, refs).map(Action::WaitFor),
            "send" => self.send(value).map(Action::Send),
            "branch" => self.branch(value, refs).map(Action::Branch),
            _ => self.split(value, refs).map(Action::Split),
        }
    }

    fn wait_for(&mut self, node: &'n Node, refs: &mut Vec<Reference<'n>>) -> Option<WaitFor> {
        let f = self.cx.fields(
            node,
            "`wait_for`",
            "wait_for",
            &[
                "event",
                "where",
                "for_send",
                "timeout",
                "on_event",
                "on_timeout",
            ],
        )?;
        let event = f
            .require(self.cx, "event")
            .and_then(|n| self.cx.nonempty_string(n, "event"));
        let condition = match f.get("where") {
            Some(n) => condition(self.cx, n, Scope::WithEvent).map(Some),
            None => Some(None),
        };
        // Checked against the steps once every step is known (see `steps`).
        let for_send = match f.get("for_send") {
            Some(n) => self.cx.identifier(n, "`for_send` step id").map(Some),
            None => Some(None),
        };
        let timeout = f
            .require(self.cx, "timeout")
            .and_then(|n| self.cx.duration(n));
        let mut target = |key: &'static str| {
            f.get(key).map(|n| {
                refs.push(Reference { key, node: n });
                next_of(n)
            })
        };
        let on_event = target("on_event");
        let on_timeout = target("on_timeout");
        Some(WaitFor {
            event: event?,
            condition: condition?,
            for_send: for_send?,
            timeout: timeout?,
            on_event,
            on_timeout,
        })
    }

    fn send(&mut self, node: &'n Node) -> Option<Send> {
        let f = self.cx.fields(
            node,
            "`send`",
            "send",
            &["channels", "template", "data", "if_no_channel"],
        )?;
        let channels = f
            .require(self.cx, "channels")
            .and_then(|n| self.send_channels(n));
        let template = f
            .require(self.cx, "template")
            .and_then(|n| self.cx.nonempty_string(n, "template"));
        let data = match f.get("data") {
            Some(n) => self.data(n),
            None => Some(IndexMap::new()),
        };
        let if_no_channel = self.optional(&f, "if_no_channel", IfNoChannel::Continue, |cx, n| {
            cx.choice(
                n,
                "if_no_channel",
                &[
                    ("continue", IfNoChannel::Continue),
                    ("exit", IfNoChannel::Exit),
                ],
            )
        });
        Some(Send {
            channels: channels?,
            template: template?,
            data: data?,
            if_no_channel: if_no_channel?,
        })
    }

    fn send_channels(&mut self, node: &'n Node) -> Option<Vec<String>> {
        let items = self.cx.list(node, "`channels`")?;
        if items.is_empty() {
            self.cx
                .err(node, "`channels` must list at least one channel");
            return None;
        }
        let mut channels: Vec<String> = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(name) = self.cx.nonempty_string(item, "channel") else {
                ok = false;
                continue;
            };
            if channels.contains(&name) {
                self.cx
                    .err(item, format!("channel `{name}` is listed twice"));
                ok = false;
                continue;
            }
            if let Some(declared) = self.channels {
                if !declared.contains_key(&name) {
                    let hint = did_you_mean(&name, declared.keys().map(String::as_str));
                    self.cx.err(
                        item,
                        format!("channel `{name}` is not declared in the configuration{hint}"),
                    );
                    ok = false;
                }
            }
            channels.push(name);
        }
        ok.then_some(channels)
    }

    fn data(&mut self, node: &'n Node) -> Option<IndexMap<String, DataValue>> {
        let yaml::Kind::Map(entries) = &node.kind else {
            self.cx.err(node, "`data` must be a mapping");
            return None;
        };
        let mut data = IndexMap::new();
        let mut ok = true;
        for (key, value) in entries {
            let is_path = matches!(&value.kind, yaml::Kind::Map(e)
                if e.iter().any(|(k, _)| k.text() == Some("path")));
            let converted = if is_path {
                self.cx
                    .fields(value, "a data value", "data value", &["path"])
                    .and_then(|f| path(self.cx, f.get("path")?, Scope::WithoutEvent))
                    .map(DataValue::Path)
            } else {
                Some(DataValue::Literal(value.to_json()))
            };
            match converted {
                Some(v) => {
                    data.insert(key.display_text(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(data)
    }

    fn branch(&mut self, node: &'n Node, refs: &mut Vec<Reference<'n>>) -> Option<Vec<BranchCase>> {
        let items = self.cx.list(node, "`branch`")?;
        if items.is_empty() {
            self.cx.err(node, "`branch` must list at least one case");
            return None;
        }
        let mut cases = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let Some(f) =
                self.cx
                    .fields(item, "each branch case", "branch case", &["when", "next"])
            else {
                ok = false;
                continue;
            };
            let when = match f.get("when") {
                Some(n) => condition(self.cx, n, Scope::WithoutEvent).map(Some),
                None if i + 1 < items.len() => {
                    self.cx
                        .err(item, "only the last branch case may omit `when`");
                    None
                }
                None => Some(None),
            };
            let next = f.require(self.cx, "next").map(|n| {
                refs.push(Reference {
                    key: "next",
                    node: n,
                });
                next_of(n)
            });
            match (when, next) {
                (Some(when), Some(next)) => cases.push(BranchCase { when, next }),
                _ => ok = false,
            }
        }
        ok.then_some(cases)
    }

    fn split(&mut self, node: &'n Node, refs: &mut Vec<Reference<'n>>) -> Option<Vec<SplitArm>> {
        let items = self.cx.list(node, "`split`")?;
        if items.is_empty() {
            self.cx.err(node, "`split` must list at least one arm");
            return None;
        }
        let mut arms: Vec<SplitArm> = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(f) = self.cx.fields(
                item,
                "each split arm",
                "split arm",
                &["name", "percent", "next"],
            ) else {
                ok = false;
                continue;
            };
            let name = f.require(self.cx, "name").and_then(|n| {
                let name = self.cx.nonempty_string(n, "name")?;
                if arms.iter().any(|a| a.name == name) {
                    self.cx.err(n, format!("duplicate split arm name `{name}`"));
                    return None;
                }
                Some(name)
            });
            let percent = f
                .require(self.cx, "percent")
                .and_then(|n| self.cx.percent(n));
            let next = f.require(self.cx, "next").map(|n| {
                refs.push(Reference {
                    key: "next",
                    node: n,
                });
                next_of(n)
            });
            match (name, percent, next) {
                (Some(name), Some(percent), Some(next)) => arms.push(SplitArm {
                    name,
                    percent,
                    next,
                }),
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let total: u32 = arms.iter().map(|a| a.percent.basis_points).sum();
        if total != 10_000 {
            self.cx.err(
                node,
                format!(
                    "split percentages add up to {}, not 100%",
                    format_percent(Percent {
                        basis_points: total
                    })
                ),
            );
            return None;
        }
        Some(arms)
    }
}

/// A reference as written; validity is checked separately (see [`Reference`]).
fn next_of(node: &Node) -> Next {
    match node.text() {
        Some("end") => Next::End,
        Some(id) => Next::Step(id.to_string()),
        None => Next::End,
    }
}

fn reentry(cx: &mut Cx, node: &Node) -> Option<Reentry> {
    const EXPECTED: &str = "expected `once`, `always` or `{ after: DURATION }`";
    match &node.kind {
        yaml::Kind::Map(_) => {
            let f = cx.fields(node, "`reentry`", "reentry", &["after"])?;
            let after = f.require(cx, "after")?;
            cx.duration(after).map(Reentry::After)
        }
        _ => match node.text() {
            Some("once") => Some(Reentry::Once),
            Some("always") => Some(Reentry::Always),
            _ => {
                let text = node.display_text();
                let hint = did_you_mean(&text, ["once", "always"]);
                cx.err(node, format!("bad reentry `{text}`: {EXPECTED}{hint}"));
                None
            }
        },
    }
}
