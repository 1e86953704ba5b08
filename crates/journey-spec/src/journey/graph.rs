//! Checks of a journey's step graph, read from the YAML itself: unreachable steps and loops
//! that never wait.

use super::convert::{Converter, ACTIONS};
use crate::yaml::{self, Node};
use std::collections::{HashMap, VecDeque};

impl<'n> Converter<'_, '_> {
    /// Unreachable steps and loops that never wait. Read from the YAML itself rather than the
    /// converted steps, so that a step with an unrelated error (an empty template) still takes
    /// part; when some edge cannot be known (a broken step, an unknown target) the
    /// reachability check is skipped, since a missing edge would make it report steps that are
    /// in fact reachable. Missing edges can only hide loops, so loops are always checked.
    pub(super) fn graph_checks(&mut self, items: &'n [Node]) {
        let skeletons: Vec<Skeleton> = items.iter().map(skeleton).collect();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let complete = std::cell::Cell::new(true);
        for (i, s) in skeletons.iter().enumerate() {
            match &s.id {
                Some(id) if !index.contains_key(id.as_str()) => {
                    index.insert(id, i);
                }
                _ => complete.set(false),
            }
        }
        let resolve = |target: &str| -> Option<usize> {
            if target == "end" {
                return None;
            }
            let found = index.get(target).copied();
            if found.is_none() {
                complete.set(false);
            }
            found
        };
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(skeletons.len());
        for (i, s) in skeletons.iter().enumerate() {
            let fallthrough = match &s.next {
                Some(Some(next)) => resolve(next),
                Some(None) => {
                    complete.set(false);
                    None
                }
                None => (i + 1 < skeletons.len()).then_some(i + 1),
            };
            let mut out = Vec::new();
            match &s.targets {
                Some(targets) => {
                    for target in targets {
                        match target {
                            Target::Fallthrough => out.extend(fallthrough),
                            Target::Named(name) => out.extend(resolve(name)),
                            Target::Unknown => complete.set(false),
                        }
                    }
                }
                None => complete.set(false),
            }
            out.sort_unstable();
            out.dedup();
            edges.push(out);
        }
        let id_of = |i: usize| skeletons[i].id.clone().unwrap_or_default();

        if complete.get() {
            let reachable = reach(&edges, 0, |_| true);
            for (i, node) in items.iter().enumerate() {
                if !reachable[i] {
                    self.cx.err(
                        node,
                        format!("step `{}` cannot be reached from the first step", id_of(i)),
                    );
                }
            }
        }

        // A loop is harmful when it can be followed without passing a step that waits: the
        // engine would spin on one event. Look at the graph of the steps that do not wait.
        let instant = |i: usize| {
            matches!(
                skeletons[i].kind.as_deref(),
                Some("send" | "branch" | "split")
            ) && skeletons[i].id.is_some()
        };
        let mut reported = vec![false; skeletons.len()];
        for start in 0..skeletons.len() {
            if reported[start] || !instant(start) {
                continue;
            }
            let Some(cycle) = shortest_cycle(&edges, start, instant) else {
                continue;
            };
            // Report each strongly connected group once.
            let from_start = reach(&edges, start, instant);
            for j in 0..skeletons.len() {
                if from_start[j] && reach(&edges, j, instant)[start] {
                    reported[j] = true;
                }
            }
            let names: Vec<String> = cycle.iter().map(|&i| format!("`{}`", id_of(i))).collect();
            self.cx.err(
                &items[start],
                format!(
                    "loop without a wait: {}; put a `wait`, `wait_until` or `wait_for` step in it",
                    names.join(" -> ")
                ),
            );
        }
    }
}

/// Where an edge of a step goes, as written.
enum Target {
    /// `next` of the step, or the following step.
    Fallthrough,
    Named(String),
    /// Not readable (the step is broken there).
    Unknown,
}

/// What the graph checks need of one step: its id, action kind, `next` and edges.
struct Skeleton {
    id: Option<String>,
    kind: Option<String>,
    /// `Some(None)`: a `next` that is not a name.
    next: Option<Option<String>>,
    /// `None`: the action is missing, doubled or unreadable.
    targets: Option<Vec<Target>>,
}

fn skeleton(node: &Node) -> Skeleton {
    let entries: &[(Node, Node)] = match &node.kind {
        yaml::Kind::Map(entries) => entries,
        _ => &[],
    };
    let get = |entries: &[(Node, Node)], key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.text() == Some(key))
            .map(|(_, v)| v.clone())
    };
    let name = |n: &Node| match n.text() {
        Some(text) => Target::Named(text.to_string()),
        None => Target::Unknown,
    };
    let id = get(entries, "id")
        .and_then(|n| n.text().map(str::to_string))
        .filter(|id| crate::values::is_identifier(id) && id != "end");
    let next = get(entries, "next").map(|n| n.text().map(str::to_string));
    let actions: Vec<String> = entries
        .iter()
        .filter_map(|(k, _)| k.text())
        .filter(|k| ACTIONS.contains(k))
        .map(str::to_string)
        .collect();
    let kind = match actions.as_slice() {
        [kind] => Some(kind.clone()),
        _ => None,
    };
    let targets = kind.as_deref().and_then(|kind| {
        let value = get(entries, kind)?;
        match (kind, &value.kind) {
            ("wait" | "wait_until" | "send", _) => Some(vec![Target::Fallthrough]),
            ("wait_for", yaml::Kind::Map(w)) => Some(
                ["on_event", "on_timeout"]
                    .iter()
                    .map(|key| get(w, key).map_or(Target::Fallthrough, |n| name(&n)))
                    .collect(),
            ),
            ("branch" | "split", yaml::Kind::Seq(cases)) => {
                let mut targets = Vec::new();
                for case in cases {
                    let yaml::Kind::Map(c) = &case.kind else {
                        return None;
                    };
                    targets.push(get(c, "next").map_or(Target::Unknown, |n| name(&n)));
                }
                let has_else = cases.last().is_some_and(|case| match &case.kind {
                    yaml::Kind::Map(c) => get(c, "when").is_none(),
                    _ => false,
                });
                if kind == "branch" && !has_else {
                    targets.push(Target::Fallthrough);
                }
                Some(targets)
            }
            _ => None,
        }
    });
    Skeleton {
        id,
        kind,
        next,
        targets,
    }
}

/// Which nodes can be reached from `start` (inclusive) through nodes accepted by `through`.
fn reach(edges: &[Vec<usize>], start: usize, through: impl Fn(usize) -> bool) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut queue = VecDeque::from([start]);
    seen[start] = true;
    while let Some(i) = queue.pop_front() {
        for &j in &edges[i] {
            if !seen[j] && through(j) {
                seen[j] = true;
                queue.push_back(j);
            }
        }
    }
    seen
}

/// The shortest path from `start` back to itself through nodes accepted by `through`, as the
/// list of nodes visited, `start` first and last.
fn shortest_cycle(
    edges: &[Vec<usize>],
    start: usize,
    through: impl Fn(usize) -> bool,
) -> Option<Vec<usize>> {
    let mut parent: Vec<Option<usize>> = vec![None; edges.len()];
    let mut seen = vec![false; edges.len()];
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        for &j in &edges[i] {
            if j == start {
                let mut middle = Vec::new();
                let mut at = i;
                while at != start {
                    middle.push(at);
                    at = parent[at].expect("every visited node but the start has a parent");
                }
                middle.reverse();
                let mut path = vec![start];
                path.extend(middle);
                path.push(start);
                return Some(path);
            }
            if !seen[j] && through(j) {
                seen[j] = true;
                parent[j] = Some(i);
                queue.push_back(j);
            }
        }
    }
    None
}
