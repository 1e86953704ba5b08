//! The engine under a virtual clock: the machinery `simulate`, `test` and `report` share.
//!
//! The clock is the events' timestamps: before each event every timer due at or before its
//! timestamp fires, one due instant at a time, with the engine clock set to that instant (so a
//! reminder due at 11:15 is issued at 11:15, not at the time of the next event). The clock never
//! goes back: an event older than the clock is handled at the current clock.

use anyhow::bail;
use chrono::{DateTime, Utc};
use journey_engine::{Effects, Engine, Event};

/// The engine and its virtual clock. Each call hands the effects it produced to `sink`, one
/// engine call at a time (an event, or the timers due at one instant).
pub(crate) struct VirtualClock {
    pub engine: Engine,
    /// The engine clock; `None` before the first event.
    clock: Option<DateTime<Utc>>,
    effects: Effects,
}

impl VirtualClock {
    pub fn new(engine: Engine) -> Self {
        VirtualClock {
            engine,
            clock: None,
            effects: Effects::default(),
        }
    }

    /// Fires the timers due up to the event's timestamp, then handles the event at
    /// `max(clock, timestamp)`.
    pub fn handle(
        &mut self,
        event: &Event,
        sink: &mut impl FnMut(&Effects) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.advance_to(event.timestamp, sink)?;
        let now = self
            .clock
            .map_or(event.timestamp, |clock| clock.max(event.timestamp));
        self.clock = Some(now);
        self.effects.clear();
        self.engine.handle(event, now, &mut self.effects);
        sink(&self.effects)
    }

    /// Fires every timer due at or before `target`, one due instant at a time in due order,
    /// with the clock at that instant (never earlier than the current clock).
    pub fn advance_to(
        &mut self,
        target: DateTime<Utc>,
        sink: &mut impl FnMut(&Effects) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        while let Some(due) = self.engine.next_due() {
            if due > target {
                break;
            }
            let now = self.clock.map_or(due, |clock| clock.max(due));
            self.clock = Some(now);
            self.effects.clear();
            self.engine.fire_due(now, &mut self.effects);
            sink(&self.effects)?;
            if let Some(left) = self.engine.next_due() {
                if left <= now {
                    // fire_due must fire everything due at or before `now`; looping again
                    // would never end.
                    bail!("the engine left a timer due at {left} unfired at {now}");
                }
            }
        }
        Ok(())
    }
}
