//! The engine: per-customer state machines driven by events and timers.
//!
//! This module holds the public API (the calls that handle an event and fire timers, the
//! catalog binding); the rest is split by job: [`store`] (customer records and their index),
//! [`timers`] (the timer heap), [`rules`] (the journey rules for one event or timer), [`send`]
//! (channels, consent, caps, quiet hours, commands), [`persist`] (changelog values) and
//! [`inspect`] (read-only views and byte accounting).
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
//!   `Effects::changed`; every other event is (its id joins the dedupe ring). `changed` lists
//!   each customer a call changed once; callers clear their `Effects` between calls.
//! - `did` history, caps and parked times use the engine clock (`now`), not event timestamps.
//! - **`wait_for.for_send`** matches an event whose `properties.command_id` is the id of a
//!   command the named send step issued in this instance (any of them, when the step was
//!   reached more than once); an event without a string `command_id` does not match.

mod inspect;
mod persist;
mod rules;
mod send;
mod store;
mod timers;
mod wire;

use crate::catalog::CompiledJourney;
use crate::hash::{self, FxHashMap};
use crate::state::*;
use crate::{Catalog, DecisionKind, Effects, Event};
use chrono::{DateTime, Utc};
use journey_spec::Duration;
use rules::{decision, Ctx};
use std::sync::Arc;
use store::{ActiveCounts, Slots};
use timers::Timers;

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
    clock: DateTime<Utc>,
    /// Call counter, to report each changed customer once per call.
    epoch: u32,
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

/// Lists the customer in `out.changed` the first time this call changes it.
#[inline]
fn mark(cust: &mut Customer, epoch: u32, out: &mut Effects) {
    if cust.mark == epoch {
        return;
    }
    cust.mark = epoch;
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
            clock: DateTime::<Utc>::MIN_UTC,
            epoch: 0,
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
                self.timers
                    .resume_parked(&self.bound.cat, self.clock, slot as u32, inst);
            }
        }
    }

    /// Starts a call: a new epoch, so that each customer the call changes is listed once in
    /// `Effects::changed`. Callers clear their `Effects` before (or after) each call; one that
    /// does not gets each call's entries appended.
    fn begin(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // Wrapped: forget old marks so none is mistaken for this call's.
            for c in self.slots.iter_mut().flatten() {
                c.mark = 0;
            }
            self.epoch = 1;
        }
    }

    /// Handles one event at engine time `now`.
    pub fn handle(&mut self, event: &Event, now: DateTime<Utc>, out: &mut Effects) {
        self.begin();
        if now > self.clock {
            self.clock = now;
        }
        let slot = self.slot_for(&event.customer_id);
        let mut cust = self.slots[slot as usize].take().expect("slot is live");
        let h = hash::event_id_hash(&event.event_id);
        if cust.seen(h) {
            let mut d = decision(out, now, &cust.id, None, DecisionKind::DuplicateEvent);
            d.event_id = Some(out.spare.string(&event.event_id));
            out.decisions.push(d);
        } else {
            cust.remember(h);
            mark(&mut cust, self.epoch, out);
            let mut ctx = Ctx {
                b: &self.bound,
                timers: &mut self.timers,
                active: &mut self.active,
                slot,
                now,
                ev: Some(event),
                out,
            };
            ctx.handle_event(&mut cust, event);
        }
        self.slots[slot as usize] = Some(cust);
        self.settle(false);
    }

    /// Fires every timer due at or before `now`, in due order (ties in the order they were
    /// set). Each fires with the engine clock at its due time.
    pub fn fire_due(&mut self, now: DateTime<Utc>, out: &mut Effects) {
        self.begin();
        let mut popped = false;
        while let Some(&std::cmp::Reverse(key)) = self.timers.heap.peek() {
            if key.0 > now {
                break;
            }
            self.timers.heap.pop();
            popped = true;
            let (due, _, slot, _) = key;
            if due > self.clock {
                self.clock = due;
            }
            let Some(mut cust) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
                continue;
            };
            // A cancelled entry finds no instance waiting on it and is skipped.
            if let Some(pos) = timers::waiter(&cust, &key) {
                self.timers.live -= 1;
                let Wait::Timer { kind, .. } = cust.rest.instances[pos].wait else {
                    unreachable!("the waiter waits on a timer")
                };
                mark(&mut cust, self.epoch, out);
                let mut ctx = Ctx {
                    b: &self.bound,
                    timers: &mut self.timers,
                    active: &mut self.active,
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
    }
}
