//! Per-customer state and its persisted (changelog) form.
//!
//! In memory, names that repeat across customers (channels, journey ids, event types) are
//! interned to `u32` by the engine; the persisted form spells them out so a state survives any
//! change of configuration or journeys. Persisted bytes: one format byte ([`FORMAT`]) followed by
//! a postcard encoding of [`Persisted`].

use crate::catalog::CompiledJourney;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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
    /// Trigger properties some `trigger.*` path reads.
    pub trigger_props: Vec<(Box<str>, Value)>,
    pub wait: Wait,
}

/// Timestamps of one tracked event type (for `did`).
#[derive(Debug, Clone, Default)]
pub struct Hist {
    pub ty: u32,
    pub ever: bool,
    pub times: Vec<DateTime<Utc>>,
}

/// Everything the engine knows about one customer. What only some customers have (consent
/// records, journeys, history, sends) lives behind one lazily allocated box, so an idle customer
/// stays small.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: Box<str>,
    /// Exactly sized: profiles change rarely and are read often.
    pub profile: Box<[(Box<str>, PVal)]>,
    /// Parsed `profile.timezone`, when valid.
    pub tz: Option<Tz>,
    /// Next slot of the dedupe ring once it is full.
    pub dedupe_pos: u8,
    /// Ids remembered so far (up to [`DEDUPE_IDS`]).
    pub dedupe_len: u8,
    /// The engine call in which this customer was last reported as changed.
    pub mark: u32,
    /// Ring of xxh3 fingerprints of the last [`DEDUPE_IDS`] event ids (grows to that size).
    pub dedupe: Box<[u64]>,
    pub rest: LazyRest,
}

/// The less common parts of a customer's state.
#[derive(Debug, Clone, Default)]
pub struct Rest {
    /// (interned channel, granted) for channels with an explicit consent update.
    pub consent: Vec<(u32, bool)>,
    /// (interned journey id, last entry).
    pub last_entry: Vec<(u32, DateTime<Utc>)>,
    pub history: Vec<Hist>,
    /// Sent marketing messages (time, interned channel), pruned by the longest cap window.
    pub sent: Vec<(DateTime<Utc>, u32)>,
    /// In handling order: priority desc, then journey id.
    pub instances: Vec<Instance>,
}

static EMPTY_REST: Rest = Rest {
    consent: Vec::new(),
    last_entry: Vec::new(),
    history: Vec::new(),
    sent: Vec::new(),
    instances: Vec::new(),
};

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
    pub fn new(id: Box<str>) -> Self {
        Customer {
            id,
            profile: Box::new([]),
            tz: None,
            dedupe_pos: 0,
            dedupe_len: 0,
            mark: 0,
            dedupe: Box::new([]),
            rest: LazyRest::default(),
        }
    }

    /// The remembered event-id fingerprints.
    pub fn dedupe_ids(&self) -> &[u64] {
        &self.dedupe[..self.dedupe_len as usize]
    }

    pub fn seen(&self, h: u64) -> bool {
        self.dedupe_ids().contains(&h)
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
            self.dedupe_len += 1;
        } else {
            self.dedupe[self.dedupe_pos as usize] = h;
            self.dedupe_pos = ((self.dedupe_pos as usize + 1) % DEDUPE_IDS) as u8;
        }
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

/// A timestamp as (seconds, nanoseconds) since the epoch.
pub type PTime = (i64, u32);

pub fn ptime(t: DateTime<Utc>) -> PTime {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

pub fn from_ptime(t: PTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0, t.1)
}

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

pub fn encode(p: &Persisted) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend(postcard::to_stdvec(p).expect("in-memory state always encodes"));
    out
}

pub fn decode(bytes: &[u8]) -> Result<Persisted, String> {
    match bytes.split_first() {
        None => Err("empty value".into()),
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((v, _)) => Err(format!("unknown state format {v} (expected {FORMAT})")),
    }
}
