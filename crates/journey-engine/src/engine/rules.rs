//! The journey rules, one unit of work at a time (an event, or a timer firing): goals,
//! `exit_when` and `wait_for` for the journeys a customer is in, entry (status, re-entry,
//! `unless`, holdout), running steps until the instance waits or ends, and the profile and
//! consent updates an event carries. Sending is in [`super::send`].

use super::send::SendOutcome;
use super::store::ActiveCounts;
use super::timers::Timers;
use super::Bound;
use crate::catalog::{CompiledJourney, TypeInfo};
use crate::condition::{self, get, Env, TriggerSrc};
use crate::hash;
use crate::localtime::next_local;
use crate::state::*;
use crate::{Decision, DecisionKind, Effects, Event, Reason};
use chrono::{DateTime, Utc};
use journey_spec::{Action, Condition, Duration, Reentry, Status};
use serde_json::Value;

/// Borrowed context of one unit of work (one event, or one timer).
pub(super) struct Ctx<'a> {
    pub(super) b: &'a Bound,
    pub(super) timers: &'a mut Timers,
    pub(super) active: &'a mut ActiveCounts,
    pub(super) slot: u32,
    pub(super) now: DateTime<Utc>,
    pub(super) ev: Option<&'a Event>,
    pub(super) out: &'a mut Effects,
}

/// A decision with the common fields set; its strings come from the output's spare buffers.
pub(super) fn decision(
    out: &mut Effects,
    at: DateTime<Utc>,
    cust: &str,
    j: Option<&CompiledJourney>,
    kind: DecisionKind,
) -> Decision {
    Decision {
        at,
        customer_id: out.spare.string(cust),
        journey_id: j.map(|j| out.spare.string(&j.journey.id)),
        journey_version: j.map(|j| j.journey.version),
        step_id: None,
        kind,
        channel: None,
        command_id: None,
        reason: None,
        event_id: None,
        holdout: None,
        until: None,
        branch: None,
    }
}

impl Ctx<'_> {
    /// An owned copy of `s` for output.
    pub(super) fn s(&mut self, s: &str) -> String {
        self.out.spare.string(s)
    }

    /// A decision about an instance at a step.
    pub(super) fn step_decision(
        &mut self,
        cust: &Customer,
        pos: usize,
        kind: DecisionKind,
        with_step: bool,
    ) -> Decision {
        let inst = &cust.rest.instances[pos];
        let mut d = decision(self.out, self.now, &cust.id, Some(&inst.journey), kind);
        if with_step {
            d.step_id = Some(self.s(&inst.journey.journey.steps[inst.step as usize].id));
        }
        d.event_id = Some(match self.ev {
            Some(e) => self.s(&e.event_id),
            None => self.s(&inst.trigger_event_id),
        });
        d.holdout = Some(inst.holdout);
        d
    }

    pub(super) fn set_timer(
        &mut self,
        cust: &mut Customer,
        pos: usize,
        due: DateTime<Utc>,
        kind: WaitKind,
    ) {
        let inst = &mut cust.rest.instances[pos];
        inst.wait = self.timers.set(due, self.slot, inst.jid, kind);
    }

    pub(super) fn end_instance(&mut self, cust: &mut Customer, pos: usize) {
        let inst = cust.rest.instances.remove(pos);
        self.timers.cancel(&inst.wait);
        self.active.leave(inst.jid);
        if cust.rest.instances.is_empty() {
            // Most customers are idle most of the time: give the instance space back.
            cust.rest.instances.shrink_to_fit();
        }
    }

    fn did_fn<'c>(&'c self, cust: &'c Customer) -> impl Fn(&str, Option<Duration>) -> bool + 'c {
        let now = self.now;
        let did = &self.b.did;
        move |t: &str, within: Option<Duration>| {
            let Some(info) = did.get(t) else { return false };
            let Some(h) = cust.rest.history.iter().find(|h| h.ty == info.ty) else {
                return false;
            };
            match within {
                None => h.ever,
                Some(w) => {
                    let from = now - w.as_chrono();
                    h.times.iter().any(|&x| x > from)
                }
            }
        }
    }

    /// Evaluates a condition for an instance (`event` is the event being matched, if any).
    pub(super) fn eval_in(
        &self,
        cond: Option<&Condition>,
        cust: &Customer,
        inst: &Instance,
        with_event: bool,
    ) -> bool {
        let Some(cond) = cond else { return true };
        let did = self.did_fn(cust);
        let env = Env {
            event: if with_event {
                self.ev.map(|e| (e.event_type.as_str(), &e.properties))
            } else {
                None
            },
            trigger: Some(TriggerSrc::Kept(
                &inst.journey.journey.trigger.event,
                &inst.trigger_props,
            )),
            profile: &cust.profile,
            did: &did,
        };
        condition::eval(cond, &env)
    }

    /// Evaluates a condition at entry, where the trigger is the event itself.
    fn eval_entry(&self, cond: Option<&Condition>, cust: &Customer, ev: &Event) -> bool {
        let Some(cond) = cond else { return true };
        let did = self.did_fn(cust);
        let env = Env {
            event: Some((ev.event_type.as_str(), &ev.properties)),
            trigger: Some(TriggerSrc::Event(&ev.event_type, &ev.properties)),
            profile: &cust.profile,
            did: &did,
        };
        condition::eval(cond, &env)
    }

    /// The event against the journeys the customer is in: goal, exit_when, wait_for.
    fn on_instance_event(
        &mut self,
        cust: &mut Customer,
        pos: usize,
        ev: &Event,
        ended: &mut Vec<u32>,
    ) {
        let j = cust.rest.instances[pos].journey.clone();
        let jr = &j.journey;
        let jid = cust.rest.instances[pos].jid;
        let ty = ev.event_type.as_str();
        if let Some(g) = &jr.goal {
            let inst = &cust.rest.instances[pos];
            if !inst.goal_reached
                && g.event == ty
                && g.within
                    .is_none_or(|w| self.now <= inst.entered_at + w.as_chrono())
                && self.eval_in(g.condition.as_ref(), cust, inst, true)
            {
                let d = self.step_decision(cust, pos, DecisionKind::Goal, true);
                self.out.decisions.push(d);
                if g.exit {
                    self.end_instance(cust, pos);
                    ended.push(jid);
                    return;
                }
                cust.rest.instances[pos].goal_reached = true;
            }
        }
        let exits = {
            let inst = &cust.rest.instances[pos];
            jr.exit_when
                .iter()
                .any(|x| x.event == ty && self.eval_in(x.condition.as_ref(), cust, inst, true))
        };
        if exits {
            let d = self.step_decision(cust, pos, DecisionKind::Exited, true);
            self.out.decisions.push(d);
            self.end_instance(cust, pos);
            ended.push(jid);
            return;
        }
        let inst = &cust.rest.instances[pos];
        if let Wait::Timer {
            kind: WaitKind::WaitFor,
            ..
        } = inst.wait
        {
            if let Action::WaitFor(w) = &jr.steps[inst.step as usize].action {
                if w.event == ty
                    && for_send_matches(w.for_send.as_deref(), &cust.id, inst, ev)
                    && self.eval_in(w.condition.as_ref(), cust, inst, true)
                {
                    let next = match &w.on_event {
                        Some(n) => j.resolve(n),
                        None => j.following[inst.step as usize],
                    };
                    self.timers.cancel(&cust.rest.instances[pos].wait);
                    cust.rest.instances[pos].wait = Wait::Running;
                    self.run(cust, pos, next);
                    // Completed (or exited) by this event: not entered again by it.
                    if cust.instance_pos(jid).is_none() {
                        ended.push(jid);
                    }
                }
            }
        }
    }

    /// Tries to enter the catalog journey at index `ji`.
    /// `just_ended`: this event has just ended the customer's instance of the journey.
    fn try_enter(&mut self, cust: &mut Customer, ji: usize, ev: &Event, just_ended: bool) {
        let b = self.b;
        let j = &b.cat.journeys[ji];
        let jid = b.journey_ids[ji];
        let jr = &j.journey;
        if !self.eval_entry(jr.trigger.condition.as_ref(), cust, ev) {
            return;
        }
        let suppressed = |this: &mut Self, reason: Reason| {
            let mut d = decision(
                this.out,
                this.now,
                &cust.id,
                Some(j),
                DecisionKind::EntrySuppressed,
            );
            d.reason = Some(reason);
            d.event_id = Some(this.s(&ev.event_id));
            this.out.decisions.push(d);
        };
        if just_ended {
            // The event that ended the instance also matches the trigger: it is not entered
            // again by it, and the decision says so instead of losing the customer silently.
            return suppressed(self, Reason::EndedBySameEvent);
        }
        if jr.status != Status::Active {
            return suppressed(self, Reason::Status);
        }
        if cust.instance_pos(jid).is_some() {
            return suppressed(self, Reason::Reentry);
        }
        let last = cust
            .rest
            .last_entry
            .iter()
            .find(|e| e.0 == jid)
            .map(|e| e.1);
        let blocked = match (jr.entry.reentry, last) {
            (_, None) | (Reentry::Always, _) => false,
            (Reentry::Once, Some(_)) => true,
            (Reentry::After(d), Some(t)) => self.now < t + d.as_chrono(),
        };
        if blocked {
            return suppressed(self, Reason::Reentry);
        }
        if jr.entry.unless.is_some() && self.eval_entry(jr.entry.unless.as_ref(), cust, ev) {
            return suppressed(self, Reason::Unless);
        }
        let holdout = hash::is_holdout(&jr.id, &cust.id, jr.entry.holdout.basis_points);
        let mut d = decision(self.out, self.now, &cust.id, Some(j), DecisionKind::Entered);
        d.event_id = Some(self.s(&ev.event_id));
        d.holdout = Some(holdout);
        self.out.decisions.push(d);
        match cust.rest.last_entry.iter_mut().find(|e| e.0 == jid) {
            Some(e) => e.1 = self.now,
            None => {
                cust.rest.last_entry.reserve_exact(1);
                cust.rest.last_entry.push((jid, self.now));
            }
        }
        let mut trigger_props: Vec<(InlineStr, Value)> = j
            .trigger_keys
            .iter()
            .filter_map(|k| get(&ev.properties, k).map(|v| (k.as_str().into(), v.clone())))
            .collect();
        trigger_props.shrink_to_fit();
        let inst = Instance {
            journey: j.clone(),
            jid,
            step: 0,
            holdout,
            goal_reached: false,
            sends: 0,
            entered_at: self.now,
            trigger_event_id: ev.event_id.as_str().into(),
            trigger_props,
            wait: Wait::Running,
        };
        let pos = insert_sorted(cust, inst);
        self.active.enter(jid);
        self.run(cust, pos, Some(0));
    }

    /// Runs steps from `start` until the instance parks or ends.
    fn run(&mut self, cust: &mut Customer, pos: usize, start: Option<u16>) {
        let j = cust.rest.instances[pos].journey.clone();
        let steps = &j.journey.steps;
        let limit = steps.len() * 4 + 16;
        let mut cur = start;
        let mut guard = 0;
        while let Some(si) = cur {
            guard += 1;
            if guard > limit {
                break;
            }
            cust.rest.instances[pos].step = si;
            cust.rest.instances[pos].wait = Wait::Running;
            let step = &steps[si as usize];
            cur = match &step.action {
                Action::Wait(d) => {
                    let due = self.now + d.as_chrono();
                    self.set_timer(cust, pos, due, WaitKind::Advance);
                    return;
                }
                Action::WaitUntil(t) => {
                    let tz = cust.tz.unwrap_or(self.b.cat.quiet.default_timezone);
                    let due = next_local(tz, self.now, *t);
                    self.set_timer(cust, pos, due, WaitKind::Advance);
                    return;
                }
                Action::WaitFor(w) => {
                    let due = self.now + w.timeout.as_chrono();
                    self.set_timer(cust, pos, due, WaitKind::WaitFor);
                    return;
                }
                Action::Send(_) => match self.send(cust, pos, &j, si) {
                    SendOutcome::Next => j.following[si as usize],
                    SendOutcome::Park | SendOutcome::Ended => return,
                },
                Action::Branch(cases) => {
                    let inst = &cust.rest.instances[pos];
                    match cases
                        .iter()
                        .find(|c| self.eval_in(c.when.as_ref(), cust, inst, false))
                    {
                        Some(c) => j.resolve(&c.next),
                        None => j.following[si as usize],
                    }
                }
                Action::Split(arms) => {
                    let bucket = hash::split_bucket(&j.journey.id, &step.id, &cust.id);
                    let mut acc = 0u32;
                    let arm = arms
                        .iter()
                        .find(|a| {
                            acc += a.percent.basis_points;
                            bucket < acc
                        })
                        .or(arms.last());
                    match arm {
                        Some(a) => {
                            let mut d = self.step_decision(cust, pos, DecisionKind::Split, true);
                            d.branch = Some(self.s(&a.name));
                            self.out.decisions.push(d);
                            j.resolve(&a.next)
                        }
                        None => j.following[si as usize],
                    }
                }
            };
        }
        let d = self.step_decision(cust, pos, DecisionKind::Completed, false);
        self.out.decisions.push(d);
        self.end_instance(cust, pos);
    }

    /// A timer of the instance at `pos` fired at `self.now`.
    pub(super) fn fire(&mut self, cust: &mut Customer, pos: usize, kind: WaitKind) {
        let j = cust.rest.instances[pos].journey.clone();
        if self.b.cat.status_of(&j) == Status::Paused {
            cust.rest.instances[pos].wait = Wait::Parked {
                kind,
                since: self.now,
            };
            return;
        }
        let si = cust.rest.instances[pos].step as usize;
        cust.rest.instances[pos].wait = Wait::Running;
        let next = match kind {
            WaitKind::Advance => j.following[si],
            WaitKind::WaitFor => match &j.journey.steps[si].action {
                Action::WaitFor(w) => match &w.on_timeout {
                    Some(n) => j.resolve(n),
                    None => j.following[si],
                },
                _ => j.following[si],
            },
            WaitKind::Rerun => Some(si as u16),
        };
        self.run(cust, pos, next);
    }

    pub(super) fn handle_event(&mut self, cust: &mut Customer, ev: &Event) {
        match ev.event_type.as_str() {
            "profile_updated" => self.profile_updated(cust, ev),
            "consent_updated" => self.consent_updated(cust, ev),
            _ => {}
        }
        let mut ended: Vec<u32> = Vec::new();
        if !cust.rest.instances.is_empty() {
            // The ids up front: handling one instance may end it (or another) and shift the
            // list. A customer is in few journeys at once, so they fit on the stack.
            let mut order = [0u32; 16];
            let n = cust.rest.instances.len();
            if n <= order.len() {
                for (o, i) in order.iter_mut().zip(&cust.rest.instances) {
                    *o = i.jid;
                }
                for &jid in &order[..n] {
                    if let Some(pos) = cust.instance_pos(jid) {
                        self.on_instance_event(cust, pos, ev, &mut ended);
                    }
                }
            } else {
                let order: Vec<u32> = cust.rest.instances.iter().map(|i| i.jid).collect();
                for jid in order {
                    if let Some(pos) = cust.instance_pos(jid) {
                        self.on_instance_event(cust, pos, ev, &mut ended);
                    }
                }
            }
        }
        let b = self.b;
        if let Some(TypeInfo { triggers }) = b.cat.by_type.get(ev.event_type.as_str()) {
            for &ji in triggers {
                let just_ended = ended.contains(&b.journey_ids[ji as usize]);
                self.try_enter(cust, ji as usize, ev, just_ended);
            }
        }
        if let Some(info) = b.did.get(ev.event_type.as_str()) {
            let now = self.now;
            let h = match cust.rest.history.iter_mut().position(|h| h.ty == info.ty) {
                Some(i) => &mut cust.rest.history[i],
                None => {
                    cust.rest.history.push(Hist {
                        ty: info.ty,
                        ever: false,
                        times: Default::default(),
                    });
                    cust.rest.history.last_mut().expect("just pushed")
                }
            };
            h.ever = true;
            if let Some(keep) = info.keep {
                let from = now - keep.as_chrono();
                h.times.retain(|t| *t > from);
                h.times.push(now);
            }
        }
    }

    fn profile_updated(&mut self, cust: &mut Customer, ev: &Event) {
        for (k, v) in &ev.properties {
            if v.is_null() {
                cust.profile_remove(k);
                if k == "timezone" {
                    cust.tz = None;
                }
                continue;
            }
            if k == "timezone" {
                match v.as_str().and_then(|s| s.parse::<chrono_tz::Tz>().ok()) {
                    Some(tz) => cust.tz = Some(tz),
                    None => {
                        let mut d = decision(
                            self.out,
                            self.now,
                            &cust.id,
                            None,
                            DecisionKind::BadTimezone,
                        );
                        d.reason = Some(Reason::BadTimezone(match v.as_str() {
                            Some(s) => self.s(s),
                            None => v.to_string(),
                        }));
                        d.event_id = Some(self.s(&ev.event_id));
                        self.out.decisions.push(d);
                        continue;
                    }
                }
            }
            if let Some(p) = PVal::from_value(v) {
                cust.profile_set(k, p);
            }
        }
    }

    fn consent_updated(&mut self, cust: &mut Customer, ev: &Event) {
        let channel = get(&ev.properties, "channel").and_then(Value::as_str);
        let status = get(&ev.properties, "status").and_then(Value::as_str);
        let granted = match status {
            Some("granted") => true,
            Some("withdrawn") => false,
            _ => return,
        };
        let Some(ci) = channel.and_then(|c| self.b.cat.channels.iter().position(|x| x.name == c))
        else {
            return;
        };
        let cid = self.b.chan_ids[ci];
        match cust.rest.consent.iter_mut().find(|c| c.0 == cid) {
            Some(c) => c.1 = granted,
            None => cust.rest.consent.push((cid, granted)),
        }
    }
}

/// Whether a `wait_for`'s `for_send` (if any) accepts the event: its `properties.command_id`
/// must be the id of a command that send step issued in this instance. Command ids are a
/// function of the instance and the number of commands it issued before (see [`hash`]), so
/// the candidates are recomputed rather than stored.
fn for_send_matches(for_send: Option<&str>, customer: &str, inst: &Instance, ev: &Event) -> bool {
    let Some(step) = for_send else { return true };
    let Some(wanted) = get(&ev.properties, "command_id").and_then(Value::as_str) else {
        return false;
    };
    if wanted.len() != 16 {
        return false;
    }
    let mut id = String::with_capacity(16);
    (0..inst.sends).any(|n| {
        id.clear();
        hash::write_command_id(
            &mut id,
            customer,
            &inst.journey.journey.id,
            &inst.trigger_event_id,
            step,
            n,
        );
        id == wanted
    })
}

/// Inserts an instance keeping (priority desc, journey id) order; returns its position.
pub(super) fn insert_sorted(cust: &mut Customer, inst: Instance) -> usize {
    fn key(i: &Instance) -> (i64, &str) {
        (-i.journey.journey.priority, i.journey.journey.id.as_str())
    }
    let k = key(&inst);
    let pos = cust
        .rest
        .instances
        .iter()
        .position(|i| key(i) > k)
        .unwrap_or(cust.rest.instances.len());
    cust.rest.instances.reserve_exact(1);
    cust.rest.instances.insert(pos, inst);
    pos
}
