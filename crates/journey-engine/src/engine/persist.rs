//! Persistence: a customer's state as its changelog value ([`crate::state`] describes the
//! format) and back, with the timers of a restored customer rebuilt.

use super::rules::insert_sorted;
use super::Engine;
use crate::state::*;
use crate::StateError;
use serde_json::Value;

impl Engine {
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
                Wait::Timer { due, seq, .. } => self.timers.insert((due, seq, slot, inst.jid)),
                Wait::Parked { .. } => {
                    self.timers
                        .resume_parked(&self.bound.cat, self.clock, slot, inst)
                }
                Wait::Running => {}
            }
        }
        self.slots[slot as usize] = Some(c);
        Ok(())
    }
}
