//! Customer records and their index: slots in fixed chunks, the id → slot table, adding and
//! removing customers, and the instance-in-flight counts kept as instances enter and end.

use super::{Engine, FxHashMap};
use crate::hash;
use crate::state::*;

/// Instances in flight per interned journey id. An entry stays (at zero) once its journey has
/// had an instance, so the map is bounded by the journeys this engine has run.
#[derive(Default)]
pub(super) struct ActiveCounts(pub(super) FxHashMap<u32, usize>);

impl ActiveCounts {
    pub(super) fn enter(&mut self, jid: u32) {
        *self.0.entry(jid).or_default() += 1;
    }

    pub(super) fn leave(&mut self, jid: u32) {
        let n = self
            .0
            .get_mut(&jid)
            .expect("an instance that ends was counted when it began");
        *n -= 1;
    }
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
pub(super) struct Slots {
    chunks: Vec<Vec<Option<Customer>>>,
    len: usize,
}

impl Slots {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn push(&mut self, c: Option<Customer>) {
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

    pub(super) fn get(&self, i: usize) -> Option<&Option<Customer>> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut Option<Customer>> {
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// Every slot in order. Only the test recounts walk all customers read-only.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &Option<Customer>> {
        self.chunks.iter().flatten()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Option<Customer>> {
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

impl Engine {
    pub(super) fn find_slot(&self, id: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash_id(id), |&s| slot_id(slots, s) == id)
            .copied()
    }

    /// The customer's slot, added (empty) when the customer is new.
    pub(super) fn slot_for(&mut self, id: &str) -> u32 {
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

    /// The slot of customer `id` (added when the customer is new) with the record it holds
    /// taken out, in one probe of the index: for an import, which replaces the record. The
    /// caller puts a record back in the slot before any other call.
    pub(super) fn take_slot(&mut self, id: &str) -> (u32, Option<Customer>) {
        let slots = &self.slots;
        let entry = self.index.entry(
            hash_id(id),
            |&s| slot_id(slots, s) == id,
            |&s| hash_id(slot_id(slots, s)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => {
                let s = *e.get();
                (s, self.slots[s as usize].take())
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                let s = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.slots.push(None);
                        (self.slots.len() - 1) as u32
                    }
                };
                e.insert(s);
                (s, None)
            }
        }
    }

    pub(super) fn customer(&self, id: &str) -> Option<&Customer> {
        let s = self.find_slot(id)?;
        self.slots[s as usize].as_ref()
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
                self.timers.cancel(&inst.wait);
                self.active.leave(inst.jid);
            }
        }
        self.free.push(slot);
        self.settle(false);
    }

    /// Makes room in the customer index for `additional` more customers at once, e.g. before
    /// a restore imports a checkpoint whose customer count is known. Growing the index while
    /// importing rehashes it at each doubling, and each rehash reads every customer's id again
    /// (a cache miss per customer at millions of customers).
    pub fn reserve_customers(&mut self, additional: usize) {
        let slots = &self.slots;
        self.index
            .reserve(additional, |&s| hash_id(slot_id(slots, s)));
    }

    /// Customers held.
    pub fn customer_count(&self) -> usize {
        self.index.len()
    }

    /// The ids of the customers held (in no particular order).
    pub fn customer_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.index.iter().map(|&s| slot_id(&self.slots, s))
    }

    /// The number of customer slots: every slot number given by
    /// [`Engine::customers_in_slots`] is below it. It never decreases: a removed customer's slot
    /// stays (empty) and is reused by a later customer.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The customers held in the slots numbered `slots` (clamped to [`Engine::slot_count`]),
    /// as (slot number, id) in slot order, empty slots skipped: for walking every customer in
    /// bounded steps without copying ids (a checkpoint built over several turns). The work is
    /// proportional to the slots scanned; a caller that stops early resumes from the slot after
    /// the last one it took.
    ///
    /// A customer keeps its slot for as long as it is held, so a walk over ascending slot
    /// ranges, with customers added and removed between its steps, visits:
    /// - each customer held throughout the walk exactly once;
    /// - a customer removed during the walk never after its removal;
    /// - a customer added after the walk started maybe (it may take a slot not yet walked,
    ///   such as one a removed customer left empty, or one already walked).
    pub fn customers_in_slots(
        &self,
        slots: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (usize, &str)> + '_ {
        let end = slots.end.min(self.slots.len());
        (slots.start..end).filter_map(move |s| Some((s, &*self.slots[s].as_ref()?.id)))
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::*;
    use serde_json::json;

    #[test]
    fn customer_ids_lists_the_customers_held() {
        let mut s = Sim::new(vec![]);
        for c in ["c1", "c2", "c3"] {
            s.event(c, "noise", "2026-11-23T10:00:00Z", json!({}));
        }
        s.engine.remove_customer("c2");
        let mut ids: Vec<&str> = s.engine.customer_ids().collect();
        ids.sort_unstable();
        assert_eq!(ids, vec!["c1", "c3"]);
        assert_eq!(ids.len(), s.engine.customer_count());
    }

    /// Every customer, by steps of `step` slots, as a checkpoint walks them.
    fn walk(e: &crate::Engine, step: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut at = 0;
        while at < e.slot_count() {
            ids.extend(
                e.customers_in_slots(at..at + step)
                    .map(|(_, id)| id.to_owned()),
            );
            at += step;
        }
        ids
    }

    fn noise(s: &mut Sim, c: &str) {
        s.event(c, "noise", "2026-11-23T10:00:00Z", json!({}));
    }

    #[test]
    fn walking_the_slots_visits_each_customer_held_once() {
        let mut s = Sim::new(vec![]);
        for i in 0..10 {
            noise(&mut s, &format!("c{i}"));
        }
        s.engine.remove_customer("c4");
        assert_eq!(s.engine.slot_count(), 10);
        let mut ids = walk(&s.engine, 3);
        ids.sort_unstable();
        let mut held: Vec<&str> = s.engine.customer_ids().collect();
        held.sort_unstable();
        assert_eq!(ids, held);
        // Ranges past the end are clamped, and slot numbers come in order.
        assert_eq!(s.engine.customers_in_slots(10..20).count(), 0);
        let slots: Vec<usize> = s
            .engine
            .customers_in_slots(0..100)
            .map(|(n, _)| n)
            .collect();
        assert_eq!(slots, [0, 1, 2, 3, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn a_walk_survives_customers_added_and_removed_between_steps() {
        let mut s = Sim::new(vec![]);
        for i in 0..8 {
            noise(&mut s, &format!("c{i}"));
        }
        let e = |s: &Sim, r: std::ops::Range<usize>| -> Vec<String> {
            s.engine
                .customers_in_slots(r)
                .map(|(_, id)| id.to_owned())
                .collect()
        };
        let mut seen = e(&s, 0..4);
        assert_eq!(seen, ["c0", "c1", "c2", "c3"]);
        // Removed behind the cursor (already visited) and ahead of it (never visited): their
        // slots are reused by new customers, one behind the cursor and one ahead of it.
        s.engine.remove_customer("c1");
        s.engine.remove_customer("c6");
        noise(&mut s, "new-ahead");
        noise(&mut s, "new-behind");
        // And one more past the old end, in a new slot.
        noise(&mut s, "new-end");
        assert_eq!(s.engine.slot_count(), 9);
        seen.extend(e(&s, 4..8));
        seen.extend(e(&s, 8..12));
        assert!(
            !seen.contains(&"c6".to_owned()),
            "a removed customer is not visited"
        );
        for held in ["c0", "c2", "c3", "c4", "c5", "c7"] {
            let n = seen.iter().filter(|id| *id == held).count();
            assert_eq!(n, 1, "{held} held throughout is visited once");
        }
        // The free slots are reused last freed first: "new-ahead" took c6's slot (walked
        // after), "new-behind" took c1's (walked before); "new-end" is in a new slot.
        assert!(seen.contains(&"new-ahead".to_owned()));
        assert!(!seen.contains(&"new-behind".to_owned()));
        assert!(seen.contains(&"new-end".to_owned()));
        assert_eq!(seen.len(), 9);
        // A fresh walk sees exactly the customers held.
        let mut all = walk(&s.engine, 4);
        all.sort_unstable();
        let mut held: Vec<&str> = s.engine.customer_ids().collect();
        held.sort_unstable();
        assert_eq!(all, held);
    }

    #[test]
    fn reserving_keeps_every_customer_findable() {
        let mut s = Sim::new(vec![]);
        for c in ["c1", "c2", "c3"] {
            s.event(c, "noise", "2026-11-23T10:00:00Z", json!({}));
        }
        let states: Vec<(String, Vec<u8>)> = ["c1", "c2", "c3"]
            .iter()
            .map(|&c| (c.to_owned(), s.engine.export_customer(c).expect("held")))
            .collect();
        s.engine.reserve_customers(100_000);
        for (c, _) in &states {
            assert!(s.engine.customer(c).is_some(), "{c} is still found");
        }
        for i in 0..20_000 {
            s.engine
                .import_customer(&format!("n{i}"), &states[0].1)
                .expect("imports");
        }
        assert_eq!(s.engine.customer_count(), 20_003);
        assert_eq!(s.engine.export_customer("c2").as_ref(), Some(&states[1].1));
        assert!(s.engine.customer("n19999").is_some());
    }
}
