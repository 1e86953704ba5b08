//! The timer heap: pending timers in (due, seq) order with lazy cancellation, the one check of
//! whether an entry is still live, and the one way a parked instance is given a resume timer.

use super::store::Slots;
use super::Engine;
use crate::state::*;
use crate::Catalog;
use chrono::{DateTime, Utc};
use journey_spec::Status;

/// Timer key: (due, seq, customer slot, interned journey id).
pub(super) type TKey = (DateTime<Utc>, u64, u32, u32);

/// Pending timers: a min-heap on (due, seq), which fires them in the same order as a sorted
/// set would, with cheaper inserts (new timers are mostly later than the pending ones, so they
/// settle near the bottom) and no search on cancel. A cancelled timer stays in the heap until
/// it comes up and is skipped then: an entry is live only while its instance still waits on
/// exactly that (due, seq), and seqs are never reused by this engine. `live` counts the
/// timers not cancelled.
#[derive(Default)]
pub(super) struct Timers {
    pub(super) heap: std::collections::BinaryHeap<std::cmp::Reverse<TKey>>,
    pub(super) live: usize,
    /// A timer was cancelled since the top was last checked (it may be the top).
    cancelled: bool,
    /// The next timer's sequence number (never reused).
    pub(super) seq: u64,
}

impl Timers {
    /// Adds a timer of an existing sequence number (a restored one).
    pub(super) fn insert(&mut self, key: TKey) {
        self.heap.push(std::cmp::Reverse(key));
        self.live += 1;
        self.seq = self.seq.max(key.1 + 1);
    }

    /// Sets a new timer for the instance of journey `jid` of the customer in `slot`: the
    /// instance's wait to store.
    #[inline]
    pub(super) fn set(&mut self, due: DateTime<Utc>, slot: u32, jid: u32, kind: WaitKind) -> Wait {
        let seq = self.seq;
        self.insert((due, seq, slot, jid));
        Wait::Timer { kind, due, seq }
    }

    /// The instance no longer waits as `wait` said: a timer it waited on will not fire (its
    /// entry is skipped when it comes up).
    #[inline]
    pub(super) fn cancel(&mut self, wait: &Wait) {
        if let Wait::Timer { .. } = wait {
            self.live -= 1;
            self.cancelled = true;
        }
    }

    /// Gives an instance parked by a pause, whose journey is no longer paused, a resume timer
    /// due at the later of its park time and the engine clock (after a catalog change and after
    /// an import alike).
    pub(super) fn resume_parked(
        &mut self,
        cat: &Catalog,
        clock: DateTime<Utc>,
        slot: u32,
        inst: &mut Instance,
    ) {
        if let Wait::Parked { kind, since } = inst.wait {
            if cat.status_of(&inst.journey) != Status::Paused {
                inst.wait = self.set(since.max(clock), slot, inst.jid, kind);
            }
        }
    }
}

/// The position of the customer's instance that waits on the timer `key`; `None` when that
/// entry was cancelled (the instance ended, or waits on something else now).
#[inline]
pub(super) fn waiter(cust: &Customer, key: &TKey) -> Option<usize> {
    let (due, seq, _, jid) = *key;
    cust.rest.instances.iter().position(|i| {
        i.jid == jid && matches!(i.wait, Wait::Timer { due: d, seq: s, .. } if d == due && s == seq)
    })
}

/// Whether a timer entry is still the one its instance waits on.
fn is_live(slots: &Slots, key: &TKey) -> bool {
    slots
        .get(key.2 as usize)
        .and_then(Option::as_ref)
        .is_some_and(|c| waiter(c, key).is_some())
}

impl Engine {
    /// Earliest pending timer, if any.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        // Every public call ends with `settle`, so the top entry is live.
        self.timers.heap.peek().map(|k| k.0 .0)
    }

    /// Pending timers.
    pub fn pending_timers(&self) -> usize {
        self.timers.live
    }

    /// Drops cancelled entries from the top of the timer heap, so that [`Engine::next_due`]
    /// names a live timer. The top can only have turned stale through a cancel, or a pop that
    /// exposed an entry cancelled earlier (`fire_due` passes `popped`).
    pub(super) fn settle(&mut self, popped: bool) {
        if !popped && !self.timers.cancelled {
            return;
        }
        self.timers.cancelled = false;
        while let Some(top) = self.timers.heap.peek() {
            if is_live(&self.slots, &top.0) {
                break;
            }
            self.timers.heap.pop();
        }
    }
}
