//! Compiled journeys and policy: step references resolved to indexes, journeys ordered by
//! (priority desc, id), indexes from event type to the journeys it triggers and to `did`
//! windows, and the configuration's channels, caps and quiet hours in lookup-friendly form.

use crate::hash::FxHashMap;
use journey_spec::{
    Action, CapChannels, Category, Condition, Config, DataValue, Duration, Journey, Next, Path,
    PathRoot, QuietHours, Status,
};
use std::sync::Arc;

/// One journey version, ready to run.
#[derive(Debug)]
pub struct CompiledJourney {
    pub journey: Journey,
    /// Per step: where "the following step" leads (`step.next`, else the next step, else end).
    pub following: Vec<Option<u16>>,
    pub step_ids: FxHashMap<String, u16>,
    /// Top-level trigger property names some `trigger.properties...` path reads (sorted); only
    /// these are kept in an instance.
    pub trigger_keys: Vec<String>,
    /// `did` conditions anywhere in the journey: (event type, within).
    pub dids: Vec<(String, Option<Duration>)>,
}

impl CompiledJourney {
    fn new(journey: Journey) -> Self {
        let n = journey.steps.len();
        let mut step_ids = FxHashMap::default();
        for (i, s) in journey.steps.iter().enumerate() {
            step_ids.insert(s.id.clone(), i as u16);
        }
        let mut c = CompiledJourney {
            following: Vec::with_capacity(n),
            step_ids,
            trigger_keys: Vec::new(),
            dids: Vec::new(),
            journey,
        };
        for i in 0..n {
            let f = match &c.journey.steps[i].next {
                Some(next) => c.resolve(next),
                None if i + 1 < n => Some((i + 1) as u16),
                None => None,
            };
            c.following.push(f);
        }
        let mut conds: Vec<&Condition> = Vec::new();
        let mut paths: Vec<&Path> = Vec::new();
        let j = &c.journey;
        conds.extend(j.trigger.condition.iter());
        conds.extend(j.entry.unless.iter());
        conds.extend(j.exit_when.iter().filter_map(|e| e.condition.as_ref()));
        conds.extend(j.goal.iter().filter_map(|g| g.condition.as_ref()));
        for s in &j.steps {
            match &s.action {
                Action::WaitFor(w) => conds.extend(w.condition.iter()),
                Action::Branch(cases) => conds.extend(cases.iter().filter_map(|b| b.when.as_ref())),
                Action::Send(send) => {
                    for v in send.data.values() {
                        if let DataValue::Path(p) = v {
                            paths.push(p);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut dids = Vec::new();
        fn visit<'a>(
            c: &'a Condition,
            paths: &mut Vec<&'a Path>,
            dids: &mut Vec<(String, Option<Duration>)>,
        ) {
            match c {
                Condition::Compare { path, .. } => paths.push(path),
                Condition::Did { event, within } => dids.push((event.clone(), *within)),
                Condition::All(cs) | Condition::Any(cs) => {
                    cs.iter().for_each(|c| visit(c, paths, dids))
                }
                Condition::Not(c) => visit(c, paths, dids),
            }
        }
        for cond in conds {
            visit(cond, &mut paths, &mut dids);
        }
        let mut keys: Vec<String> = paths
            .iter()
            .filter(|p| p.root == PathRoot::Trigger && p.segments.len() >= 2)
            .filter(|p| p.segments[0] == "properties")
            .map(|p| p.segments[1].clone())
            .collect();
        keys.sort();
        keys.dedup();
        c.trigger_keys = keys;
        c.dids = dids;
        c
    }

    /// A step reference as an index (`None` is the end).
    pub fn resolve(&self, next: &Next) -> Option<u16> {
        match next {
            Next::End => None,
            Next::Step(id) => self.step_ids.get(id).copied(),
        }
    }

    pub fn id(&self) -> &str {
        &self.journey.id
    }
}

/// A channel of the configuration.
#[derive(Debug)]
pub struct ChannelC {
    pub name: String,
    pub topic: String,
    pub address: String,
    pub opt_in: bool,
    pub quiet_hours: bool,
}

/// A frequency cap of the configuration.
#[derive(Debug)]
pub struct CapC {
    pub name: String,
    /// `frequency_cap:<name>`.
    pub reason: String,
    /// `None`: every channel.
    pub channels: Option<Vec<String>>,
    pub max: u32,
    pub per: Duration,
}

/// The per-event-type index.
#[derive(Debug, Default)]
pub struct TypeInfo {
    /// Journeys (indexes into [`Catalog::journeys`]) this type triggers, in handling order.
    pub triggers: Vec<u16>,
}

/// A compiled journey set plus the engine-wide policy.
pub struct CatalogInner {
    pub channels: Vec<ChannelC>,
    pub caps: Vec<CapC>,
    pub quiet: QuietHours,
    /// In handling order: priority desc, then id.
    pub journeys: Vec<Arc<CompiledJourney>>,
    pub by_id: FxHashMap<String, u16>,
    pub by_type: FxHashMap<String, TypeInfo>,
    pub max_cap_per: Option<Duration>,
}

impl CatalogInner {
    pub fn new(config: &Config, journeys: Vec<Journey>) -> Self {
        let channels = config
            .channels
            .iter()
            .map(|(name, c)| ChannelC {
                name: name.clone(),
                topic: c.topic.clone(),
                address: c.address.clone(),
                opt_in: c.consent == journey_spec::ConsentMode::OptIn,
                quiet_hours: c.quiet_hours,
            })
            .collect();
        let caps: Vec<CapC> = config
            .frequency_caps
            .iter()
            .map(|c| CapC {
                name: c.name.clone(),
                reason: format!("frequency_cap:{}", c.name),
                channels: match &c.channels {
                    CapChannels::All => None,
                    CapChannels::List(l) => Some(l.clone()),
                },
                max: c.max,
                per: c.per,
            })
            .collect();
        let max_cap_per = caps.iter().map(|c| c.per).max();
        let mut compiled: Vec<Arc<CompiledJourney>> = journeys
            .into_iter()
            .map(|j| Arc::new(CompiledJourney::new(j)))
            .collect();
        compiled.sort_by(|a, b| {
            b.journey
                .priority
                .cmp(&a.journey.priority)
                .then_with(|| a.journey.id.cmp(&b.journey.id))
        });
        let mut by_id = FxHashMap::default();
        let mut by_type: FxHashMap<String, TypeInfo> = FxHashMap::default();
        for (i, j) in compiled.iter().enumerate() {
            by_id.insert(j.journey.id.clone(), i as u16);
            by_type
                .entry(j.journey.trigger.event.clone())
                .or_default()
                .triggers
                .push(i as u16);
        }
        CatalogInner {
            channels,
            caps,
            quiet: config.quiet_hours.clone(),
            journeys: compiled,
            by_id,
            by_type,
            max_cap_per,
        }
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelC> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// The status that governs a journey id now: the current file's, else the version's own.
    pub fn status_of(&self, j: &CompiledJourney) -> Status {
        match self.by_id.get(j.id()) {
            Some(&i) => self.journeys[i as usize].journey.status,
            None => j.journey.status,
        }
    }

    /// Whether the journey's sends are marketing.
    pub fn is_marketing(j: &CompiledJourney) -> bool {
        j.journey.category == Category::Marketing
    }
}
