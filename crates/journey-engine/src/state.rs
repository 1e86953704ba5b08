//! Per-customer state and its persisted (changelog) form.
//!
//! In memory, names that repeat across customers (channels, journey ids, event types) are
//! interned to `u32` by the engine; the persisted form spells them out so a state survives any
//! change of configuration or journeys. Persisted bytes: one format byte ([`FORMAT`]) followed by
//! the postcard encoding of `Persisted` (below). The engine reads and writes those bytes directly
//! from and into the customer record (`engine::persist`, `engine::wire`); `Persisted` is the
//! description of the format, which the tests encode and decode with postcard itself to check
//! that the engine's reader and writer keep to it.
//!
//! The in-memory layout is shaped by what one event reads, since with many customers each read
//! of a different allocation is a cache miss: the [`Customer`] record holds the id and profile
//! keys inline ([`InlineStr`]) and a tag byte per remembered event id (so the dedupe check of a
//! new id reads only the record); everything a customer in a journey has beyond that is in one
//! [`Rest`] allocation whose lists keep their first elements inline.

use crate::catalog::CompiledJourney;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smallvec::SmallVec;
use std::sync::Arc;

/// Version of the persisted format.
pub const FORMAT: u8 = 1;
/// Event ids remembered per customer for dedupe.
pub const DEDUPE_IDS: usize = 32;

/// A profile attribute value, compact: scalars inline, lists and objects boxed.
#[derive(Debug, Clone, PartialEq)]
pub enum PVal {
    Bool(bool),
    Num(serde_json::Number),
    Str(Box<str>),
    Json(Box<Value>),
}

impl PVal {
    /// `None` for `null` (which removes an attribute).
    pub fn from_value(v: &Value) -> Option<PVal> {
        Some(match v {
            Value::Null => return None,
            Value::Bool(b) => PVal::Bool(*b),
            Value::Number(n) => PVal::Num(n.clone()),
            Value::String(s) => PVal::Str(s.as_str().into()),
            other => PVal::Json(Box::new(other.clone())),
        })
    }
    pub fn to_value(&self) -> Value {
        match self {
            PVal::Bool(b) => Value::Bool(*b),
            PVal::Num(n) => Value::Number(n.clone()),
            PVal::Str(s) => Value::String(s.to_string()),
            PVal::Json(j) => (**j).clone(),
        }
    }
    /// The value as a channel address: strings as they are, anything else as its JSON text.
    pub fn as_address(&self) -> String {
        match self {
            PVal::Str(s) => s.to_string(),
            other => other.to_value().to_string(),
        }
    }
}

/// Longest string kept inline in [`InlineStr`].
pub const INLINE_ID: usize = 22;

/// A string stored inline when it is short (up to [`INLINE_ID`] bytes), boxed otherwise. Used
/// for customer ids and profile keys, which are compared on every lookup: inline, comparing one
/// reads the record that holds it, not a second allocation.
#[derive(Clone)]
pub struct InlineStr(IdRepr);

/// A customer id.
pub type CustomerId = InlineStr;

#[derive(Clone)]
enum IdRepr {
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    Heap(Box<str>),
}

impl InlineStr {
    pub fn new(id: &str) -> Self {
        if id.len() <= INLINE_ID {
            let mut bytes = [0u8; INLINE_ID];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            InlineStr(IdRepr::Inline {
                len: id.len() as u8,
                bytes,
            })
        } else {
            InlineStr(IdRepr::Heap(id.into()))
        }
    }

    /// Heap bytes held beyond the inline representation.
    pub fn heap_len(&self) -> usize {
        match &self.0 {
            IdRepr::Inline { .. } => 0,
            IdRepr::Heap(b) => b.len(),
        }
    }
}

impl std::ops::Deref for InlineStr {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        match &self.0 {
            IdRepr::Inline { len, bytes } => {
                let b = &bytes[..*len as usize];
                // SAFETY: `bytes[..len]` is a copy of a whole `&str` (see `new`), so valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(b) }
            }
            IdRepr::Heap(s) => s,
        }
    }
}

impl std::fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl From<&str> for InlineStr {
    fn from(s: &str) -> Self {
        InlineStr::new(s)
    }
}

/// What an instance is waiting for, and what happens when it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitKind {
    /// `wait` / `wait_until`: move to the following step.
    Advance,
    /// `wait_for`: the timeout moves to `on_timeout`.
    WaitFor,
    /// A send (deferred by quiet hours, or held because the journey is paused): run the step
    /// again from scratch.
    Rerun,
}

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Transient, while steps run.
    Running,
    /// A timer is set with key (due, seq).
    Timer {
        kind: WaitKind,
        due: DateTime<Utc>,
        seq: u64,
    },
    /// The journey is paused: held here with no timer until it is active again.
    Parked {
        kind: WaitKind,
        since: DateTime<Utc>,
    },
}

/// One journey instance in flight.
#[derive(Debug, Clone)]
pub struct Instance {
    pub journey: Arc<CompiledJourney>,
    /// Interned journey id.
    pub jid: u32,
    pub step: u16,
    pub holdout: bool,
    pub goal_reached: bool,
    /// Commands issued by this instance so far (part of the command id).
    pub sends: u32,
    pub entered_at: DateTime<Utc>,
    pub trigger_event_id: Box<str>,
    /// Trigger properties some `trigger.*` path reads (keys inline).
    pub trigger_props: Vec<(InlineStr, Value)>,
    pub wait: Wait,
}

/// Timestamps of one tracked event type (for `did`).
#[derive(Debug, Clone, Default)]
pub struct Hist {
    pub ty: u32,
    pub ever: bool,
    /// Inline up to two: most windows hold few events.
    pub times: SmallVec<[DateTime<Utc>; 2]>,
}

/// Everything the engine knows about one customer. What only some customers have (consent
/// records, journeys, history, sends) lives behind one lazily allocated box, so an idle customer
/// stays small.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: CustomerId,
    /// Exactly sized: profiles change rarely and are read often. Keys inline, so a lookup
    /// reads this one allocation.
    pub profile: Box<[(InlineStr, PVal)]>,
    /// Parsed `profile.timezone`, when valid.
    pub tz: Option<Tz>,
    /// Next slot of the dedupe ring once it is full.
    pub dedupe_pos: u8,
    /// Ids remembered so far (up to [`DEDUPE_IDS`]).
    pub dedupe_len: u8,
    /// The engine call in which this customer was last reported as changed.
    pub mark: u32,
    /// The top byte of each fingerprint in `dedupe`, same positions. Kept in the record so that
    /// checking an event id that is new (nearly always) reads no other memory: the ring is
    /// read only for the few slots whose tag matches.
    tags: [u8; DEDUPE_IDS],
    /// Ring of xxh3 fingerprints of the last [`DEDUPE_IDS`] event ids (grows to that size).
    dedupe: Box<[u64]>,
    pub rest: LazyRest,
}

/// The less common parts of a customer's state. The lists keep their first elements inline
/// (a customer is in one or two journeys, has consent records for a channel or two, ...), so
/// that handling an event for a customer in a journey reads this one allocation rather than one
/// per list.
#[derive(Debug, Clone, Default)]
pub struct Rest {
    /// (interned channel, granted) for channels with an explicit consent update.
    pub consent: SmallVec<[(u32, bool); 3]>,
    /// (interned journey id, last entry).
    pub last_entry: SmallVec<[(u32, DateTime<Utc>); 2]>,
    pub history: SmallVec<[Hist; 1]>,
    /// Sent marketing messages (time, interned channel), pruned by the longest cap window.
    pub sent: SmallVec<[(DateTime<Utc>, u32); 2]>,
    /// In handling order: priority desc, then journey id.
    pub instances: SmallVec<[Instance; 1]>,
}

static EMPTY_REST: Rest = Rest {
    consent: SmallVec::new_const(),
    last_entry: SmallVec::new_const(),
    history: SmallVec::new_const(),
    sent: SmallVec::new_const(),
    instances: SmallVec::new_const(),
};

/// The dedupe tag of a fingerprint: its top byte.
#[inline]
fn tag_of(h: u64) -> u8 {
    (h >> 56) as u8
}

/// A [`Rest`] allocated on first write; reads of an unallocated one see empty lists.
#[derive(Debug, Clone, Default)]
pub struct LazyRest(Option<Box<Rest>>);

impl LazyRest {
    pub fn is_allocated(&self) -> bool {
        self.0.is_some()
    }
}

impl std::ops::Deref for LazyRest {
    type Target = Rest;
    fn deref(&self) -> &Rest {
        self.0.as_deref().unwrap_or(&EMPTY_REST)
    }
}

impl std::ops::DerefMut for LazyRest {
    fn deref_mut(&mut self) -> &mut Rest {
        self.0.get_or_insert_with(Default::default)
    }
}

impl Customer {
    pub fn new(id: CustomerId) -> Self {
        Customer {
            id,
            profile: Box::new([]),
            tz: None,
            dedupe_pos: 0,
            dedupe_len: 0,
            mark: 0,
            tags: [0; DEDUPE_IDS],
            dedupe: Box::new([]),
            rest: LazyRest::default(),
        }
    }

    /// The remembered event-id fingerprints.
    pub fn dedupe_ids(&self) -> &[u64] {
        &self.dedupe[..self.dedupe_len as usize]
    }

    /// Whether the fingerprint is among the remembered ones.
    #[inline]
    pub fn seen(&self, h: u64) -> bool {
        let tag = tag_of(h);
        // A mask of the slots whose tag matches (written to vectorise), limited to used slots.
        let mut m: u32 = 0;
        for (i, &t) in self.tags.iter().enumerate() {
            m |= ((t == tag) as u32) << i;
        }
        let len = self.dedupe_len as u32;
        if len < 32 {
            m &= (1u32 << len) - 1;
        }
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            if self.dedupe[i] == h {
                return true;
            }
            m &= m - 1;
        }
        false
    }

    pub fn remember(&mut self, h: u64) {
        let len = self.dedupe_len as usize;
        if len < DEDUPE_IDS {
            if len == self.dedupe.len() {
                let mut grown = vec![0u64; (len * 2).clamp(4, DEDUPE_IDS)].into_boxed_slice();
                grown[..len].copy_from_slice(&self.dedupe[..len]);
                self.dedupe = grown;
            }
            self.dedupe[len] = h;
            self.tags[len] = tag_of(h);
            self.dedupe_len += 1;
        } else {
            let at = self.dedupe_pos as usize;
            self.dedupe[at] = h;
            self.tags[at] = tag_of(h);
            self.dedupe_pos = ((at + 1) % DEDUPE_IDS) as u8;
        }
    }

    /// Restores a persisted ring (`ids.len() <= DEDUPE_IDS`, `pos < DEDUPE_IDS`).
    pub fn set_dedupe(&mut self, ids: &[u64], pos: u8) {
        debug_assert!(ids.len() <= DEDUPE_IDS);
        self.dedupe = ids.into();
        self.dedupe_len = ids.len() as u8;
        self.dedupe_pos = pos;
        self.tags = [0; DEDUPE_IDS];
        for (t, &h) in self.tags.iter_mut().zip(ids) {
            *t = tag_of(h);
        }
    }

    /// Heap bytes of the dedupe ring.
    pub fn dedupe_bytes(&self) -> usize {
        self.dedupe.len() * 8
    }

    pub fn profile_get(&self, key: &str) -> Option<&PVal> {
        self.profile
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| v)
    }

    pub fn profile_set(&mut self, key: &str, v: PVal) {
        match self.profile.iter_mut().find(|(k, _)| &**k == key) {
            Some(slot) => slot.1 = v,
            None => {
                let mut p = std::mem::take(&mut self.profile).into_vec();
                p.reserve_exact(1);
                p.push((key.into(), v));
                self.profile = p.into_boxed_slice();
            }
        }
    }

    pub fn profile_remove(&mut self, key: &str) {
        if self.profile_get(key).is_some() {
            let mut p = std::mem::take(&mut self.profile).into_vec();
            p.retain(|(k, _)| &**k != key);
            self.profile = p.into_boxed_slice();
        }
    }

    pub fn instance_pos(&self, jid: u32) -> Option<usize> {
        self.rest.instances.iter().position(|i| i.jid == jid)
    }
}

// ------------------------------------------------------------------------------------------
// Persisted form
// ------------------------------------------------------------------------------------------
//
// A customer's value: profile (key, value as JSON text), consent (channel, granted), the dedupe
// ring (fingerprints, next position), last entries (journey id, time), `did` history (event
// type, ever seen, times), sends (time, channel), instances (journey id, version, step id,
// holdout, goal reached, sends, entered at, trigger event id, trigger properties as JSON text,
// wait). Names are spelled out, never interned numbers.

/// A timestamp as (seconds, nanoseconds) since the epoch.
pub type PTime = (i64, u32);

pub fn ptime(t: DateTime<Utc>) -> PTime {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

pub fn from_ptime(t: PTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0, t.1)
}

#[cfg(test)]
#[derive(Debug, Serialize, Deserialize)]
pub enum PWait {
    Timer {
        kind: WaitKind,
        due: PTime,
        seq: u64,
    },
    Parked {
        kind: WaitKind,
        since: PTime,
    },
}

#[cfg(test)]
#[derive(Debug, Serialize, Deserialize)]
pub struct PInstance {
    pub journey_id: String,
    pub version: u32,
    pub step_id: String,
    pub holdout: bool,
    pub goal_reached: bool,
    pub sends: u32,
    pub entered_at: PTime,
    pub trigger_event_id: String,
    /// Values as JSON text (postcard cannot carry self-describing values).
    pub trigger_props: Vec<(String, String)>,
    pub wait: PWait,
}

#[cfg(test)]
#[derive(Debug, Serialize, Deserialize)]
pub struct Persisted {
    /// Values as JSON text.
    pub profile: Vec<(String, String)>,
    pub consent: Vec<(String, bool)>,
    pub dedupe: Vec<u64>,
    pub dedupe_pos: u8,
    pub last_entry: Vec<(String, PTime)>,
    /// (event type, ever seen, timestamps).
    pub history: Vec<(String, bool, Vec<PTime>)>,
    pub sent: Vec<(PTime, String)>,
    pub instances: Vec<PInstance>,
}

#[cfg(test)]
pub fn encode(p: &Persisted) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend(postcard::to_stdvec(p).expect("in-memory state always encodes"));
    out
}

#[cfg(test)]
pub fn decode(bytes: &[u8]) -> Result<Persisted, String> {
    match bytes.split_first() {
        None => Err("empty value".into()),
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((v, _)) => Err(format!("unknown state format {v} (expected {FORMAT})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_ring_remembers_the_last_ids_and_tag_collisions_are_told_apart() {
        let mut c = Customer::new(CustomerId::new("c"));
        // Same top byte (tag), different fingerprints.
        let same_tag = |i: u64| (0xab << 56) | i;
        assert!(!c.seen(same_tag(1)));
        c.remember(same_tag(1));
        assert!(c.seen(same_tag(1)));
        assert!(!c.seen(same_tag(2)));
        for i in 2..=40 {
            c.remember(same_tag(i));
        }
        // 40 remembered, the ring keeps the last 32: 9..=40.
        assert!((1..=8).all(|i| !c.seen(same_tag(i))));
        assert!((9..=40).all(|i| c.seen(same_tag(i))));
        assert!(!c.seen(0));
        // A restored ring answers alike.
        let mut d = Customer::new(CustomerId::new("d"));
        d.set_dedupe(c.dedupe_ids(), c.dedupe_pos);
        assert!((9..=40).all(|i| d.seen(same_tag(i))));
        d.remember(7);
        assert!(d.seen(7) && !d.seen(same_tag(9)) && d.seen(same_tag(10)));
    }

    #[test]
    fn short_ids_inline_long_ids_boxed() {
        let short = CustomerId::new("c-42");
        assert_eq!(&*short, "c-42");
        assert_eq!(short.heap_len(), 0);
        let edge = "x".repeat(INLINE_ID);
        assert_eq!(&*CustomerId::new(&edge), edge);
        let long = "é".repeat(20);
        let id = CustomerId::new(&long);
        assert_eq!(&*id, long);
        assert_eq!(id.heap_len(), long.len());
        assert_eq!(&*CustomerId::new(""), "");
    }
}
