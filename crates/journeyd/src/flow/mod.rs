//! A journey as a flow graph (trigger, entry, steps, end; labelled edges for branches, splits,
//! `wait_for` outcomes, timeouts, exits and goals), and its renderings: Graphviz DOT text and an
//! SVG drawn by journeyd itself, as printed by `journeyd graph --format dot|svg` and embedded,
//! annotated with counts, in the backtest report (`journeyd report`).
//!
//! The SVG is laid out by the `layout-rs` crate (a layered, Graphviz-style layout: ranks,
//! crossing reduction, placement, spline edges, labels on edges) and drawn by [`SvgCanvas`],
//! this module's own rendering backend, so the look (fonts, colours per kind of step, counts)
//! is ours and the output needs no browser-side library.

mod dot;
mod svg;
#[cfg(test)]
mod tests;

pub(crate) use dot::to_dot;
pub(crate) use svg::{group_digits, to_svg, xml_escape, FlowCounts};

use journey_spec::{Action, Journey, Next};

/// What a node stands for; it sets the node's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Trigger,
    Entry,
    Wait,
    WaitFor,
    Send,
    Branch,
    Split,
    End,
    Rule,
}

impl NodeKind {
    fn colours(self) -> (&'static str, &'static str) {
        // (fill, stroke)
        match self {
            NodeKind::Trigger => ("#e0ecff", "#3b6fd4"),
            NodeKind::Entry => ("#eef3fb", "#7f97c2"),
            NodeKind::Wait => ("#f4f4f5", "#8a8a94"),
            NodeKind::WaitFor => ("#fff6df", "#c9931a"),
            NodeKind::Send => ("#e3f6ea", "#2f9158"),
            NodeKind::Branch | NodeKind::Split => ("#f3e8ff", "#8a55c9"),
            NodeKind::End => ("#e9e9ec", "#55555f"),
            NodeKind::Rule => ("#fdecec", "#c24a4a"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FlowNode {
    /// Stable key: `trigger`, `entry`, `step:<id>`, `end`, `exit_when`, `goal`.
    pub key: String,
    pub kind: NodeKind,
    /// The first line is the title (the step id); the others describe it.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct FlowEdge {
    pub from: String,
    pub to: String,
    pub label: Option<String>,
    /// Rules that apply from anywhere (exit_when, goal, exit on no channel).
    pub dashed: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Flow {
    pub nodes: Vec<FlowNode>,
    pub edges: Vec<FlowEdge>,
}

pub(crate) fn step_key(id: &str) -> String {
    format!("step:{id}")
}

fn next_key(n: &Next) -> String {
    match n {
        Next::Step(id) => step_key(id),
        Next::End => "end".into(),
    }
}

/// The flow graph of a journey (the same content as the Mermaid rendering).
pub(crate) fn flow(journey: &Journey) -> Flow {
    use crate::cmd_graph::text;
    let mut f = Flow::default();
    let title = match &journey.name {
        Some(name) => format!("{} v{}", journey.id, journey.version).to_string() + ": " + name,
        None => format!("{} v{}", journey.id, journey.version),
    };
    f.nodes.push(FlowNode {
        key: "trigger".into(),
        kind: NodeKind::Trigger,
        lines: vec![
            title,
            format!("trigger: {}", text::event_match(&journey.trigger)),
        ],
    });
    let mut entry = vec![
        "entry".to_string(),
        format!("reentry: {}", text::reentry(journey.entry.reentry)),
    ];
    if let Some(unless) = &journey.entry.unless {
        entry.push(format!("unless {}", text::condition(unless)));
    }
    if journey.entry.holdout.basis_points > 0 {
        entry.push(format!("holdout {}", text::percent(journey.entry.holdout)));
    }
    f.nodes.push(FlowNode {
        key: "entry".into(),
        kind: NodeKind::Entry,
        lines: entry,
    });
    let edge = |f: &mut Flow, from: &str, to: String, label: Option<String>, dashed: bool| {
        f.edges.push(FlowEdge {
            from: from.to_string(),
            to,
            label,
            dashed,
        })
    };
    edge(&mut f, "trigger", "entry".into(), None, false);
    let first = journey
        .steps
        .first()
        .map_or("end".to_string(), |s| step_key(&s.id));
    edge(&mut f, "entry", first, None, false);
    for (index, step) in journey.steps.iter().enumerate() {
        let key = step_key(&step.id);
        let following = journey
            .steps
            .get(index + 1)
            .map_or(Next::End, |s| Next::Step(s.id.clone()));
        let fallthrough = step.next.clone().unwrap_or(following);
        let (kind, mut lines) = match &step.action {
            Action::Wait(d) => (NodeKind::Wait, vec![format!("wait {}", text::duration(*d))]),
            Action::WaitUntil(t) => (
                NodeKind::Wait,
                vec![format!("wait until {}", text::time(*t))],
            ),
            Action::WaitFor(w) => {
                let mut awaited = w.event.clone();
                if let Some(c) = &w.condition {
                    awaited = format!("{awaited} where {}", text::condition(c));
                }
                let on_event = w.on_event.clone().unwrap_or(fallthrough.clone());
                let on_timeout = w.on_timeout.clone().unwrap_or(fallthrough.clone());
                edge(
                    &mut f,
                    &key,
                    next_key(&on_event),
                    Some(w.event.clone()),
                    false,
                );
                edge(
                    &mut f,
                    &key,
                    next_key(&on_timeout),
                    Some(format!("timeout {}", text::duration(w.timeout))),
                    false,
                );
                (
                    NodeKind::WaitFor,
                    vec![
                        format!("wait for {awaited}"),
                        format!("timeout {}", text::duration(w.timeout)),
                    ],
                )
            }
            Action::Send(send) => {
                if send.if_no_channel == journey_spec::IfNoChannel::Exit {
                    edge(
                        &mut f,
                        &key,
                        "end".into(),
                        Some("no channel: exit".into()),
                        true,
                    );
                }
                (
                    NodeKind::Send,
                    vec![
                        format!("send {}", send.template),
                        format!("via {}", send.channels.join(" › ")),
                    ],
                )
            }
            Action::Branch(cases) => {
                for case in cases {
                    let label = case
                        .when
                        .as_ref()
                        .map_or("else".to_string(), text::condition);
                    edge(&mut f, &key, next_key(&case.next), Some(label), false);
                }
                if cases.last().is_some_and(|c| c.when.is_some()) {
                    edge(
                        &mut f,
                        &key,
                        next_key(&fallthrough),
                        Some("no case matched".into()),
                        false,
                    );
                }
                (NodeKind::Branch, vec!["branch".to_string()])
            }
            Action::Split(arms) => {
                for arm in arms {
                    edge(
                        &mut f,
                        &key,
                        next_key(&arm.next),
                        Some(format!("{} {}", arm.name, text::percent(arm.percent))),
                        false,
                    );
                }
                (NodeKind::Split, vec!["split (A/B)".to_string()])
            }
        };
        if matches!(
            step.action,
            Action::Wait(_) | Action::WaitUntil(_) | Action::Send(_)
        ) {
            edge(&mut f, &key, next_key(&fallthrough), None, false);
        }
        lines.insert(0, step.id.clone());
        f.nodes.push(FlowNode { key, kind, lines });
    }
    f.nodes.push(FlowNode {
        key: "end".into(),
        kind: NodeKind::End,
        lines: vec!["end".into()],
    });
    if !journey.exit_when.is_empty() {
        let mut lines = vec!["exit when (anywhere)".to_string()];
        lines.extend(journey.exit_when.iter().map(text::event_match));
        f.nodes.push(FlowNode {
            key: "exit_when".into(),
            kind: NodeKind::Rule,
            lines,
        });
        edge(
            &mut f,
            "exit_when",
            "end".into(),
            Some("exited".into()),
            true,
        );
    }
    if let Some(goal) = &journey.goal {
        let mut what = goal.event.clone();
        if let Some(c) = &goal.condition {
            what = format!("{what} where {}", text::condition(c));
        }
        let mut lines = vec![format!("goal: {what}")];
        if let Some(w) = goal.within {
            lines.push(format!("within {} of entry", text::duration(w)));
        }
        lines.push(if goal.exit {
            "reaching it ends the journey".into()
        } else {
            "recorded; the journey goes on".into()
        });
        f.nodes.push(FlowNode {
            key: "goal".into(),
            kind: NodeKind::Rule,
            lines,
        });
        if goal.exit {
            edge(&mut f, "goal", "end".into(), Some("goal".into()), true);
        }
    }
    f
}
