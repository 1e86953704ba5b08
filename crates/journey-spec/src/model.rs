//! The typed journey and configuration model: what a valid journey file and a valid
//! configuration file mean once loaded. Everything here has passed validation; the engine
//! relies on that (step references resolve, percentages add up, channels are declared).

use indexmap::IndexMap;
use serde::Serialize;
use std::path::PathBuf;

/// A length of time, as written in journeys and configuration (`30s`, `15m`, `2h`, `7d`, `2w`),
/// held in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Duration {
    pub seconds: u64,
}

impl Duration {
    pub const fn from_secs(seconds: u64) -> Self {
        Duration { seconds }
    }
    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::seconds(self.seconds as i64)
    }
}

/// A percentage with up to two decimals, held in basis points (`12.5%` is 1250, `100%` is 10000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct Percent {
    pub basis_points: u32,
}

/// A local time of day (`"09:30"`), minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

/// Where a value in a condition or in send data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PathRoot {
    /// `event.type` / `event.properties...`: the event being evaluated.
    Event,
    /// `trigger.type` / `trigger.properties...`: the event that started the journey instance.
    Trigger,
    /// `profile...`: the customer's attributes.
    Profile,
}

/// A validated path such as `event.properties.cart_value` or `profile.tier`.
///
/// For `Event` and `Trigger` roots, `segments` is either `["type"]` or starts with
/// `"properties"` followed by at least one name. For `Profile`, `segments` holds the attribute
/// names after `profile.` (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Path {
    pub root: PathRoot,
    pub segments: Vec<String>,
    /// The path as written, for messages and graphs.
    pub text: String,
}

/// A comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Contains,
    StartsWith,
    Exists,
}

impl Op {
    pub const ALL: [Op; 11] = [
        Op::Eq,
        Op::Ne,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::In,
        Op::NotIn,
        Op::Contains,
        Op::StartsWith,
        Op::Exists,
    ];

    /// The key used in journey files.
    pub fn key(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::Exists => "exists",
        }
    }
}

/// A condition. Validation guarantees operands have the right type (`in`/`not_in` take lists,
/// `exists` a boolean, `starts_with` a string, `gt`.. a number or string).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Condition {
    /// `{ path: P, OP: VALUE [, OP2: VALUE2 ...] }`: every comparison must hold.
    Compare {
        path: Path,
        comparisons: Vec<(Op, serde_json::Value)>,
    },
    /// `{ did: TYPE [, within: DURATION] }`: the customer had an event of that type (in the
    /// window, when given) before the event being handled.
    Did {
        event: String,
        within: Option<Duration>,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// `active | paused | draining`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Status {
    #[default]
    Active,
    Paused,
    Draining,
}

/// `marketing | transactional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Category {
    #[default]
    Marketing,
    Transactional,
}

/// An event type with an optional condition: used by `trigger`, `exit_when` entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMatch {
    pub event: String,
    pub condition: Option<Condition>,
}

/// `once | always | { after: DURATION }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Reentry {
    #[default]
    Once,
    Always,
    After(Duration),
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Entry {
    pub reentry: Reentry,
    pub unless: Option<Condition>,
    pub holdout: Percent,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    pub event: String,
    pub condition: Option<Condition>,
    pub within: Option<Duration>,
    /// Default true: reaching the goal ends the journey.
    pub exit: bool,
}

/// Where a customer goes next: a step id of the same journey, or the end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Next {
    Step(String),
    End,
}

/// `continue | exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum IfNoChannel {
    #[default]
    Continue,
    Exit,
}

/// A value in a send's `data`: a literal, or a path copied at send time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum DataValue {
    Literal(serde_json::Value),
    Path(Path),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Send {
    /// Channel names in priority order (at least one, all declared in the configuration).
    pub channels: Vec<String>,
    pub template: String,
    /// In the order written.
    pub data: IndexMap<String, DataValue>,
    pub if_no_channel: IfNoChannel,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitFor {
    pub event: String,
    pub condition: Option<Condition>,
    /// `for_send: STEP`: only events whose `properties.command_id` is the id of a command that
    /// send step (of the same journey) issued in this instance match. Validation guarantees
    /// the step exists and is a `send`.
    pub for_send: Option<String>,
    pub timeout: Duration,
    /// `None`: the following step.
    pub on_event: Option<Next>,
    /// `None`: the following step.
    pub on_timeout: Option<Next>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BranchCase {
    /// `None` only for the last case (the else case).
    pub when: Option<Condition>,
    pub next: Next,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitArm {
    pub name: String,
    pub percent: Percent,
    pub next: Next,
}

/// The one action of a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    Wait(Duration),
    WaitUntil(TimeOfDay),
    WaitFor(WaitFor),
    Send(Send),
    Branch(Vec<BranchCase>),
    Split(Vec<SplitArm>),
}

impl Action {
    /// The key used in journey files (`wait`, `send`, ...), also used as the step kind label.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Wait(_) => "wait",
            Action::WaitUntil(_) => "wait_until",
            Action::WaitFor(_) => "wait_for",
            Action::Send(_) => "send",
            Action::Branch(_) => "branch",
            Action::Split(_) => "split",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: String,
    pub action: Action,
    /// `next:` of the step. `None`: the following step (or the end after the last step).
    /// Not used by `branch`, `split` and `wait_for`, whose cases name their own next steps
    /// (a `next` on those is still honoured as the fallthrough target where the spec says
    /// "the following step").
    pub next: Option<Next>,
}

/// A validated journey.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Journey {
    pub id: String,
    pub version: u32,
    pub name: Option<String>,
    pub status: Status,
    pub category: Category,
    pub priority: i64,
    pub trigger: EventMatch,
    pub entry: Entry,
    pub exit_when: Vec<EventMatch>,
    pub goal: Option<Goal>,
    pub steps: Vec<Step>,
    /// The file it was loaded from, for messages.
    pub source: PathBuf,
}

// ---------------------------------------------------------------------------------------------
// Engine configuration (docs/reference/configuration.md)
// ---------------------------------------------------------------------------------------------

/// `opt_in | opt_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ConsentMode {
    OptIn,
    OptOut,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelConfig {
    /// Output topic of the channel's send commands.
    pub topic: String,
    /// Profile attribute holding the customer's address on this channel.
    pub address: String,
    pub consent: ConsentMode,
    pub quiet_hours: bool,
}

/// Which channels a frequency cap covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CapChannels {
    All,
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrequencyCap {
    pub name: String,
    pub channels: CapChannels,
    pub max: u32,
    pub per: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuietHours {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
    pub default_timezone: chrono_tz::Tz,
}

/// The format of an input topic's records (docs/reference/events.md, "Other formats").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub enum InputFormat {
    /// journeyd's own JSON events.
    #[default]
    Native,
    /// Segment Spec messages (Segment, RudderStack).
    Segment,
    /// CloudEvents 1.0 (structured or Kafka binary mode); the customer id is the attribute
    /// named here (`subject` by default, or an extension attribute).
    CloudEvents { customer_id_attribute: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    /// Names of the input topics.
    pub input_topics: Vec<String>,
    /// The format of each input topic not in the native format (`input_topics` entries written
    /// `{ name, format }`).
    pub input_formats: IndexMap<String, InputFormat>,
    pub dead_letter_topic: String,
    pub decisions_topic: String,
    pub state_topic: String,
    /// librdkafka properties passed through as they are.
    pub client: IndexMap<String, String>,
    /// How often the open transaction is committed (default 100).
    pub commit_interval_ms: u64,
    /// Largest accepted event in bytes (default 65536).
    pub max_event_bytes: usize,
    /// The producer's `transactional.id`; default
    /// `<group_id>-<hostname>`, stable per instance (a StatefulSet pod name).
    pub transactional_id: Option<String>,
    /// Addition to config.md: join the consumer group as a static member (librdkafka
    /// `group.instance.id`), default true, so that a restarted instance takes its partitions
    /// back at once instead of after a rebalance (docs/operations.md, "Recovery").
    pub static_membership: bool,
    /// Addition to config.md: the `group.instance.id` used when `static_membership` is on;
    /// default the instance's `transactional.id`.
    pub group_instance_id: Option<String>,
}

impl KafkaConfig {
    /// The format of an input topic (native unless configured otherwise).
    pub fn input_format(&self, topic: &str) -> &InputFormat {
        static NATIVE: InputFormat = InputFormat::Native;
        self.input_formats.get(topic).unwrap_or(&NATIVE)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsConfig {
    pub listen: String,
}

/// The `GET /customers/{id}` inspection endpoint, off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct InspectConfig {
    pub enabled: bool,
    /// Bearer token required when enabled.
    pub token: Option<String>,
}

/// What the service does with an event whose type is not in the event catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum UnknownEvents {
    /// Process it and count it (`journeyd_uncatalogued_events_total`).
    #[default]
    Count,
    /// Send it to the dead-letter topic (reason `unknown_type`).
    DeadLetter,
}

/// The tracking plan (`event_catalog`): every event type producers send, with its properties.
/// `profile_updated` and `consent_updated` are always known (see [`EventCatalog::properties`]).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct EventCatalog {
    /// Event type → property names, in the order written.
    pub events: IndexMap<String, Vec<String>>,
    pub unknown_events: UnknownEvents,
}

impl EventCatalog {
    /// Whether events of this type are expected (listed, or reserved).
    pub fn knows(&self, event_type: &str) -> bool {
        self.events.contains_key(event_type)
            || event_type == "profile_updated"
            || event_type == "consent_updated"
    }

    /// The properties of a known type; `None` when they are not checked (an unlisted
    /// `profile_updated`, whose properties are profile attributes) or the type is unknown.
    pub fn properties(&self, event_type: &str) -> Option<Vec<&str>> {
        if let Some(props) = self.events.get(event_type) {
            return Some(props.iter().map(String::as_str).collect());
        }
        match event_type {
            "consent_updated" => Some(vec!["channel", "status"]),
            _ => None,
        }
    }

    /// Every known event type: the listed ones, then the reserved ones not listed.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        let reserved = ["profile_updated", "consent_updated"]
            .into_iter()
            .filter(|t| !self.events.contains_key(*t));
        self.events.keys().map(String::as_str).chain(reserved)
    }
}

/// `text | json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter directive, default `info`.
    pub level: String,
}

/// The whole engine configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Absolute or relative to the working directory (relative paths in the file are resolved
    /// against the configuration file's directory when loading).
    pub journeys_dir: PathBuf,
    /// Addition to config.md: the directory of local state checkpoints (one file per
    /// partition); default `state` beside the configuration file, resolved like `journeys_dir`.
    pub state_dir: PathBuf,
    /// Stream threads of the instance (`workers`), each owning a disjoint set of partitions;
    /// `None`: one per core ([`Config::workers`]).
    pub workers: Option<usize>,
    pub kafka: KafkaConfig,
    pub metrics: MetricsConfig,
    /// In declaration order.
    pub channels: IndexMap<String, ChannelConfig>,
    /// In configuration order (the order decides which cap a skip names).
    pub frequency_caps: Vec<FrequencyCap>,
    pub quiet_hours: QuietHours,
    /// The tracking plan, when configured: journeys are checked against it and the service
    /// counts (or dead-letters) events of other types.
    pub event_catalog: Option<EventCatalog>,
    pub inspect: InspectConfig,
    pub log: LogConfig,
}

impl Config {
    /// The number of stream threads to run: `workers` when set, else the number of cores
    /// (`std::thread::available_parallelism`, 1 when it cannot be told).
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}
