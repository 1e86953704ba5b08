//! Builders for configurations, journeys and event streams used by the engine's tests.

use crate::{Catalog, Effects, Engine, Event};
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use journey_spec::*;
use serde_json::Value;
use std::sync::Arc;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn dur(s: &str) -> Duration {
    let (n, u) = s.split_at(s.len() - 1);
    let n: u64 = n.parse().unwrap();
    Duration::from_secs(
        n * match u {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            "w" => 7 * 86400,
            _ => panic!("unit"),
        },
    )
}

pub fn config() -> Config {
    let ch = |topic: &str, address: &str, consent, quiet_hours| ChannelConfig {
        topic: topic.into(),
        address: address.into(),
        consent,
        quiet_hours,
    };
    let mut channels = IndexMap::new();
    channels.insert(
        "email".into(),
        ch("actions.email", "email", ConsentMode::OptOut, false),
    );
    channels.insert(
        "sms".into(),
        ch("actions.sms", "phone", ConsentMode::OptIn, true),
    );
    channels.insert(
        "push".into(),
        ch("actions.push", "push_token", ConsentMode::OptOut, true),
    );
    let cap = |name: &str, chans: Option<&[&str]>, max, per: &str| FrequencyCap {
        name: name.into(),
        channels: match chans {
            None => CapChannels::All,
            Some(l) => CapChannels::List(l.iter().map(|s| s.to_string()).collect()),
        },
        max,
        per: dur(per),
    };
    Config {
        journeys_dir: "journeys".into(),
        state_dir: "state".into(),
        workers: None,
        kafka: KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            group_id: "journeyd".into(),
            input_topics: vec!["events".into()],
            input_formats: IndexMap::new(),
            dead_letter_topic: "events.dead_letter".into(),
            decisions_topic: "journey.decisions".into(),
            state_topic: "journeyd.state".into(),
            client: IndexMap::new(),
            commit_interval_ms: 100,
            max_event_bytes: 65536,
            transactional_id: None,
            static_membership: true,
            group_instance_id: None,
        },
        metrics: MetricsConfig {
            listen: "127.0.0.1:9464".into(),
        },
        channels,
        frequency_caps: vec![
            cap("email_weekly", Some(&["email"]), 3, "7d"),
            cap("sms_daily", Some(&["sms"]), 1, "1d"),
            cap("all_weekly", None, 5, "7d"),
        ],
        quiet_hours: QuietHours {
            start: TimeOfDay {
                hour: 21,
                minute: 0,
            },
            end: TimeOfDay { hour: 8, minute: 0 },
            default_timezone: chrono_tz::UTC,
        },
        event_catalog: None,
        inspect: InspectConfig::default(),
        log: LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        },
    }
}

pub fn path(text: &str) -> Path {
    let mut parts = text.split('.');
    let root = match parts.next().unwrap() {
        "event" => PathRoot::Event,
        "trigger" => PathRoot::Trigger,
        "profile" => PathRoot::Profile,
        r => panic!("root {r}"),
    };
    Path {
        root,
        segments: parts.map(String::from).collect(),
        text: text.into(),
    }
}

pub fn cmp(p: &str, op: Op, v: Value) -> Condition {
    Condition::Compare {
        path: path(p),
        comparisons: vec![(op, v)],
    }
}

pub fn did(ev: &str, within: Option<&str>) -> Condition {
    Condition::Did {
        event: ev.into(),
        within: within.map(dur),
    }
}

pub fn journey(id: &str, trigger: &str, steps: Vec<Step>) -> Journey {
    Journey {
        id: id.into(),
        version: 1,
        name: None,
        status: Status::Active,
        category: Category::Marketing,
        priority: 0,
        trigger: EventMatch {
            event: trigger.into(),
            condition: None,
        },
        entry: Entry {
            reentry: Reentry::Always,
            unless: None,
            holdout: Percent { basis_points: 0 },
        },
        exit_when: vec![],
        goal: None,
        steps,
        source: format!("{id}.yaml").into(),
    }
}

pub fn step(id: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        action,
        next: None,
    }
}

pub fn wait(id: &str, d: &str) -> Step {
    step(id, Action::Wait(dur(d)))
}

pub fn send(id: &str, channels: &[&str], template: &str) -> Step {
    step(
        id,
        Action::Send(Send {
            channels: channels.iter().map(|s| s.to_string()).collect(),
            template: template.into(),
            data: IndexMap::new(),
            if_no_channel: IfNoChannel::Continue,
        }),
    )
}

pub fn next(s: &str) -> Next {
    if s == "end" {
        Next::End
    } else {
        Next::Step(s.into())
    }
}

/// Runs the engine the way `simulate` does and records everything as compact lines.
pub struct Sim {
    pub engine: Engine,
    pub out: Effects,
    pub clock: DateTime<Utc>,
    n: u64,
}

impl Sim {
    pub fn new(journeys: Vec<Journey>) -> Sim {
        Sim::with_config(&config(), journeys)
    }
    pub fn with_config(cfg: &Config, journeys: Vec<Journey>) -> Sim {
        Sim {
            engine: Engine::new(Arc::new(Catalog::new(cfg, journeys))),
            out: Effects::default(),
            clock: DateTime::<Utc>::MIN_UTC,
            n: 0,
        }
    }
    /// Fires timers up to `at`, then handles the event at `max(clock, at)`.
    pub fn event(&mut self, cust: &str, ty: &str, at: &str, props: Value) -> String {
        self.n += 1;
        let id = format!("e{}", self.n);
        self.event_id(&id, cust, ty, at, props);
        id
    }
    pub fn event_id(&mut self, id: &str, cust: &str, ty: &str, at: &str, props: Value) {
        let ts = t(at);
        self.engine.fire_due(ts, &mut self.out);
        self.clock = self.clock.max(ts);
        let ev = Event {
            event_id: id.into(),
            customer_id: cust.into(),
            event_type: ty.into(),
            timestamp: ts,
            properties: props.as_object().cloned().unwrap_or_default(),
        };
        self.engine.handle(&ev, self.clock, &mut self.out);
    }
    pub fn until(&mut self, at: &str) {
        let ts = t(at);
        self.engine.fire_due(ts, &mut self.out);
        self.clock = self.clock.max(ts);
    }
    /// Decisions so far as `kind journey step channel reason` (missing parts left out), then
    /// cleared.
    pub fn take(&mut self) -> Vec<String> {
        let v = self
            .out
            .decisions
            .iter()
            .map(|d| {
                let mut s = d.kind.to_string();
                let reason = d.reason.as_ref().map(|r| r.as_str());
                for p in [
                    d.journey_id.as_deref(),
                    d.step_id.as_deref(),
                    d.channel.as_deref(),
                    reason,
                    d.branch.as_deref(),
                ]
                .into_iter()
                .flatten()
                {
                    s.push(' ');
                    s.push_str(p);
                }
                if d.holdout == Some(true) {
                    s.push_str(" H");
                }
                s
            })
            .collect();
        self.out.decisions.clear();
        v
    }
    pub fn commands(&mut self) -> Vec<crate::SendCommand> {
        std::mem::take(&mut self.out.commands)
    }
}
