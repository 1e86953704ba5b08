//! Counting a run: each decision record updates the figures of its journey (steps and edges of
//! its flow, entries, goals, sends) and of the run (sends per channel and hour, skips, caps,
//! where each customer stands), and the runs of the workers are merged.

use super::{JourneyStats, Kept, Run};
use crate::flow::{self};
use journey_engine::DecisionKind as K;
use journey_engine::{Decision, Effects, Reason};
use journey_spec::{Action, Journey};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

impl JourneyStats {
    pub(super) fn new(j: &Journey) -> Self {
        let flow = flow::flow(j);
        let index: HashMap<String, usize> = flow
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.key.clone(), i))
            .collect();
        let mut silent = vec![false; flow.nodes.len()];
        for s in &j.steps {
            if let Some(&i) = index.get(&flow::step_key(&s.id)) {
                silent[i] = matches!(
                    s.action,
                    Action::Wait(_) | Action::WaitUntil(_) | Action::WaitFor(_) | Action::Branch(_)
                );
            }
        }
        let mut out = vec![Vec::new(); flow.nodes.len()];
        for (k, e) in flow.edges.iter().enumerate() {
            if e.dashed {
                continue;
            }
            if let (Some(&a), Some(&b)) = (index.get(&e.from), index.get(&e.to)) {
                out[a].push((k, b));
            }
        }
        JourneyStats {
            id: j.id.clone(),
            version: j.version,
            name: j.name.clone(),
            node_counts: vec![0; flow.nodes.len()],
            edge_counts: vec![0; flow.edges.len()],
            flow,
            index,
            silent,
            out,
            paths: HashMap::new(),
            entered: 0,
            entered_holdout: 0,
            suppressed: BTreeMap::new(),
            exited: 0,
            goals: 0,
            goals_holdout: 0,
            completed: 0,
            sends: 0,
            held_sends: 0,
        }
    }

    /// The edges of the shortest path from `a` to `b` through silent steps only.
    pub(super) fn path(&mut self, a: usize, b: usize) -> Option<Vec<usize>> {
        if let Some(p) = self.paths.get(&(a, b)) {
            return p.clone();
        }
        let n = self.out.len();
        let mut prev: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut queue = std::collections::VecDeque::from([a]);
        seen[a] = true;
        let mut found = false;
        while let Some(x) = queue.pop_front() {
            for &(e, y) in &self.out[x] {
                if y == b {
                    prev[y] = Some((x, e));
                    found = true;
                    break;
                }
                if !seen[y] && self.silent[y] {
                    seen[y] = true;
                    prev[y] = Some((x, e));
                    queue.push_back(y);
                }
            }
            if found {
                break;
            }
        }
        let result = found.then(|| {
            let mut edges = Vec::new();
            let mut at = b;
            while let Some((p, e)) = prev[at] {
                edges.push(e);
                at = p;
                if at == a {
                    break;
                }
            }
            edges.reverse();
            edges
        });
        self.paths.insert((a, b), result.clone());
        result
    }

    /// Moves an instance from node `from` to node `to`, counting the edges and nodes passed.
    fn walk(&mut self, from: usize, to: usize) {
        if from == to {
            return;
        }
        match self.path(from, to) {
            Some(edges) => {
                for e in edges {
                    self.edge_counts[e] += 1;
                    let target = &self.flow.edges[e].to;
                    if let Some(&t) = self.index.get(target) {
                        self.node_counts[t] += 1;
                    }
                }
            }
            None => self.node_counts[to] += 1,
        }
    }

    fn dashed_edge(&mut self, from: &str) {
        if let Some(k) = self
            .flow
            .edges
            .iter()
            .position(|e| e.dashed && e.from == from)
        {
            self.edge_counts[k] += 1;
        }
        if let Some(&i) = self.index.get(from) {
            self.node_counts[i] += 1;
        }
    }
}

impl Run {
    pub(super) fn new(journeys: &[Journey]) -> Self {
        let stats: Vec<JourneyStats> = journeys.iter().map(JourneyStats::new).collect();
        let by_id = stats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Run {
            journeys: stats,
            by_id,
            events: 0,
            bad_lines: 0,
            bad_listed: Vec::new(),
            backwards: 0,
            first: None,
            last: None,
            customers: HashSet::new(),
            sends_per_hour: BTreeMap::new(),
            templates: BTreeMap::new(),
            skips: BTreeMap::new(),
            deferred: 0,
            no_channel: 0,
            capped: BTreeMap::new(),
            position: HashMap::new(),
            customer_sends: HashMap::new(),
            kept: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, effects: &Effects, keep: bool) {
        let mut commands = effects.commands.iter();
        for d in &effects.decisions {
            let command = if d.kind == K::Sent {
                commands.next()
            } else {
                None
            };
            if keep {
                self.kept.push(Kept {
                    decision: d.clone(),
                    template: command.map(|c| c.template.clone()),
                });
            }
            self.decision(d, command);
        }
    }

    pub(super) fn decision(&mut self, d: &Decision, command: Option<&journey_engine::SendCommand>) {
        match d.kind {
            K::SkippedChannel => {
                let reason = d.reason.as_ref().map_or("", Reason::as_str);
                bump(&mut self.skips, reason);
                if let Some(cap) = reason.strip_prefix("frequency_cap:") {
                    match self.capped.get_mut(cap) {
                        Some(set) => {
                            if !set.contains(&d.customer_id) {
                                set.insert(d.customer_id.clone());
                            }
                        }
                        None => {
                            self.capped
                                .insert(cap.to_string(), HashSet::from([d.customer_id.clone()]));
                        }
                    }
                }
            }
            K::Deferred => self.deferred += 1,
            K::NoChannel => self.no_channel += 1,
            K::Entered
            | K::EntrySuppressed
            | K::Sent
            | K::Holdout
            | K::Split
            | K::Exited
            | K::Goal
            | K::Completed
            | K::DuplicateEvent
            | K::BadTimezone => {}
        }
        if let Some(c) = command {
            let hour = c.issued_at.timestamp().div_euclid(3600);
            let key = (c.channel.clone(), hour);
            *self.sends_per_hour.entry(key).or_insert(0) += 1;
            let tkey = (c.journey_id.clone(), c.template.clone(), c.channel.clone());
            *self.templates.entry(tkey).or_insert(0) += 1;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (
                &c.journey_id,
                &c.step_id,
                &c.template,
                &c.channel,
                c.issued_at.timestamp(),
            )
                .hash(&mut h);
            let piece = h.finish();
            match self.customer_sends.get_mut(&c.customer_id) {
                Some(acc) => *acc = acc.rotate_left(7) ^ piece,
                None => {
                    self.customer_sends.insert(c.customer_id.clone(), piece);
                }
            }
        }
        let Some(ji) = d
            .journey_id
            .as_ref()
            .and_then(|j| self.by_id.get(j))
            .copied()
        else {
            return;
        };
        let js = &mut self.journeys[ji];
        let ji = ji as u32;
        let position =
            |run: &mut HashMap<String, Vec<(u32, u32)>>, customer: &str| -> Option<u32> {
                run.get(customer)
                    .and_then(|v| v.iter().find(|(j, _)| *j == ji).map(|(_, n)| *n))
            };
        let set_position =
            |run: &mut HashMap<String, Vec<(u32, u32)>>, customer: &str, node: Option<u32>| {
                match run.get_mut(customer) {
                    Some(v) => {
                        v.retain(|(j, _)| *j != ji);
                        if let Some(n) = node {
                            v.push((ji, n));
                        }
                    }
                    None => {
                        if let Some(n) = node {
                            run.insert(customer.to_string(), vec![(ji, n)]);
                        }
                    }
                }
            };
        match d.kind {
            K::Entered => {
                js.entered += 1;
                if d.holdout == Some(true) {
                    js.entered_holdout += 1;
                }
                let (t, e) = (js.index["trigger"], js.index["entry"]);
                js.node_counts[t] += 1;
                js.node_counts[e] += 1;
                js.edge_counts[0] += 1; // trigger → entry
                js.edge_counts[1] += 1; // entry → first step
                let first = js.flow.edges[1].to.clone();
                let f = js.index[&first];
                js.node_counts[f] += 1;
                set_position(&mut self.position, &d.customer_id, Some(f as u32));
            }
            K::EntrySuppressed => bump(
                &mut js.suppressed,
                d.reason.as_ref().map_or("", Reason::as_str),
            ),
            _ => {
                let at = position(&mut self.position, &d.customer_id);
                let step = d
                    .step_id
                    .as_ref()
                    .and_then(|s| js.index.get(&flow::step_key(s)).copied());
                if let (Some(from), Some(to)) = (at, step) {
                    js.walk(from as usize, to);
                }
                let now = step.map(|s| s as u32).or(at);
                match d.kind {
                    K::Sent => js.sends += 1,
                    K::Holdout => js.held_sends += 1,
                    K::Goal => {
                        if d.holdout == Some(true) {
                            js.goals_holdout += 1;
                        } else {
                            js.goals += 1;
                        }
                    }
                    _ => {}
                }
                let ends = match d.kind {
                    K::Exited => {
                        js.exited += 1;
                        if d.reason == Some(Reason::NoChannel) {
                            if let Some(s) = &d.step_id {
                                js.dashed_edge(&flow::step_key(s));
                            }
                        } else {
                            js.dashed_edge("exit_when");
                        }
                        true
                    }
                    K::Goal => {
                        let exits = js.flow.edges.iter().any(|e| e.dashed && e.from == "goal");
                        if exits {
                            js.dashed_edge("goal");
                        } else if let Some(&g) = js.index.get("goal") {
                            js.node_counts[g] += 1;
                        }
                        exits
                    }
                    K::Completed => {
                        js.completed += 1;
                        if let Some(from) = now {
                            let end = js.index["end"];
                            js.walk(from as usize, end);
                        }
                        true
                    }
                    _ => false,
                };
                if ends {
                    if d.kind != K::Completed {
                        let end = js.index["end"];
                        js.node_counts[end] += 1;
                    }
                    set_position(&mut self.position, &d.customer_id, None);
                } else if now != at {
                    set_position(&mut self.position, &d.customer_id, now);
                }
            }
        }
    }
}

impl JourneyStats {
    pub(super) fn merge(&mut self, o: JourneyStats) {
        for (a, b) in self.node_counts.iter_mut().zip(o.node_counts) {
            *a += b;
        }
        for (a, b) in self.edge_counts.iter_mut().zip(o.edge_counts) {
            *a += b;
        }
        for (k, v) in o.suppressed {
            *self.suppressed.entry(k).or_insert(0) += v;
        }
        self.entered += o.entered;
        self.entered_holdout += o.entered_holdout;
        self.exited += o.exited;
        self.goals += o.goals;
        self.goals_holdout += o.goals_holdout;
        self.completed += o.completed;
        self.sends += o.sends;
        self.held_sends += o.held_sends;
    }
}

impl Run {
    /// Adds the figures of another worker (whose customers are disjoint from this one's).
    pub(super) fn merge(&mut self, o: Run) {
        for (a, b) in self.journeys.iter_mut().zip(o.journeys) {
            a.merge(b);
        }
        self.events += o.events;
        self.bad_lines += o.bad_lines;
        self.bad_listed.extend(o.bad_listed);
        self.backwards += o.backwards;
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.customers.extend(o.customers);
        for (k, v) in o.sends_per_hour {
            *self.sends_per_hour.entry(k).or_insert(0) += v;
        }
        for (k, v) in o.templates {
            *self.templates.entry(k).or_insert(0) += v;
        }
        for (k, v) in o.skips {
            *self.skips.entry(k).or_insert(0) += v;
        }
        self.deferred += o.deferred;
        self.no_channel += o.no_channel;
        for (k, v) in o.capped {
            self.capped.entry(k).or_default().extend(v);
        }
        self.customer_sends.extend(o.customer_sends);
        self.kept.extend(o.kept);
    }
}

fn bump(m: &mut BTreeMap<String, u64>, k: &str) {
    match m.get_mut(k) {
        Some(n) => *n += 1,
        None => {
            m.insert(k.to_string(), 1);
        }
    }
}
