//! Sending: the first channel of a send step that is reachable, consented and under its
//! frequency caps, quiet hours (defer), holdouts, the command and its `sent` decision, and the
//! send data resolved from the trigger and the profile. The consent default and the cap
//! window are here once, for the inspection view too.

use super::rules::Ctx;
use super::Bound;
use crate::catalog::{CapC as Cap, CatalogInner, ChannelC as Channel, CompiledJourney};
use crate::hash;
use crate::localtime::{in_window, next_local};
use crate::state::*;
use crate::{DecisionKind, Reason, SendCommand};
use chrono::{DateTime, Utc};
use journey_spec::{Action, IfNoChannel, PathRoot, Status};
use serde_json::Value;

pub(super) enum SendOutcome {
    Next,
    Park,
    Ended,
}

/// Whether the customer may be sent to on the channel (interned id `cid`): the last consent
/// update for it, or else the channel's default (opt-in channels need a grant).
#[inline]
pub(super) fn consent_granted(cust: &Customer, cid: u32, ch: &Channel) -> bool {
    cust.rest
        .consent
        .iter()
        .find(|c| c.0 == cid)
        .map_or(!ch.opt_in, |c| c.1)
}

/// Messages sent to the customer that count against `cap` at `now`: within its window
/// (`per`) and on a channel it covers (`cover`, interned; `None` for all channels).
#[inline]
pub(super) fn cap_used(
    cust: &Customer,
    cap: &Cap,
    cover: Option<&Vec<u32>>,
    now: DateTime<Utc>,
) -> usize {
    let from = now - cap.per.as_chrono();
    cust.rest
        .sent
        .iter()
        .filter(|(t, c)| *t > from && cover.is_none_or(|l| l.contains(c)))
        .count()
}

/// The cap that a send on channel `cid` would exceed, if any.
fn full_cap<'c>(b: &'c Bound, cust: &Customer, cid: u32, now: DateTime<Utc>) -> Option<&'c Cap> {
    b.cat.caps.iter().enumerate().find_map(|(k, cap)| {
        let cover = b.caps_cover[k].as_ref();
        let covers = cover.is_none_or(|l| l.contains(&cid));
        (covers && cap_used(cust, cap, cover, now) >= cap.max as usize).then_some(cap)
    })
}

impl Ctx<'_> {
    pub(super) fn send(
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
            let d = self.step_decision(cust, pos, DecisionKind::Holdout, true);
            self.out.decisions.push(d);
            return SendOutcome::Next;
        }
        let marketing = CatalogInner::is_marketing(j);
        let mut chosen: Option<(usize, String)> = None;
        for name in &send.channels {
            let skip = |this: &mut Self, cust: &Customer, reason: Reason| {
                let mut d = this.step_decision(cust, pos, DecisionKind::SkippedChannel, true);
                d.channel = Some(this.s(name));
                d.reason = Some(reason);
                this.out.decisions.push(d);
            };
            let Some(ci) = cat.channels.iter().position(|c| c.name == *name) else {
                skip(self, cust, Reason::Unreachable);
                continue;
            };
            let ch = &cat.channels[ci];
            let cid = b.chan_ids[ci];
            let Some(addr) = cust.profile_get(&ch.address) else {
                skip(self, cust, Reason::Unreachable);
                continue;
            };
            if !consent_granted(cust, cid, ch) {
                skip(self, cust, Reason::NoConsent);
                continue;
            }
            if marketing {
                if let Some(cap) = full_cap(b, cust, cid, self.now) {
                    let reason = Reason::FrequencyCap(self.s(&cap.reason));
                    skip(self, cust, reason);
                    continue;
                }
            }
            chosen = Some((ci, addr.as_address()));
            break;
        }
        let Some((ci, address)) = chosen else {
            let d = self.step_decision(cust, pos, DecisionKind::NoChannel, true);
            self.out.decisions.push(d);
            if send.if_no_channel == IfNoChannel::Exit {
                let mut d = self.step_decision(cust, pos, DecisionKind::Exited, true);
                d.reason = Some(Reason::NoChannel);
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
            let mut d = self.step_decision(cust, pos, DecisionKind::Deferred, true);
            d.channel = Some(self.s(&ch.name));
            d.reason = Some(Reason::QuietHours);
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
        let mut d = self.step_decision(cust, pos, DecisionKind::Sent, true);
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
}

/// A `{ path }` of send data, resolved at send time (`None`: leave the key out).
fn data_value(p: &journey_spec::Path, cust: &Customer, inst: &Instance) -> Option<Value> {
    let segs = &p.segments;
    let walk = |mut v: &Value, rest: &[String]| -> Option<Value> {
        for s in rest {
            v = crate::condition::get(v.as_object()?, s)?;
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
