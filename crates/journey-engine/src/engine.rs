//! The engine: per-customer state machines driven by events and timers.
//!
//! Rules the contract leaves open, as implemented here:
//! - **Customer already in the journey** when its trigger matches: decision `entry_suppressed`
//!   with reason `reentry` (checked after `status`, before `unless`).
//! - **Goal** is recorded at most once per instance (with `exit: false` later goal events are not
//!   recorded again). `within` is inclusive: a goal at exactly entry + within counts.
//! - **Paused journeys**: a send step reached while paused, or a timer that fires while paused,
//!   parks the instance (no timer, no decision). When a catalog makes the journey active (or
//!   draining) again, [`Engine::set_catalog`] gives each parked instance a timer due at the
//!   later of the park time and the engine clock (the latest time the engine has been given);
//!   the next `fire_due` resumes it: a wait moves on, a `wait_for` takes its timeout path, a send
//!   is chosen from scratch. This works alike under `simulate` and `run`. `exit_when`, goals and
//!   `wait_for` events still apply to parked or waiting instances of a paused journey.
//! - The status that governs an instance is that of the journey id in the current catalog (a
//!   kill switch applies to every version), or its own version's when the id is gone.
//! - **Timers** fire with the engine clock at their due time (decisions' `at` and commands'
//!   `issued_at` are the due time), so `simulate` and `run` produce the same records.
//! - **`event_id`** of a decision about an instance: the event being handled when there is one
//!   (so `exited`, `goal` and whatever a `wait_for` match runs carry the event that caused
//!   them); otherwise, for decisions made by a timer firing (waits, `wait_for` timeouts,
//!   deferred sends, resumes), the instance's trigger event id, as in the decision example of
//!   docs/reference/decisions.md.
//! - **`if_no_channel: exit`**: decision `no_channel`, then `exited` with reason `no_channel`.
//! - **`completed`** carries no `step_id`; `goal` and `exited` carry the step the customer was at.
//!   `deferred` names the channel that was chosen. `bad_timezone` carries the rejected value as
//!   `reason`.
//! - **Hot reload**: instances keep the compiled version they entered (and run it to the end),
//!   even after the file changes. After an import, an instance whose (journey id, version) this
//!   engine has never loaded continues on the current version of that journey when its step id
//!   exists there, and is dropped otherwise (as is one whose journey id is gone).
//! - **History** for `did` is kept only for event types some loaded journey version names in a
//!   `did`; timestamps are the engine clock and are kept for the longest `within` seen.
//! - **Consent** updates for channels not in the configuration, or with a status other than
//!   `granted`/`withdrawn`, are ignored. A non-string address attribute is used as its JSON text.
//! - Decisions in one call are in processing order: dedupe; profile/consent; instances in
//!   (priority desc, id) order; triggers in (priority desc, id) order. `entered` and
//!   `entry_suppressed` carry no `step_id`; every decision about an instance carries its holdout
//!   flag.
//! - A journey whose instance the event ended (goal with exit, `exit_when`, or completion after
//!   a `wait_for` match) is not entered again by that event: when the event also matches the
//!   journey's trigger, decision `entry_suppressed` with reason `ended_by_same_event`.
//! - A duplicate event (`duplicate_event`) changes nothing, so it is not listed in
//!   `Effects::changed`; every other event is (its id joins the dedupe ring). A caller may clear
//!   its `Effects` after each call or accumulate several calls into one: `changed` stays free of
//!   repeats either way.
//! - `did` history, caps and parked times use the engine clock (`now`), not event timestamps.
//! - **`wait_for.for_send`** matches an event whose `properties.command_id` is the id of a
//!   command the named send step issued in this instance (any of them, when the step was
//!   reached more than once); an event without a string `command_id` does not match.

use crate::catalog::{CompiledJourney, TypeInfo};
use crate::condition::{self, Env, TriggerSrc};
use crate::hash::{self, FxHashMap};
use crate::localtime::{in_window, next_local};
use crate::output::format_time;
use crate::state::*;
use crate::{Catalog, Decision, Effects, Event, SendCommand, StateError};
use chrono::{DateTime, Utc};
use journey_spec::{Action, Condition, Duration, IfNoChannel, PathRoot, Reentry, Status};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Interns names that repeat across customers.
#[derive(Default)]
struct Interner {
    map: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.map.insert(s.into(), i);
        i
    }
    fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
}

/// A tracked `did` event type.
#[derive(Debug, Clone, Copy)]
struct DidInfo {
    ty: u32,
    /// Longest `within` (timestamps older than it are dropped); `None`: only "ever" is needed.
    keep: Option<Duration>,
}

/// The current catalog bound to this engine's interned names.
struct Bound {
    cat: Arc<Catalog>,
    chan_ids: Vec<u32>,
    journey_ids: Vec<u32>,
    /// Per cap: covered channels (interned), `None` for all.
    caps_cover: Vec<Option<Vec<u32>>>,
    did: FxHashMap<Box<str>, DidInfo>,
}

/// Timer key: (due, seq, customer slot, interned journey id).
type TKey = (DateTime<Utc>, u64, u32, u32);

/// Pending timers: a min-heap on (due, seq), which fires them in the same order as a sorted
/// set would, with cheaper inserts (new timers are mostly later than the pending ones, so they
/// settle near the bottom) and no search on cancel. A cancelled timer stays in the heap until
/// it comes up and is skipped then: an entry is live only while its instance still waits on
/// exactly that (due, seq), and seqs are never reused by this engine. `live` counts the
/// timers not cancelled.
#[derive(Default)]
struct Timers {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<TKey>>,
    live: usize,
    /// A timer was cancelled since the top was last checked (it may be the top).
    cancelled: bool,
}

impl Timers {
    fn insert(&mut self, key: TKey) {
        self.heap.push(std::cmp::Reverse(key));
        self.live += 1;
    }

    /// The timer will not fire: its entry is skipped when it comes up.
    fn cancel(&mut self) {
        self.live -= 1;
        self.cancelled = true;
    }
}

/// Instances in flight per interned journey id. An entry stays (at zero) once its journey has
/// had an instance, so the map is bounded by the journeys this engine has run.
#[derive(Default)]
struct ActiveCounts(FxHashMap<u32, usize>);

impl ActiveCounts {
    fn enter(&mut self, jid: u32) {
        *self.0.entry(jid).or_default() += 1;
    }

    fn leave(&mut self, jid: u32) {
        let n = self
            .0
            .get_mut(&jid)
            .expect("an instance that ends was counted when it began");
        *n -= 1;
    }
}

/// Whether a timer entry is still the one its instance waits on.
fn timer_is_live(slots: &Slots, key: &TKey) -> bool {
    let (due, seq, slot, jid) = *key;
    slots
        .get(slot as usize)
        .and_then(Option::as_ref)
        .is_some_and(|c| {
            c.rest.instances.iter().any(|i| {
                i.jid == jid
                    && matches!(i.wait, Wait::Timer { due: d, seq: s, .. } if d == due && s == seq)
            })
        })
}

/// One engine owns a set of customers (all of them under `simulate`, one partition's under
/// `run`).
pub struct Engine {
    bound: Bound,
    interner: Interner,
    /// Every compiled version this engine has loaded, for imports.
    known: FxHashMap<(String, u32), Arc<CompiledJourney>>,
    /// Customer id -> slot, hashing the id held in the slot (so it is stored once).
    index: hashbrown::HashTable<u32>,
    slots: Slots,
    free: Vec<u32>,
    timers: Timers,
    /// Instances in flight per journey, kept as they enter and end.
    active: ActiveCounts,
    seq: u64,
    clock: DateTime<Utc>,
    /// Call counter, to report each changed customer once per call.
    epoch: u32,
    /// How many leading `changed` entries predate this epoch (they are checked by scanning; a
    /// caller that clears its `Effects` keeps this at zero).
    changed_base: usize,
    /// `out.changed.len()` when the last call returned.
    changed_len: usize,
}

fn hash_id(id: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = hash::FxHasher::default();
    h.write(id.as_bytes());
    h.finish()
}

fn slot_id(slots: &Slots, s: u32) -> &str {
    slots[s as usize].as_ref().map_or("", |c| &c.id)
}

/// Slots per chunk of [`Slots`].
const CHUNK: usize = 4096;

/// Customer records by slot number, in chunks of [`CHUNK`] so that growing never copies the
/// records and never leaves more than one chunk unused (a single vector doubling would leave up
/// to half of a large population's record space allocated and unused).
#[derive(Default)]
struct Slots {
    chunks: Vec<Vec<Option<Customer>>>,
    len: usize,
}

impl Slots {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, c: Option<Customer>) {
        if self.chunks.last().is_none_or(|l| l.len() == CHUNK) {
            self.chunks.push(Vec::new());
        }
        let last = self.chunks.last_mut().expect("just ensured");
        if last.len() == last.capacity() {
            // The first chunk grows gradually (small engines stay small); later ones are
            // allocated whole once.
            let add = if self.len < CHUNK {
                last.len().max(16)
            } else {
                CHUNK
            };
            last.reserve_exact(add.min(CHUNK - last.len()));
        }
        last.push(c);
        self.len += 1;
    }

    fn get(&self, i: usize) -> Option<&Option<Customer>> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Option<Customer>> {
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// Every slot in order. Only the test recounts walk all customers read-only.
    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = &Option<Customer>> {
        self.chunks.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Option<Customer>> {
        self.chunks.iter_mut().flatten()
    }
}

impl std::ops::Index<usize> for Slots {
    type Output = Option<Customer>;
    #[inline]
    fn index(&self, i: usize) -> &Option<Customer> {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Slots {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Option<Customer> {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

/// Borrowed context of one unit of work (one event, or one timer).
struct Ctx<'a> {
    b: &'a Bound,
    timers: &'a mut Timers,
    active: &'a mut ActiveCounts,
    seq: &'a mut u64,
    slot: u32,
    now: DateTime<Utc>,
    ev: Option<&'a Event>,
    out: &'a mut Effects,
}

enum SendOutcome {
    Next,
    Park,
    Ended,
}

fn bind(
    cat: Arc<Catalog>,
    interner: &mut Interner,
    known: &mut FxHashMap<(String, u32), Arc<CompiledJourney>>,
    mut did: FxHashMap<Box<str>, DidInfo>,
) -> Bound {
    let chan_ids = cat
        .channels
        .iter()
        .map(|c| interner.intern(&c.name))
        .collect();
    let journey_ids = cat
        .journeys
        .iter()
        .map(|j| interner.intern(j.id()))
        .collect();
    let caps_cover = cat
        .caps
        .iter()
        .map(|c| {
            c.channels
                .as_ref()
                .map(|l| l.iter().map(|n| interner.intern(n)).collect())
        })
        .collect();
    for j in &cat.journeys {
        known.insert((j.journey.id.clone(), j.journey.version), j.clone());
        for (t, w) in &j.dids {
            let ty = interner.intern(t);
            let e = did
                .entry(t.as_str().into())
                .or_insert(DidInfo { ty, keep: None });
            e.keep = e.keep.max(*w);
        }
    }
    Bound {
        cat,
        chan_ids,
        journey_ids,
        caps_cover,
        did,
    }
}

/// A decision with the common fields set; its strings come from the output's spare buffers.
fn decision(
    out: &mut Effects,
    at: DateTime<Utc>,
    cust: &str,
    j: Option<&CompiledJourney>,
    kind: &'static str,
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
    fn s(&mut self, s: &str) -> String {
        self.out.spare.string(s)
    }

    /// A decision about an instance at a step.
    fn step_decision(
        &mut self,
        cust: &Customer,
        pos: usize,
        kind: &'static str,
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

    fn set_timer(&mut self, cust: &mut Customer, pos: usize, due: DateTime<Utc>, kind: WaitKind) {
        let seq = *self.seq;
        *self.seq += 1;
        let inst = &mut cust.rest.instances[pos];
        self.timers.insert((due, seq, self.slot, inst.jid));
        inst.wait = Wait::Timer { kind, due, seq };
    }

    fn cancel_timer(&mut self, inst: &Instance) {
        if let Wait::Timer { .. } = inst.wait {
            self.timers.cancel();
        }
    }

    fn end_instance(&mut self, cust: &mut Customer, pos: usize) {
        let inst = cust.rest.instances.remove(pos);
        self.cancel_timer(&inst);
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
    fn eval_in(
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
                let d = self.step_decision(cust, pos, "goal", true);
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
            let d = self.step_decision(cust, pos, "exited", true);
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
                    let inst = cust.rest.instances[pos].clone_wait_key();
                    self.cancel_timer_key(inst);
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

    fn cancel_timer_key(&mut self, key: Option<(DateTime<Utc>, u64, u32)>) {
        if key.is_some() {
            self.timers.cancel();
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
        let suppressed = |this: &mut Self, reason: &str| {
            let mut d = decision(this.out, this.now, &cust.id, Some(j), "entry_suppressed");
            d.reason = Some(this.s(reason));
            d.event_id = Some(this.s(&ev.event_id));
            this.out.decisions.push(d);
        };
        if just_ended {
            // The event that ended the instance also matches the trigger: it is not entered
            // again by it, and the decision says so instead of losing the customer silently.
            return suppressed(self, "ended_by_same_event");
        }
        if jr.status != Status::Active {
            return suppressed(self, "status");
        }
        if cust.instance_pos(jid).is_some() {
            return suppressed(self, "reentry");
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
            return suppressed(self, "reentry");
        }
        if jr.entry.unless.is_some() && self.eval_entry(jr.entry.unless.as_ref(), cust, ev) {
            return suppressed(self, "unless");
        }
        let holdout = hash::is_holdout(&jr.id, &cust.id, jr.entry.holdout.basis_points);
        let mut d = decision(self.out, self.now, &cust.id, Some(j), "entered");
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
            .filter_map(|k| ev.properties.get(k).map(|v| (k.as_str().into(), v.clone())))
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
                            let mut d = self.step_decision(cust, pos, "split", true);
                            d.branch = Some(self.s(&a.name));
                            self.out.decisions.push(d);
                            j.resolve(&a.next)
                        }
                        None => j.following[si as usize],
                    }
                }
            };
        }
        let d = self.step_decision(cust, pos, "completed", false);
        self.out.decisions.push(d);
        self.end_instance(cust, pos);
    }

    fn send(
        &mut self,
        cust: &mut Customer,
        pos: usize,
        j: &CompiledJourney,
        si: u16,
    ) -> SendOutcome {
        let Action::Send(send) = &j.journey.steps[si as usize].action else {
            return SendOutcome::Next;
        };
        let b = self.b;
        let cat = &b.cat;
        if cat.status_of(j) == Status::Paused {
            cust.rest.instances[pos].wait = Wait::Parked {
                kind: WaitKind::Rerun,
                since: self.now,
            };
            return SendOutcome::Park;
        }
        if cust.rest.instances[pos].holdout {
            let d = self.step_decision(cust, pos, "holdout", true);
            self.out.decisions.push(d);
            return SendOutcome::Next;
        }
        let marketing = crate::catalog::CatalogInner::is_marketing(j);
        let mut chosen: Option<(usize, String)> = None;
        for name in &send.channels {
            let skip = |this: &mut Self, cust: &Customer, reason: &str| {
                let mut d = this.step_decision(cust, pos, "skipped_channel", true);
                d.channel = Some(this.s(name));
                d.reason = Some(this.s(reason));
                this.out.decisions.push(d);
            };
            let Some(ci) = cat.channels.iter().position(|c| c.name == *name) else {
                skip(self, cust, "unreachable");
                continue;
            };
            let ch = &cat.channels[ci];
            let cid = b.chan_ids[ci];
            let Some(addr) = cust.profile_get(&ch.address) else {
                skip(self, cust, "unreachable");
                continue;
            };
            let granted = cust
                .rest
                .consent
                .iter()
                .find(|c| c.0 == cid)
                .map_or(!ch.opt_in, |c| c.1);
            if !granted {
                skip(self, cust, "no_consent");
                continue;
            }
            if marketing {
                let full = cat.caps.iter().enumerate().find(|(k, cap)| {
                    let covers = |c: u32| b.caps_cover[*k].as_ref().is_none_or(|l| l.contains(&c));
                    if !covers(cid) {
                        return false;
                    }
                    let from = self.now - cap.per.as_chrono();
                    let n = cust
                        .rest
                        .sent
                        .iter()
                        .filter(|(t, c)| *t > from && covers(*c))
                        .count();
                    n >= cap.max as usize
                });
                if let Some((_, cap)) = full {
                    skip(self, cust, &cap.reason);
                    continue;
                }
            }
            chosen = Some((ci, addr.as_address()));
            break;
        }
        let Some((ci, address)) = chosen else {
            let d = self.step_decision(cust, pos, "no_channel", true);
            self.out.decisions.push(d);
            if send.if_no_channel == IfNoChannel::Exit {
                let mut d = self.step_decision(cust, pos, "exited", true);
                d.reason = Some(self.s("no_channel"));
                self.out.decisions.push(d);
                self.end_instance(cust, pos);
                return SendOutcome::Ended;
            }
            return SendOutcome::Next;
        };
        let ch = &cat.channels[ci];
        let tz = cust.tz.unwrap_or(cat.quiet.default_timezone);
        if marketing && ch.quiet_hours && in_window(tz, self.now, cat.quiet.start, cat.quiet.end) {
            let until = next_local(tz, self.now, cat.quiet.end);
            let mut d = self.step_decision(cust, pos, "deferred", true);
            d.channel = Some(self.s(&ch.name));
            d.reason = Some(self.s("quiet_hours"));
            d.until = Some(until);
            self.out.decisions.push(d);
            self.set_timer(cust, pos, until, WaitKind::Rerun);
            return SendOutcome::Park;
        }
        let inst = &cust.rest.instances[pos];
        let mut data = self.out.spare.map();
        for (k, v) in &send.data {
            match v {
                journey_spec::DataValue::Literal(l) => {
                    data.insert(self.s(k), l.clone());
                }
                journey_spec::DataValue::Path(p) => {
                    if let Some(v) = data_value(p, cust, inst) {
                        data.insert(self.s(k), v);
                    }
                }
            }
        }
        let step_id = &j.journey.steps[si as usize].id;
        let mut command_id = self.out.spare.string("");
        hash::write_command_id(
            &mut command_id,
            &cust.id,
            &j.journey.id,
            &inst.trigger_event_id,
            step_id,
            inst.sends,
        );
        let command = SendCommand {
            command_id,
            customer_id: self.s(&cust.id),
            channel: self.s(&ch.name),
            topic: self.s(&ch.topic),
            address,
            template: self.s(&send.template),
            data,
            journey_id: self.s(&j.journey.id),
            journey_version: j.journey.version,
            step_id: self.s(step_id),
            trigger_event_id: self.s(&inst.trigger_event_id),
            issued_at: self.now,
        };
        let mut d = self.step_decision(cust, pos, "sent", true);
        d.channel = Some(self.s(&ch.name));
        d.command_id = Some(self.s(&command.command_id));
        self.out.commands.push(command);
        self.out.decisions.push(d);
        cust.rest.instances[pos].sends += 1;
        if marketing {
            if let Some(per) = cat.max_cap_per {
                let from = self.now - per.as_chrono();
                let sent = &mut cust.rest.sent;
                sent.retain(|(t, _)| *t > from);
                sent.reserve_exact(1);
                sent.push((self.now, b.chan_ids[ci]));
            }
        }
        SendOutcome::Next
    }

    /// A timer of the instance at `pos` fired at `self.now`.
    fn fire(&mut self, cust: &mut Customer, pos: usize, kind: WaitKind) {
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

    fn handle_event(&mut self, cust: &mut Customer, ev: &Event) {
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
                        let mut d = decision(self.out, self.now, &cust.id, None, "bad_timezone");
                        d.reason = Some(match v.as_str() {
                            Some(s) => self.s(s),
                            None => v.to_string(),
                        });
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
        let channel = ev.properties.get("channel").and_then(Value::as_str);
        let status = ev.properties.get("status").and_then(Value::as_str);
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

impl Instance {
    fn clone_wait_key(&self) -> Option<(DateTime<Utc>, u64, u32)> {
        match self.wait {
            Wait::Timer { due, seq, .. } => Some((due, seq, self.jid)),
            _ => None,
        }
    }
}

/// Whether a `wait_for`'s `for_send` (if any) accepts the event: its `properties.command_id`
/// must be the id of a command that send step issued in this instance. Command ids are a
/// function of the instance and the number of commands it issued before (see [`hash`]), so
/// the candidates are recomputed rather than stored.
fn for_send_matches(for_send: Option<&str>, customer: &str, inst: &Instance, ev: &Event) -> bool {
    let Some(step) = for_send else { return true };
    let Some(wanted) = ev.properties.get("command_id").and_then(Value::as_str) else {
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
fn insert_sorted(cust: &mut Customer, inst: Instance) -> usize {
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

/// A `{ path }` of send data, resolved at send time (`None`: leave the key out).
fn data_value(p: &journey_spec::Path, cust: &Customer, inst: &Instance) -> Option<Value> {
    let segs = &p.segments;
    let walk = |mut v: &Value, rest: &[String]| -> Option<Value> {
        for s in rest {
            v = v.as_object()?.get(s.as_str())?;
        }
        (!v.is_null()).then(|| v.clone())
    };
    match p.root {
        PathRoot::Trigger => {
            if segs.len() == 1 && segs[0] == "type" {
                return Some(Value::String(inst.journey.journey.trigger.event.clone()));
            }
            let (first, rest) = segs.get(1..)?.split_first()?;
            let v = &inst.trigger_props.iter().find(|(k, _)| **k == **first)?.1;
            walk(v, rest)
        }
        PathRoot::Profile => {
            let (first, rest) = segs.split_first()?;
            let pv = cust.profile_get(first)?;
            if rest.is_empty() {
                Some(pv.to_value())
            } else {
                match pv {
                    PVal::Json(j) => walk(j, rest),
                    _ => None,
                }
            }
        }
        PathRoot::Event => None,
    }
}

fn mark(cust: &mut Customer, epoch: u32, base: usize, out: &mut Effects) {
    if cust.mark == epoch {
        return;
    }
    cust.mark = epoch;
    if base > 0 && out.changed[..base].iter().any(|c| **c == *cust.id) {
        return;
    }
    let id = out.spare.string(&cust.id);
    out.changed.push(id);
}

impl Engine {
    /// A new engine with no customers.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let mut interner = Interner::default();
        let mut known = FxHashMap::default();
        let bound = bind(catalog, &mut interner, &mut known, FxHashMap::default());
        Engine {
            bound,
            interner,
            known,
            index: hashbrown::HashTable::new(),
            slots: Slots::default(),
            free: Vec::new(),
            timers: Timers::default(),
            active: ActiveCounts::default(),
            seq: 0,
            clock: DateTime::<Utc>::MIN_UTC,
            epoch: 0,
            changed_base: 0,
            changed_len: 0,
        }
    }

    /// Swaps the journey set (hot reload). Customers in flight stay on the version they
    /// entered. Instances parked by a pause whose journey is no longer paused get a resume timer
    /// due at the later of their park time and the engine clock.
    pub fn set_catalog(&mut self, catalog: Arc<Catalog>) {
        let did = std::mem::take(&mut self.bound.did);
        self.bound = bind(catalog, &mut self.interner, &mut self.known, did);
        for (slot, c) in self.slots.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            for inst in &mut c.rest.instances {
                if let Wait::Parked { kind, since } = inst.wait {
                    if self.bound.cat.status_of(&inst.journey) != Status::Paused {
                        let due = since.max(self.clock);
                        let seq = self.seq;
                        self.seq += 1;
                        self.timers.insert((due, seq, slot as u32, inst.jid));
                        inst.wait = Wait::Timer { kind, due, seq };
                    }
                }
            }
        }
    }

    /// Starts a call. A caller that accumulates several calls into one `Effects` (a Kafka
    /// transaction) keeps the same epoch, so `changed` stays free of repeats without scanning it;
    /// a cleared (or unknown) `Effects` starts a new epoch.
    fn begin(&mut self, out: &Effects) {
        if !out.changed.is_empty() && out.changed.len() == self.changed_len {
            // Same accumulation: marks of this epoch stay valid, and so does `changed_base`.
            return;
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // Wrapped: forget old marks so none is mistaken for this call's.
            for c in self.slots.iter_mut().flatten() {
                c.mark = 0;
            }
            self.epoch = 1;
        }
        self.changed_base = out.changed.len();
    }

    fn find_slot(&self, id: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash_id(id), |&s| slot_id(slots, s) == id)
            .copied()
    }

    fn slot_for(&mut self, id: &str) -> u32 {
        let h = hash_id(id);
        let slots = &self.slots;
        if let Some(&s) = self.index.find(h, |&s| slot_id(slots, s) == id) {
            return s;
        }
        let cust = Customer::new(id.into());
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(cust);
                s
            }
            None => {
                self.slots.push(Some(cust));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(h, slot, |&s| hash_id(slot_id(slots, s)));
        slot
    }

    /// Handles one event at engine time `now`.
    pub fn handle(&mut self, event: &Event, now: DateTime<Utc>, out: &mut Effects) {
        self.begin(out);
        if now > self.clock {
            self.clock = now;
        }
        let slot = self.slot_for(&event.customer_id);
        let mut cust = self.slots[slot as usize].take().expect("slot is live");
        let h = hash::event_id_hash(&event.event_id);
        if cust.seen(h) {
            let mut d = decision(out, now, &cust.id, None, "duplicate_event");
            d.event_id = Some(out.spare.string(&event.event_id));
            out.decisions.push(d);
        } else {
            cust.remember(h);
            mark(&mut cust, self.epoch, self.changed_base, out);
            let mut ctx = Ctx {
                b: &self.bound,
                timers: &mut self.timers,
                active: &mut self.active,
                seq: &mut self.seq,
                slot,
                now,
                ev: Some(event),
                out,
            };
            ctx.handle_event(&mut cust, event);
        }
        self.slots[slot as usize] = Some(cust);
        self.settle(false);
        self.changed_len = out.changed.len();
    }

    /// Earliest pending timer, if any.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        // Every public call ends with `settle`, so the top entry is live.
        self.timers.heap.peek().map(|k| k.0 .0)
    }

    /// Drops cancelled entries from the top of the timer heap, so that [`Engine::next_due`]
    /// names a live timer. The top can only have turned stale through a cancel, or a pop that
    /// exposed an entry cancelled earlier (`fire_due` passes `popped`).
    fn settle(&mut self, popped: bool) {
        if !popped && !self.timers.cancelled {
            return;
        }
        self.timers.cancelled = false;
        while let Some(top) = self.timers.heap.peek() {
            if timer_is_live(&self.slots, &top.0) {
                break;
            }
            self.timers.heap.pop();
        }
    }

    /// Fires every timer due at or before `now`, in due order (ties in the order they were
    /// set). Each fires with the engine clock at its due time.
    pub fn fire_due(&mut self, now: DateTime<Utc>, out: &mut Effects) {
        self.begin(out);
        let mut popped = false;
        while let Some(&std::cmp::Reverse(key)) = self.timers.heap.peek() {
            if key.0 > now {
                break;
            }
            self.timers.heap.pop();
            popped = true;
            let (due, seq, slot, jid) = key;
            if due > self.clock {
                self.clock = due;
            }
            let Some(mut cust) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
                continue;
            };
            // A cancelled entry finds no instance waiting on it and is skipped.
            let found = cust.rest.instances.iter().position(|i| {
                i.jid == jid
                    && matches!(i.wait, Wait::Timer { due: d, seq: s, .. } if d == due && s == seq)
            });
            if let Some(pos) = found {
                self.timers.live -= 1;
                let Wait::Timer { kind, .. } = cust.rest.instances[pos].wait else {
                    unreachable!("matched above")
                };
                mark(&mut cust, self.epoch, self.changed_base, out);
                let mut ctx = Ctx {
                    b: &self.bound,
                    timers: &mut self.timers,
                    active: &mut self.active,
                    seq: &mut self.seq,
                    slot,
                    now: due,
                    ev: None,
                    out,
                };
                ctx.fire(&mut cust, pos, kind);
            }
            self.slots[slot as usize] = Some(cust);
        }
        if now > self.clock {
            self.clock = now;
        }
        self.settle(popped);
        self.changed_len = out.changed.len();
    }

    fn customer(&self, id: &str) -> Option<&Customer> {
        let s = self.find_slot(id)?;
        self.slots[s as usize].as_ref()
    }

    /// The customer's persisted state (changelog value); `None` when the customer has no state
    /// (a tombstone).
    pub fn export_customer(&self, customer_id: &str) -> Option<Vec<u8>> {
        let c = self.customer(customer_id)?;
        let i = &self.interner;
        let p = Persisted {
            profile: c
                .profile
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_value().to_string()))
                .collect(),
            consent: c
                .rest
                .consent
                .iter()
                .map(|(ch, g)| (i.name(*ch).to_string(), *g))
                .collect(),
            dedupe: c.dedupe_ids().to_vec(),
            dedupe_pos: c.dedupe_pos,
            last_entry: c
                .rest
                .last_entry
                .iter()
                .map(|(j, t)| (i.name(*j).to_string(), ptime(*t)))
                .collect(),
            history: c
                .rest
                .history
                .iter()
                .map(|h| {
                    (
                        i.name(h.ty).to_string(),
                        h.ever,
                        h.times.iter().map(|t| ptime(*t)).collect(),
                    )
                })
                .collect(),
            sent: c
                .rest
                .sent
                .iter()
                .map(|(t, ch)| (ptime(*t), i.name(*ch).to_string()))
                .collect(),
            instances: c
                .rest
                .instances
                .iter()
                .map(|inst| PInstance {
                    journey_id: inst.journey.journey.id.clone(),
                    version: inst.journey.journey.version,
                    step_id: inst.journey.journey.steps[inst.step as usize].id.clone(),
                    holdout: inst.holdout,
                    goal_reached: inst.goal_reached,
                    sends: inst.sends,
                    entered_at: ptime(inst.entered_at),
                    trigger_event_id: inst.trigger_event_id.to_string(),
                    trigger_props: inst
                        .trigger_props
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    wait: match inst.wait {
                        Wait::Timer { kind, due, seq } => PWait::Timer {
                            kind,
                            due: ptime(due),
                            seq,
                        },
                        Wait::Parked { kind, since } => PWait::Parked {
                            kind,
                            since: ptime(since),
                        },
                        // Steps never stay running between calls; persist as a rerun now.
                        Wait::Running => PWait::Parked {
                            kind: WaitKind::Rerun,
                            since: ptime(self.clock),
                        },
                    },
                })
                .collect(),
        };
        Some(encode(&p))
    }

    /// Restores a customer from its changelog value and rebuilds its timers.
    pub fn import_customer(&mut self, customer_id: &str, bytes: &[u8]) -> Result<(), StateError> {
        let p = decode(bytes).map_err(StateError)?;
        let bad = |what: &str| StateError(format!("bad {what}"));
        let time = |t: PTime| from_ptime(t).ok_or_else(|| bad("timestamp"));
        self.remove_customer(customer_id);
        let mut c = Customer::new(customer_id.into());
        for (k, v) in &p.profile {
            let v: Value = serde_json::from_str(v).map_err(|e| StateError(e.to_string()))?;
            if let Some(pv) = PVal::from_value(&v) {
                if k == "timezone" {
                    c.tz = v.as_str().and_then(|s| s.parse().ok());
                }
                c.profile_set(k, pv);
            }
        }
        c.rest.consent = p
            .consent
            .iter()
            .map(|(ch, g)| (self.interner.intern(ch), *g))
            .collect();
        if p.dedupe.len() > DEDUPE_IDS || p.dedupe_pos as usize >= DEDUPE_IDS.max(1) {
            return Err(bad("dedupe ring"));
        }
        c.set_dedupe(&p.dedupe, p.dedupe_pos);
        for (j, t) in &p.last_entry {
            c.rest.last_entry.push((self.interner.intern(j), time(*t)?));
        }
        for (ty, ever, times) in &p.history {
            let times = times.iter().map(|t| time(*t)).collect::<Result<_, _>>()?;
            c.rest.history.push(Hist {
                ty: self.interner.intern(ty),
                ever: *ever,
                times,
            });
        }
        for (t, ch) in &p.sent {
            c.rest.sent.push((time(*t)?, self.interner.intern(ch)));
        }
        let mut resumes = Vec::new();
        for pi in &p.instances {
            let journey = match self.known.get(&(pi.journey_id.clone(), pi.version)) {
                Some(j) if j.step_ids.contains_key(&pi.step_id) => j.clone(),
                _ => match self.bound.cat.by_id.get(&pi.journey_id) {
                    Some(&i)
                        if self.bound.cat.journeys[i as usize]
                            .step_ids
                            .contains_key(&pi.step_id) =>
                    {
                        self.bound.cat.journeys[i as usize].clone()
                    }
                    _ => continue,
                },
            };
            let step = journey.step_ids[&pi.step_id];
            let jid = self.interner.intern(&pi.journey_id);
            let mut trigger_props = Vec::new();
            for (k, v) in &pi.trigger_props {
                let v: Value = serde_json::from_str(v).map_err(|e| StateError(e.to_string()))?;
                trigger_props.push((k.as_str().into(), v));
            }
            let wait = match pi.wait {
                PWait::Timer { kind, due, seq } => Wait::Timer {
                    kind,
                    due: time(due)?,
                    seq,
                },
                PWait::Parked { kind, since } => Wait::Parked {
                    kind,
                    since: time(since)?,
                },
            };
            let inst = Instance {
                journey,
                jid,
                step,
                holdout: pi.holdout,
                goal_reached: pi.goal_reached,
                sends: pi.sends,
                entered_at: time(pi.entered_at)?,
                trigger_event_id: pi.trigger_event_id.as_str().into(),
                trigger_props,
                wait,
            };
            if c.instance_pos(jid).is_none() {
                resumes.push(jid);
                insert_sorted(&mut c, inst);
            }
        }
        let slot = self.slot_for(customer_id);
        for inst in &mut c.rest.instances {
            self.active.enter(inst.jid);
            match inst.wait {
                Wait::Timer { due, seq, .. } => {
                    self.timers.insert((due, seq, slot, inst.jid));
                    self.seq = self.seq.max(seq + 1);
                }
                Wait::Parked { kind, since } => {
                    if self.bound.cat.status_of(&inst.journey) != Status::Paused {
                        let due = since.max(self.clock);
                        let seq = self.seq;
                        self.seq += 1;
                        self.timers.insert((due, seq, slot, inst.jid));
                        inst.wait = Wait::Timer { kind, due, seq };
                    }
                }
                Wait::Running => {}
            }
        }
        self.slots[slot as usize] = Some(c);
        Ok(())
    }

    /// Forgets a customer (a tombstone in the changelog, or a revoked partition).
    pub fn remove_customer(&mut self, customer_id: &str) {
        let slots = &self.slots;
        let Ok(entry) = self
            .index
            .find_entry(hash_id(customer_id), |&s| slot_id(slots, s) == customer_id)
        else {
            return;
        };
        let (slot, _) = entry.remove();
        if let Some(c) = self.slots[slot as usize].take() {
            for inst in &c.rest.instances {
                if let Wait::Timer { .. } = inst.wait {
                    self.timers.cancel();
                }
                self.active.leave(inst.jid);
            }
        }
        self.free.push(slot);
        self.settle(false);
    }

    /// The ids of the customers held, in no particular order (for a snapshot of the whole
    /// state with [`Engine::export_customer`]).
    pub fn customer_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.slots.chunks.iter().flatten().flatten().map(|c| &*c.id)
    }

    /// Customers held.
    pub fn customer_count(&self) -> usize {
        self.index.len()
    }

    /// Journey instances in flight, per journey id (sorted by journey id; journeys with none
    /// are left out). Reads counts kept as instances enter and end, so it costs the number of
    /// journeys, not of customers.
    pub fn active_instances(&self) -> Vec<(String, usize)> {
        self.named_counts(self.active.0.iter().map(|(&j, &n)| (j, n)))
    }

    /// Counts by interned journey id as (name, count), zeros left out, sorted by name.
    fn named_counts(&self, counts: impl Iterator<Item = (u32, usize)>) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = counts
            .filter(|&(_, n)| n > 0)
            .map(|(j, n)| (self.interner.name(j).to_string(), n))
            .collect();
        v.sort_unstable();
        v
    }

    /// [`Engine::active_instances`] counted from scratch over every customer, to check the
    /// kept counts against.
    #[cfg(test)]
    pub(crate) fn recount_active_instances(&self) -> Vec<(String, usize)> {
        let mut counts: FxHashMap<u32, usize> = FxHashMap::default();
        for c in self.slots.iter().flatten() {
            for i in &c.rest.instances {
                *counts.entry(i.jid).or_default() += 1;
            }
        }
        self.named_counts(counts.into_iter())
    }

    /// [`Engine::pending_timers`] counted from scratch over every customer.
    #[cfg(test)]
    pub(crate) fn recount_pending_timers(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .flat_map(|c| c.rest.instances.iter())
            .filter(|i| matches!(i.wait, Wait::Timer { .. }))
            .count()
    }

    /// Pending timers.
    pub fn pending_timers(&self) -> usize {
        self.timers.live
    }

    /// A JSON view of one customer: journeys in flight, pending timers, cap counters, consent,
    /// profile keys (for the inspection endpoint). `now` is used for cap windows.
    pub fn inspect(&self, customer_id: &str, now: DateTime<Utc>) -> Option<Value> {
        let c = self.customer(customer_id)?;
        let cat = &self.bound.cat;
        let mut profile: Vec<&str> = c.profile.iter().map(|(k, _)| &**k).collect();
        profile.sort_unstable();
        let consent: Map<String, Value> = cat
            .channels
            .iter()
            .enumerate()
            .map(|(ci, ch)| {
                let cid = self.bound.chan_ids[ci];
                let g = c
                    .rest
                    .consent
                    .iter()
                    .find(|x| x.0 == cid)
                    .map_or(!ch.opt_in, |x| x.1);
                (
                    ch.name.clone(),
                    json!(if g { "granted" } else { "withdrawn" }),
                )
            })
            .collect();
        let caps: Vec<Value> = cat
            .caps
            .iter()
            .enumerate()
            .map(|(k, cap)| {
                let from = now - cap.per.as_chrono();
                let used = c
                    .rest
                    .sent
                    .iter()
                    .filter(|(t, ch)| {
                        *t > from
                            && self.bound.caps_cover[k]
                                .as_ref()
                                .is_none_or(|l| l.contains(ch))
                    })
                    .count();
                json!({"name": cap.name, "used": used, "max": cap.max})
            })
            .collect();
        let journeys: Vec<Value> = c
            .rest
            .instances
            .iter()
            .map(|i| {
                let (state, at) = match i.wait {
                    Wait::Timer { kind, due, .. } => (wait_label(kind), Some(format_time(due))),
                    Wait::Parked { since, .. } => ("parked", Some(format_time(since))),
                    Wait::Running => ("running", None),
                };
                json!({
                    "journey_id": i.journey.journey.id,
                    "journey_version": i.journey.journey.version,
                    "step_id": i.journey.journey.steps[i.step as usize].id,
                    "entered_at": format_time(i.entered_at),
                    "trigger_event_id": &*i.trigger_event_id,
                    "holdout": i.holdout,
                    "state": state,
                    "due": at,
                })
            })
            .collect();
        let timers = c
            .rest
            .instances
            .iter()
            .filter(|i| matches!(i.wait, Wait::Timer { .. }))
            .count();
        Some(json!({
            "customer_id": &*c.id,
            "journeys": journeys,
            "pending_timers": timers,
            "caps": caps,
            "consent": consent,
            "profile_keys": profile,
            "timezone": c.tz.map(|t| t.name().to_string()),
        }))
    }

    /// Approximate heap and inline bytes held for one customer (state only, excluding the
    /// shared compiled journeys and the engine's index entry).
    pub fn customer_bytes(&self, customer_id: &str) -> Option<usize> {
        let c = self.customer(customer_id)?;
        use std::mem::size_of;
        let mut n = size_of::<Customer>() + c.id.heap_len() + size_of::<u32>();
        n += c.profile.len() * size_of::<(InlineStr, PVal)>();
        for (k, v) in &c.profile {
            n += k.heap_len()
                + match v {
                    PVal::Str(s) => s.len(),
                    PVal::Json(j) => 64 + j.to_string().len(),
                    _ => 0,
                };
        }
        if c.rest.is_allocated() {
            n += size_of::<Rest>();
        }
        n += heap_of(&c.rest.consent);
        n += c.dedupe_bytes();
        n += heap_of(&c.rest.last_entry);
        n += heap_of(&c.rest.history);
        n += c
            .rest
            .history
            .iter()
            .map(|h| heap_of(&h.times))
            .sum::<usize>();
        n += heap_of(&c.rest.sent);
        n += heap_of(&c.rest.instances);
        for i in &c.rest.instances {
            n += i.trigger_event_id.len();
            n += i
                .trigger_props
                .iter()
                .map(|(k, v)| {
                    std::mem::size_of::<(InlineStr, Value)>() + k.heap_len() + v.to_string().len()
                })
                .sum::<usize>();
        }
        Some(n)
    }
}

/// Heap bytes of a list that keeps its first elements inline (zero while they fit).
fn heap_of<A: smallvec::Array>(v: &smallvec::SmallVec<A>) -> usize {
    if v.spilled() {
        v.capacity() * std::mem::size_of::<A::Item>()
    } else {
        0
    }
}

fn wait_label(kind: WaitKind) -> &'static str {
    match kind {
        WaitKind::Advance => "waiting",
        WaitKind::WaitFor => "waiting_for_event",
        WaitKind::Rerun => "deferred",
    }
}
