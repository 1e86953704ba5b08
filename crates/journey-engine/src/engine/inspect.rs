//! Read-only views: instances in flight per journey, one customer as JSON for the inspection
//! endpoint, and the bytes a customer's state takes.

use super::send::{cap_used, consent_granted};
use super::Engine;
#[cfg(test)]
use crate::hash::FxHashMap;
use crate::output::format_time;
use crate::state::*;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

impl Engine {
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
                let g = consent_granted(c, self.bound.chan_ids[ci], ch);
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
                let used = cap_used(c, cap, self.bound.caps_cover[k].as_ref(), now);
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
