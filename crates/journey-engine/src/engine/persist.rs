//! Persistence: a customer's state as its changelog value ([`crate::state`] describes the
//! format) and back, with the timers of a restored customer rebuilt.
//!
//! Both directions work on the wire format directly ([`super::wire`]): an export writes the
//! customer record's fields as they are, an import reads strings borrowed from the value and
//! builds the record, so that a restore of millions of customers allocates what the records
//! hold and little else. Profile values and trigger properties are JSON text on the wire; the
//! common ones (strings that need no escaping, booleans, unsigned integers) are written and read
//! without going through `serde_json`, producing the same text it would.
//!
//! Longer than 600 lines because its tests stay beside the reader and writer they pin down: a
//! value written by the first version of the format (`testdata/state-format-1.hex`) must keep
//! loading, and both directions are cross-checked against postcard itself.

use super::rules::insert_sorted;
use super::wire::{Reader, Writer};
use super::Engine;
use crate::state::*;
use crate::StateError;
use serde_json::{Number, Value};
use smallvec::SmallVec;

/// Whether `s` is a JSON string's content as `serde_json` writes it unescaped: no quote, no
/// backslash, no control character.
#[inline]
fn plain(s: &[u8]) -> bool {
    s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// Writes `s` as the wire string holding its JSON text.
fn write_json_str(w: &mut Writer, s: &str, scratch: &mut Vec<u8>) {
    if plain(s.as_bytes()) {
        w.len(s.len() + 2);
        w.out.push(b'"');
        w.out.extend_from_slice(s.as_bytes());
        w.out.push(b'"');
    } else {
        write_json(w, &s, scratch);
    }
}

/// Writes the wire string holding `v`'s JSON text, through `serde_json`.
fn write_json(w: &mut Writer, v: &impl serde::Serialize, scratch: &mut Vec<u8>) {
    scratch.clear();
    serde_json::to_writer(&mut *scratch, v).expect("a JSON value written to memory");
    w.bytes(scratch);
}

fn write_pval(w: &mut Writer, v: &PVal, scratch: &mut Vec<u8>) {
    match v {
        PVal::Str(s) => write_json_str(w, s, scratch),
        PVal::Bool(b) => w.str(if *b { "true" } else { "false" }),
        PVal::Num(n) => write_json(w, n, scratch),
        PVal::Json(j) => write_json(w, &**j, scratch),
    }
}

fn write_value(w: &mut Writer, v: &Value, scratch: &mut Vec<u8>) {
    match v {
        Value::String(s) => write_json_str(w, s, scratch),
        other => write_json(w, other, scratch),
    }
}

/// The content of JSON text that is a string needing no unescaping.
#[inline]
fn json_plain_str(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' && plain(&b[1..b.len() - 1]) {
        Some(&text[1..text.len() - 1])
    } else {
        None
    }
}

/// JSON text that is an unsigned integer as `serde_json` writes one (no sign, no leading zero).
#[inline]
fn json_u64(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let digits = !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    if digits && (b[0] != b'0' || b.len() == 1) {
        text.parse().ok()
    } else {
        None
    }
}

fn json_error(e: serde_json::Error) -> StateError {
    StateError(e.to_string())
}

/// A profile value from its JSON text; `None` for `null`.
fn read_pval(text: &str) -> Result<Option<PVal>, StateError> {
    if let Some(s) = json_plain_str(text) {
        return Ok(Some(PVal::Str(s.into())));
    }
    match text {
        "true" => return Ok(Some(PVal::Bool(true))),
        "false" => return Ok(Some(PVal::Bool(false))),
        _ => {}
    }
    if let Some(n) = json_u64(text) {
        return Ok(Some(PVal::Num(Number::from(n))));
    }
    Ok(match serde_json::from_str(text).map_err(json_error)? {
        Value::Null => None,
        Value::Bool(b) => Some(PVal::Bool(b)),
        Value::Number(n) => Some(PVal::Num(n)),
        Value::String(s) => Some(PVal::Str(s.into_boxed_str())),
        other => Some(PVal::Json(Box::new(other))),
    })
}

/// A JSON value from its text.
fn read_value(text: &str) -> Result<Value, StateError> {
    if let Some(s) = json_plain_str(text) {
        return Ok(Value::String(s.to_owned()));
    }
    if let Some(n) = json_u64(text) {
        return Ok(Value::Number(Number::from(n)));
    }
    serde_json::from_str(text).map_err(json_error)
}

fn bad(what: &str) -> StateError {
    StateError(format!("bad {what}"))
}

fn time(r: &mut Reader) -> Result<chrono::DateTime<chrono::Utc>, StateError> {
    from_ptime(r.time()?).ok_or_else(|| bad("timestamp"))
}

/// Wire index of a `WaitKind` (its variant order).
fn kind_index(k: WaitKind) -> u64 {
    match k {
        WaitKind::Advance => 0,
        WaitKind::WaitFor => 1,
        WaitKind::Rerun => 2,
    }
}

fn read_kind(r: &mut Reader) -> Result<WaitKind, StateError> {
    match r.u32()? {
        0 => Ok(WaitKind::Advance),
        1 => Ok(WaitKind::WaitFor),
        2 => Ok(WaitKind::Rerun),
        _ => Err(bad("wait kind")),
    }
}

impl Engine {
    /// The customer's persisted state (changelog value); `None` when the customer has no state
    /// (a tombstone).
    pub fn export_customer(&self, customer_id: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        self.export_customer_into(customer_id, &mut out)
            .then_some(out)
    }

    /// Appends the customer's persisted state (as [`Engine::export_customer`] returns it) to
    /// `out`; false (and nothing appended) when the customer has no state.
    pub fn export_customer_into(&self, customer_id: &str, out: &mut Vec<u8>) -> bool {
        let Some(c) = self.customer(customer_id) else {
            return false;
        };
        let i = &self.interner;
        let mut scratch = Vec::new();
        let mut w = Writer { out };
        w.byte(FORMAT);
        w.len(c.profile.len());
        for (k, v) in c.profile.iter() {
            w.str(k);
            write_pval(&mut w, v, &mut scratch);
        }
        let rest = &c.rest;
        w.len(rest.consent.len());
        for (ch, granted) in &rest.consent {
            w.str(i.name(*ch));
            w.bool(*granted);
        }
        let dedupe = c.dedupe_ids();
        w.len(dedupe.len());
        for h in dedupe {
            w.u64(*h);
        }
        w.byte(c.dedupe_pos);
        w.len(rest.last_entry.len());
        for (j, t) in &rest.last_entry {
            w.str(i.name(*j));
            w.time(ptime(*t));
        }
        w.len(rest.history.len());
        for h in &rest.history {
            w.str(i.name(h.ty));
            w.bool(h.ever);
            w.len(h.times.len());
            for t in &h.times {
                w.time(ptime(*t));
            }
        }
        w.len(rest.sent.len());
        for (t, ch) in &rest.sent {
            w.time(ptime(*t));
            w.str(i.name(*ch));
        }
        w.len(rest.instances.len());
        for inst in &rest.instances {
            let j = &inst.journey.journey;
            w.str(&j.id);
            w.u64(u64::from(j.version));
            w.str(&j.steps[inst.step as usize].id);
            w.bool(inst.holdout);
            w.bool(inst.goal_reached);
            w.u64(u64::from(inst.sends));
            w.time(ptime(inst.entered_at));
            w.str(&inst.trigger_event_id);
            w.len(inst.trigger_props.len());
            for (k, v) in &inst.trigger_props {
                w.str(k);
                write_value(&mut w, v, &mut scratch);
            }
            match inst.wait {
                Wait::Timer { kind, due, seq } => {
                    w.u64(0);
                    w.u64(kind_index(kind));
                    w.time(ptime(due));
                    w.u64(seq);
                }
                Wait::Parked { kind, since } => {
                    w.u64(1);
                    w.u64(kind_index(kind));
                    w.time(ptime(since));
                }
                // Steps never stay running between calls; persist as a rerun now.
                Wait::Running => {
                    w.u64(1);
                    w.u64(kind_index(WaitKind::Rerun));
                    w.time(ptime(self.clock));
                }
            }
        }
        true
    }

    /// Restores a customer from its changelog value (replacing the state held, if any) and
    /// rebuilds its timers. On error nothing changes.
    pub fn import_customer(&mut self, customer_id: &str, bytes: &[u8]) -> Result<(), StateError> {
        let mut c = self.decode_customer(customer_id, bytes)?;
        let (slot, replaced) = self.take_slot(customer_id);
        if let Some(old) = replaced {
            for inst in &old.rest.instances {
                self.timers.cancel(&inst.wait);
                self.active.leave(inst.jid);
            }
        }
        if !c.rest.instances.is_empty() {
            for inst in c.rest.instances.iter_mut() {
                self.active.enter(inst.jid);
                match inst.wait {
                    Wait::Timer { due, seq, .. } => self.timers.insert((due, seq, slot, inst.jid)),
                    Wait::Parked { .. } => {
                        self.timers
                            .resume_parked(&self.bound.cat, self.clock, slot, inst)
                    }
                    Wait::Running => {}
                }
            }
        }
        self.slots[slot as usize] = Some(c);
        self.settle(false);
        Ok(())
    }

    /// A customer record from its changelog value; instances of journeys this engine cannot
    /// run are dropped (docs in [`super`]).
    fn decode_customer(&mut self, customer_id: &str, bytes: &[u8]) -> Result<Customer, StateError> {
        let mut r = match bytes.split_first() {
            None => return Err(StateError("empty value".into())),
            Some((&FORMAT, rest)) => Reader::new(rest),
            Some((v, _)) => {
                return Err(StateError(format!(
                    "unknown state format {v} (expected {FORMAT})"
                )))
            }
        };
        let mut c = Customer::new(customer_id.into());

        let n = r.len()?;
        let mut profile: Vec<(InlineStr, PVal)> = Vec::with_capacity(n);
        for _ in 0..n {
            let k = r.str()?;
            let v = read_pval(r.str()?)?;
            let Some(v) = v else { continue };
            if k == "timezone" {
                c.tz = match &v {
                    PVal::Str(s) => s.parse().ok(),
                    _ => None,
                };
            }
            match profile.iter_mut().find(|(key, _)| &**key == k) {
                Some(slot) => slot.1 = v,
                None => profile.push((k.into(), v)),
            }
        }
        c.profile = profile.into_boxed_slice();

        let n = r.len()?;
        if n > 0 {
            let consent = &mut c.rest.consent;
            consent.reserve_exact(n);
            for _ in 0..n {
                let ch = self.interner.intern(r.str()?);
                consent.push((ch, r.bool()?));
            }
        }

        let n = r.len()?;
        if n > DEDUPE_IDS {
            return Err(bad("dedupe ring"));
        }
        let mut ids = [0u64; DEDUPE_IDS];
        for id in &mut ids[..n] {
            *id = r.u64()?;
        }
        let pos = r.byte()?;
        if pos as usize >= DEDUPE_IDS.max(1) {
            return Err(bad("dedupe ring"));
        }
        c.set_dedupe(&ids[..n], pos);

        let n = r.len()?;
        for _ in 0..n {
            let j = self.interner.intern(r.str()?);
            let t = time(&mut r)?;
            c.rest.last_entry.push((j, t));
        }

        let n = r.len()?;
        for _ in 0..n {
            let ty = self.interner.intern(r.str()?);
            let ever = r.bool()?;
            let m = r.len()?;
            let mut times = SmallVec::with_capacity(m);
            for _ in 0..m {
                times.push(time(&mut r)?);
            }
            c.rest.history.push(Hist { ty, ever, times });
        }

        let n = r.len()?;
        for _ in 0..n {
            let t = time(&mut r)?;
            let ch = self.interner.intern(r.str()?);
            c.rest.sent.push((t, ch));
        }

        let n = r.len()?;
        for _ in 0..n {
            let journey_id = r.str()?;
            let version = r.u32()?;
            let step_id = r.str()?;
            let holdout = r.bool()?;
            let goal_reached = r.bool()?;
            let sends = r.u32()?;
            let entered_at = time(&mut r)?;
            let trigger_event_id = r.str()?;
            let m = r.len()?;
            let mut trigger_props = Vec::with_capacity(m);
            for _ in 0..m {
                let k = r.str()?;
                trigger_props.push((InlineStr::from(k), read_value(r.str()?)?));
            }
            let wait = match r.u32()? {
                0 => Wait::Timer {
                    kind: read_kind(&mut r)?,
                    due: time(&mut r)?,
                    seq: r.u64()?,
                },
                1 => Wait::Parked {
                    kind: read_kind(&mut r)?,
                    since: time(&mut r)?,
                },
                _ => return Err(bad("wait")),
            };
            let Some((journey, step)) = self.journey_for(journey_id, version, step_id) else {
                continue;
            };
            let jid = self.interner.intern(journey_id);
            if c.instance_pos(jid).is_some() {
                continue;
            }
            let inst = Instance {
                journey,
                jid,
                step,
                holdout,
                goal_reached,
                sends,
                entered_at,
                trigger_event_id: trigger_event_id.into(),
                trigger_props,
                wait,
            };
            insert_sorted(&mut c, inst);
        }
        Ok(c)
    }

    /// The compiled journey an imported instance continues on, and its step: the version it
    /// entered when this engine has loaded it, else the current version of its journey id when
    /// that has the step; `None` otherwise.
    fn journey_for(
        &self,
        journey_id: &str,
        version: u32,
        step_id: &str,
    ) -> Option<(std::sync::Arc<crate::catalog::CompiledJourney>, u16)> {
        let cat = &self.bound.cat;
        let current = cat
            .by_id
            .get(journey_id)
            .map(|&i| &cat.journeys[i as usize]);
        // The current version is also the one `known` holds under its (id, version).
        let entered = match current {
            Some(j) if j.journey.version == version => Some(j),
            _ => self.known.get(&(journey_id.to_owned(), version)),
        };
        [entered, current]
            .into_iter()
            .flatten()
            .find_map(|j| Some((j.clone(), *j.step_ids.get(step_id)?)))
    }
}

#[cfg(test)]
mod tests {
    use crate::state::*;
    use crate::testkit::*;
    use crate::{Catalog, Engine};
    use journey_spec::{DataValue, Journey, Status};
    use serde_json::json;
    use std::sync::Arc;

    /// Journeys that give a customer every part of a state: a wait with trigger properties
    /// kept, a `did` history, a send (caps), and one that gets paused (a parked instance).
    fn journeys(paused: Status) -> Vec<Journey> {
        let mut cart = journey(
            "cart",
            "cart_updated",
            vec![wait("w", "1h"), send("remind", &["email"], "cart")],
        );
        if let journey_spec::Action::Send(s) = &mut cart.steps[1].action {
            s.data.insert(
                "value".into(),
                DataValue::Path(path("trigger.properties.cart_value")),
            );
            s.data.insert(
                "note".into(),
                DataValue::Path(path("trigger.properties.note")),
            );
        }
        cart.entry.unless = Some(did("order_completed", Some("7d")));
        let buy = journey("buy", "bought", vec![send("thanks", &["email"], "thanks")]);
        let mut p = journey("p", "go", vec![wait("w", "1h"), send("s", &["email"], "t")]);
        p.status = paused;
        vec![cart, buy, p]
    }

    /// A customer with a profile of every value kind, consent, a full dedupe ring, history,
    /// sends, an instance waiting on a timer and one parked by a pause.
    fn rich() -> Sim {
        let cfg = config();
        let mut s = Sim::new(journeys(Status::Active));
        s.event(
            "c",
            "profile_updated",
            "2026-01-01T00:00:00Z",
            json!({"email": "ada@example.com", "timezone": "Europe/London", "age": 42,
                   "score": -3.5, "vip": true, "prefs": {"a": [1, "x"]}, "quote": "say \"hi\"\n",
                   "name": "Zoë", "big": 18446744073709551615u64, "neg": -7}),
        );
        s.event(
            "c",
            "consent_updated",
            "2026-01-01T00:00:00Z",
            json!({"channel": "sms", "status": "granted"}),
        );
        for i in 0..37 {
            s.event(
                "c",
                "page_viewed",
                &format!("2026-01-01T00:{i:02}:00Z"),
                json!({}),
            );
        }
        s.event("c", "order_completed", "2026-01-01T01:00:00Z", json!({}));
        s.event("c", "bought", "2026-01-01T01:00:00Z", json!({}));
        s.event("c", "go", "2026-01-01T02:00:00Z", json!({}));
        s.engine
            .set_catalog(Arc::new(Catalog::new(&cfg, journeys(Status::Paused))));
        s.until("2026-01-01T03:30:00Z");
        s.event(
            "c",
            "cart_updated",
            "2026-01-09T10:00:00Z",
            json!({"cart_value": 30.25, "note": "a\tb", "ignored": 1}),
        );
        s
    }

    fn hex(text: &str) -> Vec<u8> {
        let text = text.trim();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A value written by the first version of the format (`testdata/state-format-1.hex`, the
    /// state of [`rich`] as that version exported it, with `p` paused).
    fn format_1() -> Vec<u8> {
        hex(include_str!("testdata/state-format-1.hex"))
    }

    fn engine(status: Status) -> Engine {
        Engine::new(Arc::new(Catalog::new(&config(), journeys(status))))
    }

    #[test]
    fn a_state_written_by_format_1_still_loads_and_exports_the_same_bytes() {
        let bytes = format_1();
        let mut e = engine(Status::Paused);
        e.import_customer("c", &bytes).unwrap();
        assert_eq!(e.export_customer("c").unwrap(), bytes);
        let now = t("2026-01-09T10:00:00Z");
        assert_eq!(e.inspect("c", now), rich().engine.inspect("c", now));
        assert_eq!(
            e.inspect("c", now).unwrap(),
            json!({"customer_id":"c","journeys":[
                {"journey_id":"cart","journey_version":1,"step_id":"w",
                 "entered_at":"2026-01-09T10:00:00Z","trigger_event_id":"e43","holdout":false,
                 "state":"waiting","due":"2026-01-09T11:00:00Z"},
                {"journey_id":"p","journey_version":1,"step_id":"w",
                 "entered_at":"2026-01-01T02:00:00Z","trigger_event_id":"e42","holdout":false,
                 "state":"parked","due":"2026-01-01T03:00:00Z"}],
             "pending_timers":1,
             "caps":[{"name":"email_weekly","used":0,"max":3},{"name":"sms_daily","used":0,"max":1},
                     {"name":"all_weekly","used":0,"max":5}],
             "consent":{"email":"granted","sms":"granted","push":"granted"},
             "profile_keys":["age","big","email","name","neg","prefs","quote","score","timezone","vip"],
             "timezone":"Europe/London"})
        );
        // Postcard itself reads it as the format's description says.
        let p = decode(&bytes).unwrap();
        let profile: Vec<(&str, &str)> = p
            .profile
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            profile,
            [
                ("email", "\"ada@example.com\""),
                ("timezone", "\"Europe/London\""),
                ("age", "42"),
                ("score", "-3.5"),
                ("vip", "true"),
                ("prefs", "{\"a\":[1,\"x\"]}"),
                ("quote", "\"say \\\"hi\\\"\\n\""),
                ("name", "\"Zoë\""),
                ("big", "18446744073709551615"),
                ("neg", "-7"),
            ]
        );
        assert_eq!(p.dedupe.len(), DEDUPE_IDS);
        assert_eq!(p.instances.len(), 2);
        assert_eq!(
            p.instances[0].trigger_props,
            [
                ("cart_value".to_owned(), "30.25".to_owned()),
                ("note".to_owned(), "\"a\\tb\"".to_owned())
            ]
        );
        // With `p` active again, the parked instance gets its resume timer on import.
        let mut active = engine(Status::Active);
        active.import_customer("c", &bytes).unwrap();
        assert_eq!(active.pending_timers(), 2);
    }

    #[test]
    fn the_writer_writes_what_postcard_writes() {
        let s = rich();
        let bytes = s.engine.export_customer("c").unwrap();
        assert_eq!(bytes, format_1());
        // Every customer state the engine tests produce: postcard decodes the writer's bytes
        // and encodes them back to the same bytes.
        let mut small = Sim::new(journeys(Status::Active));
        small.event("d", "page_viewed", "2026-01-01T00:00:00Z", json!({}));
        small.event(
            "e",
            "profile_updated",
            "2026-01-01T00:00:00Z",
            json!({"x": "", "y": "\u{1}\u{7f}é\\", "z": 0, "f": 1e300, "g": -0.0, "h": [null],
                   "i": {"k": "v"}, "j": false}),
        );
        for (sim, id) in [(&s, "c"), (&small, "d"), (&small, "e")] {
            let bytes = sim.engine.export_customer(id).unwrap();
            assert_eq!(encode(&decode(&bytes).unwrap()), bytes, "{id}");
            // (`p` paused as in `rich`: an active one would give the parked instance a timer.)
            let mut e = engine(Status::Paused);
            e.import_customer(id, &bytes).unwrap();
            assert_eq!(e.export_customer(id).unwrap(), bytes, "{id}");
        }
    }

    #[test]
    fn values_as_postcard_writes_them_load_whatever_their_json_text() {
        // Profile and trigger texts that are valid JSON but not as serde_json writes them load
        // as their value (and are exported in serde_json's form).
        let p = Persisted {
            profile: vec![
                ("a".into(), " 1 ".into()),
                ("b".into(), "\"\\u0041\"".into()),
                ("c".into(), "1.0e2".into()),
                ("d".into(), "null".into()),
                ("timezone".into(), "\"Europe/Paris\"".into()),
                ("a".into(), "\"again\"".into()),
                ("e".into(), "007".into()),
            ],
            consent: vec![],
            dedupe: vec![],
            dedupe_pos: 0,
            last_entry: vec![],
            history: vec![],
            sent: vec![],
            instances: vec![],
        };
        let mut e = engine(Status::Active);
        // "007" is not JSON.
        assert!(e.import_customer("x", &encode(&p)).is_err());
        assert_eq!(e.customer_count(), 0);
        let mut p = p;
        p.profile.pop();
        e.import_customer("x", &encode(&p)).unwrap();
        let back = decode(&e.export_customer("x").unwrap()).unwrap();
        assert_eq!(
            back.profile,
            [
                ("a".to_owned(), "\"again\"".to_owned()),
                ("b".to_owned(), "\"A\"".to_owned()),
                ("c".to_owned(), "100.0".to_owned()),
                ("timezone".to_owned(), "\"Europe/Paris\"".to_owned()),
            ]
        );
        assert_eq!(
            e.inspect("x", t("2026-01-01T00:00:00Z")).unwrap()["timezone"],
            "Europe/Paris"
        );
    }

    #[test]
    fn a_bad_value_changes_nothing() {
        let bytes = format_1();
        let mut e = engine(Status::Paused);
        let mut other = Sim::new(journeys(Status::Paused));
        other.event("c", "page_viewed", "2026-01-01T00:00:00Z", json!({}));
        let before = other.engine.export_customer("c").unwrap();
        e.import_customer("c", &before).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                e.import_customer("c", &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
            assert!(
                e.import_customer("new", &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(e.export_customer("c").unwrap(), before);
        assert_eq!(e.customer_count(), 1);
        assert_eq!(e.pending_timers(), 0);
        // A varint longer than its type, a bool that is not 0 or 1, another format byte.
        let mut long = vec![
            FORMAT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
        ];
        long.extend([0; 8]);
        assert!(e.import_customer("c", &long).is_err());
        let p = decode(&bytes).unwrap();
        let consent_bool = encode(&Persisted {
            profile: vec![],
            consent: vec![("sms".into(), true)],
            ..p
        });
        // Format byte, no profile, one consent record: "sms", then its bool at 7.
        let at = 7;
        assert_eq!(
            consent_bool[..at + 1],
            [FORMAT, 0, 1, 3, b's', b'm', b's', 1]
        );
        let mut bad_bool = consent_bool.clone();
        bad_bool[at] = 2;
        assert!(e.import_customer("c", &bad_bool).is_err());
        assert!(e.import_customer("c", &consent_bool).is_ok());
        let mut other_format = bytes.clone();
        other_format[0] = FORMAT + 1;
        assert!(e.import_customer("c", &other_format).is_err());
    }
}
