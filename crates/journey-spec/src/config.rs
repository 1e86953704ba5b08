//! The engine configuration file (docs/reference/configuration.md): parsing, defaults, validation and environment
//! overrides.
//!
//! Every value has a default except `channels`. Unknown keys are errors.
//!
//! # Environment overrides
//!
//! A variable `JOURNEYD_A__B__C=value` sets the key path `a.b.c` (names lowercased, `__`
//! separating levels), after the file is read and before it is validated, so an override is
//! checked like a value written in the file; problems with it name the variable. Examples:
//!
//! - `JOURNEYD_KAFKA__BOOTSTRAP_SERVERS=kafka-0:9092` sets `kafka.bootstrap_servers`;
//! - `JOURNEYD_METRICS__LISTEN=0.0.0.0:9464`, `JOURNEYD_KAFKA__TRANSACTIONAL_ID=journeyd-0`,
//!   `JOURNEYD_INSPECT__TOKEN=s3cret`, `JOURNEYD_INSPECT__ENABLED=true`;
//! - under `kafka.client` the rest of the name after `CLIENT__` is a librdkafka property with
//!   `_` read as `.`: `JOURNEYD_KAFKA__CLIENT__SASL_PASSWORD=x` sets client property
//!   `sasl.password`. Its value is kept as written.
//!
//! Other values are read as a plain YAML scalar (`true`, `100` and `null` are a boolean, a number
//! and null; anything else is a string). A value written `[a, b]` is a YAML list, and
//! `kafka.input_topics` also takes a comma-separated string (`JOURNEYD_KAFKA__INPUT_TOPICS=a,b`).
//! `JOURNEYD_JOURNEYS_DIR` sets `journeys_dir`, `JOURNEYD_STATE_DIR` sets `state_dir` and
//! `JOURNEYD_WORKERS` sets `workers`. Other variables that start with `JOURNEYD_` but
//! contain no `__` are not overrides and are ignored, so the prefix can also name settings of
//! the command line.
//!
//! # Quiet hours
//!
//! Quiet hours default to 21:00–08:00 in UTC (`quiet_hours.default_timezone`, used when a
//! profile has no `timezone`). They hold only channels that opt in with `quiet_hours: true`
//! (default false) and only marketing sends.

use crate::check::{Cx, Fields};
use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::values::did_you_mean;
use crate::yaml::{self, Kind, Node, Scalar};
use indexmap::IndexMap;
use std::path::{Path as FsPath, PathBuf};
use std::rc::Rc;

/// The example of docs/reference/configuration.md, used by [`Config::example`].
pub const EXAMPLE_CONFIG: &str = r#"journeys_dir: journeys
kafka:
  bootstrap_servers: 127.0.0.1:9092
  group_id: journeyd
  input_topics: [events]
  dead_letter_topic: events.dead_letter
  decisions_topic: journey.decisions
  state_topic: journeyd.state        # compacted changelog, same partition count as the input
  client: {}                         # any librdkafka property, passed through (security, tuning)
metrics:
  listen: 127.0.0.1:9464             # /metrics, /healthz, /readyz
channels:
  email: { topic: actions.email, address: email, consent: opt_out, quiet_hours: false }
  sms:   { topic: actions.sms,   address: phone, consent: opt_in,  quiet_hours: true }
  push:  { topic: actions.push,  address: push_token, consent: opt_out, quiet_hours: true }
frequency_caps:
  - { name: email_weekly, channels: [email], max: 3, per: 7d }
  - { name: sms_daily,    channels: [sms],   max: 1, per: 1d }
  - { name: all_weekly,   channels: all,     max: 5, per: 7d }
quiet_hours:
  start: "21:00"
  end: "08:00"
  default_timezone: UTC
"#;

const PREFIX: &str = "JOURNEYD_";
pub(crate) const TOP_KEYS: [&str; 11] = [
    "journeys_dir",
    "state_dir",
    "workers",
    "kafka",
    "metrics",
    "channels",
    "frequency_caps",
    "quiet_hours",
    "event_catalog",
    "inspect",
    "log",
];
pub(crate) const KAFKA_KEYS: [&str; 12] = [
    "bootstrap_servers",
    "group_id",
    "input_topics",
    "dead_letter_topic",
    "decisions_topic",
    "state_topic",
    "client",
    "commit_interval_ms",
    "max_event_bytes",
    "transactional_id",
    "static_membership",
    "group_instance_id",
];

impl Config {
    /// The example configuration of docs/reference/configuration.md (channels email, sms and push; three caps), as
    /// loaded from a file `journeyd.yaml` in the working directory.
    pub fn example() -> Config {
        parse_config(EXAMPLE_CONFIG, FsPath::new("journeyd.yaml"), &[])
            .expect("the example configuration is valid")
    }
}

/// Parse + validate the configuration file; applies `JOURNEYD_*` environment overrides and
/// resolves relative paths (`journeys_dir`, `state_dir`) against the file's directory.
pub fn load_config(path: &FsPath) -> Result<Config, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        vec![Diagnostic::whole_file(
            path,
            format!("cannot read configuration: {err}"),
        )]
    })?;
    parse_config(&text, path, &journeyd_env())
}

/// The process's `JOURNEYD_*` variables (the overrides [`load_config`] applies).
pub(crate) fn journeyd_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect()
}

/// Same as [`load_config`] over text, with an explicit environment: `env` yields
/// `(NAME, VALUE)` pairs (names without the `JOURNEYD_` prefix are ignored).
pub fn parse_config(
    text: &str,
    file: &FsPath,
    env: &[(String, String)],
) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Cx::new(file);
    let parsed = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(err) => {
            cx.at(err.line, err.col, format!("invalid YAML: {}", err.message));
            return Err(cx.finish());
        }
    };
    for problem in &parsed.problems {
        cx.at(problem.line, problem.col, problem.message.clone());
    }
    let mut root = parsed.root.unwrap_or(Node {
        line: 1,
        col: 1,
        origin: None,
        kind: Kind::Map(Vec::new()),
    });
    // An empty file is an empty configuration (which then lacks `channels`).
    if root.is_null() {
        root.kind = Kind::Map(Vec::new());
    }
    apply_overrides(&mut cx, &mut root, env);
    let config = convert(&mut cx, &root, file);
    let diagnostics = cx.finish();
    match config {
        Some(config) if diagnostics.is_empty() => Ok(config),
        _ => Err(diagnostics),
    }
}

/// Applies the `JOURNEYD_` variables of `env` to the tree (in name order), when it is a mapping.
pub(crate) fn apply_overrides(cx: &mut Cx, root: &mut Node, env: &[(String, String)]) {
    if matches!(root.kind, Kind::Map(_)) {
        let mut env: Vec<&(String, String)> =
            env.iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
        env.sort();
        for (name, value) in env {
            apply_override(cx, root, name, value);
        }
    }
}

/// Sets the key path named by one `JOURNEYD_` variable in the tree.
fn apply_override(cx: &mut Cx, root: &mut Node, name: &str, value: &str) {
    let rest = &name[PREFIX.len()..];
    let upper = rest.to_ascii_uppercase();
    let (path, node): (Vec<String>, Node) = if let Some(property) = upper
        .strip_prefix("KAFKA__CLIENT__")
        .map(|_| &rest["KAFKA__CLIENT__".len()..])
    {
        let key = property.to_lowercase().replace('_', ".");
        (
            vec!["kafka".into(), "client".into(), key],
            Node::from_env(name, value, false),
        )
    } else if rest.contains("__")
        || matches!(upper.as_str(), "JOURNEYS_DIR" | "STATE_DIR" | "WORKERS")
    {
        let path = rest.split("__").map(str::to_lowercase).collect();
        (path, env_value(name, value))
    } else {
        return;
    };
    if path.iter().any(String::is_empty) {
        cx.diagnostics.push(Diagnostic::whole_file(
            cx.file,
            format!("environment variable {name} names no setting (empty name between `__`)"),
        ));
        return;
    }
    let mut at = root;
    for (depth, key) in path.iter().enumerate() {
        let Kind::Map(entries) = &mut at.kind else {
            // The file holds something else there; its own type error is reported.
            return;
        };
        let position = entries.iter().position(|(k, _)| k.text() == Some(key));
        let last = depth + 1 == path.len();
        let index = match position {
            Some(i) => {
                if last {
                    entries[i].1 = node;
                    return;
                }
                if entries[i].1.is_null() {
                    entries[i].1 = Node::env_map(name);
                }
                i
            }
            None => {
                let value = if last {
                    node.clone()
                } else {
                    Node::env_map(name)
                };
                entries.push((Node::from_env(name, key, false), value));
                if last {
                    return;
                }
                entries.len() - 1
            }
        };
        at = &mut entries[index].1;
    }
}

/// An override's value: a flow list when written `[...]`, else a plain scalar.
fn env_value(name: &str, value: &str) -> Node {
    let trimmed = value.trim();
    if trimmed.starts_with('[') && trimmed.ends_with(']') {
        if let Ok(yaml::Parsed {
            root: Some(mut node),
            problems,
        }) = yaml::parse(trimmed)
        {
            if problems.is_empty() && matches!(node.kind, Kind::Seq(_)) {
                mark_origin(&mut node, &Rc::from(name));
                return node;
            }
        }
    }
    Node::from_env(name, value, true)
}

fn mark_origin(node: &mut Node, var: &Rc<str>) {
    node.origin = Some(var.clone());
    match &mut node.kind {
        Kind::Scalar(..) => {}
        Kind::Seq(items) => items.iter_mut().for_each(|n| mark_origin(n, var)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            mark_origin(k, var);
            mark_origin(v, var);
        }),
    }
}

fn convert(cx: &mut Cx, root: &Node, file: &FsPath) -> Option<Config> {
    let f = cx.fields(root, "the configuration file", "configuration", &TOP_KEYS)?;
    let journeys_dir = config_path(cx, &f, "journeys_dir", "journeys", file);
    let state_dir = config_path(cx, &f, "state_dir", DEFAULT_STATE_DIR, file);
    let workers = match f.get("workers") {
        None => Some(None),
        Some(n) if n.is_null() => Some(None),
        Some(n) => workers(cx, n).map(Some),
    };
    let kafka = section(cx, &f, "kafka", kafka);
    let metrics = section(cx, &f, "metrics", metrics);
    let channels = f.require(cx, "channels").and_then(|n| channels(cx, n));
    // Caps are checked against the channel names written, even when a channel has an error
    // of its own, so that every problem is reported at once.
    let declared: Vec<String> = match f.get("channels").map(|n| &n.kind) {
        Some(Kind::Map(entries)) => entries.iter().map(|(k, _)| k.display_text()).collect(),
        _ => Vec::new(),
    };
    let frequency_caps = match f.get("frequency_caps") {
        None => Some(Vec::new()),
        Some(n) => caps(cx, n, &declared),
    };
    let quiet_hours = section(cx, &f, "quiet_hours", quiet_hours);
    let event_catalog = match f.get("event_catalog") {
        Some(n) if n.is_null() => Some(None),
        Some(n) => event_catalog(cx, n).map(Some),
        None => Some(None),
    };
    let inspect = section(cx, &f, "inspect", inspect);
    let log = section(cx, &f, "log", log);
    Some(Config {
        journeys_dir: journeys_dir?,
        state_dir: state_dir?,
        workers: workers?,
        kafka: kafka?,
        metrics: metrics?,
        channels: channels?,
        frequency_caps: frequency_caps?,
        quiet_hours: quiet_hours?,
        event_catalog: event_catalog?,
        inspect: inspect?,
        log: log?,
    })
}

/// Most stream threads an instance may run.
pub const MAX_WORKERS: u64 = 1024;

/// `workers`: stream threads of the instance, 1 to [`MAX_WORKERS`].
fn workers(cx: &mut Cx, node: &Node) -> Option<usize> {
    match node.scalar() {
        Some(Scalar::Int(i)) if *i > MAX_WORKERS as i64 => {
            cx.err(node, format!("`workers` must be at most {MAX_WORKERS}"));
            None
        }
        _ => cx
            .positive_int(node, "workers", MAX_WORKERS)
            .map(|n| n as usize),
    }
}

/// The default `state_dir`: a directory `state` beside the configuration file.
pub const DEFAULT_STATE_DIR: &str = "state";

/// A directory setting: the written path (or `default`), a relative one resolved against the
/// configuration file's directory.
fn config_path(
    cx: &mut Cx,
    f: &Fields,
    key: &str,
    default: &str,
    file: &FsPath,
) -> Option<PathBuf> {
    match f.get(key) {
        Some(n) => cx.nonempty_string(n, key).map(PathBuf::from),
        None => Some(PathBuf::from(default)),
    }
    .map(|dir| match file.parent() {
        Some(parent) if dir.is_relative() => join_lexically(parent, &dir),
        _ => dir,
    })
}

/// An optional section: its conversion run on the written mapping, or on an empty one (all
/// defaults) when absent.
fn section<T>(
    cx: &mut Cx,
    f: &Fields,
    key: &str,
    convert: impl FnOnce(&mut Cx, &Node) -> Option<T>,
) -> Option<T> {
    let empty = Node {
        line: f.node.line,
        col: f.node.col,
        origin: None,
        kind: Kind::Map(Vec::new()),
    };
    convert(cx, f.get(key).unwrap_or(&empty))
}

/// A non-empty string value, or `default` when the key is absent.
fn string_or(cx: &mut Cx, f: &Fields, key: &str, default: &str) -> Option<String> {
    match f.get(key) {
        Some(n) => cx.nonempty_string(n, key),
        None => Some(default.to_string()),
    }
}

fn kafka(cx: &mut Cx, node: &Node) -> Option<KafkaConfig> {
    let f = cx.fields(node, "`kafka`", "kafka", &KAFKA_KEYS)?;
    let bootstrap_servers = string_or(cx, &f, "bootstrap_servers", "127.0.0.1:9092");
    let group_id = string_or(cx, &f, "group_id", "journeyd");
    let input_topics = match f.get("input_topics") {
        Some(n) => topics(cx, n),
        None => Some((vec!["events".to_string()], IndexMap::new())),
    };
    let dead_letter_topic = string_or(cx, &f, "dead_letter_topic", "events.dead_letter");
    let decisions_topic = string_or(cx, &f, "decisions_topic", "journey.decisions");
    let state_topic = string_or(cx, &f, "state_topic", "journeyd.state");
    let client = match f.get("client") {
        Some(n) => client(cx, n),
        None => Some(IndexMap::new()),
    };
    let commit_interval_ms = match f.get("commit_interval_ms") {
        Some(n) => cx.positive_int(n, "commit_interval_ms", u32::MAX as u64),
        None => Some(100),
    };
    let max_event_bytes = match f.get("max_event_bytes") {
        Some(n) => cx.positive_int(n, "max_event_bytes", u32::MAX as u64),
        None => Some(65_536),
    };
    let transactional_id = match f.get("transactional_id") {
        Some(n) if n.is_null() => Some(None),
        Some(n) => cx.nonempty_string(n, "transactional_id").map(Some),
        None => Some(None),
    };
    let static_membership = match f.get("static_membership") {
        Some(n) => cx.bool(n, "static_membership"),
        None => Some(true),
    };
    let group_instance_id = match f.get("group_instance_id") {
        Some(n) if n.is_null() => Some(None),
        Some(n) => cx.nonempty_string(n, "group_instance_id").map(Some),
        None => Some(None),
    };
    if let (Some(false), Some(Some(_)), Some(n)) = (
        static_membership,
        &group_instance_id,
        f.get("group_instance_id"),
    ) {
        cx.err(
            n,
            "`group_instance_id` is set but `static_membership` is false: remove one of them",
        );
        return None;
    }
    Some(KafkaConfig {
        bootstrap_servers: bootstrap_servers?,
        group_id: group_id?,
        input_topics: input_topics.as_ref()?.0.clone(),
        input_formats: input_topics?.1,
        dead_letter_topic: dead_letter_topic?,
        decisions_topic: decisions_topic?,
        state_topic: state_topic?,
        client: client?,
        commit_interval_ms: commit_interval_ms?,
        max_event_bytes: max_event_bytes? as usize,
        transactional_id: transactional_id?,
        static_membership: static_membership?,
        group_instance_id: group_instance_id?,
    })
}

/// `input_topics`: a list of names (native format) or `{ name, format[, customer_id_attribute] }`
/// entries, or a comma-separated string (from an environment override). Returns the names and
/// the formats of the topics that are not native.
fn topics(cx: &mut Cx, node: &Node) -> Option<(Vec<String>, IndexMap<String, InputFormat>)> {
    let mut formats = IndexMap::new();
    let topics: Vec<String> = match (&node.kind, node.text()) {
        (Kind::Seq(items), _) => {
            let mut names: Vec<String> = Vec::new();
            let mut ok = true;
            for item in items {
                let entry = match &item.kind {
                    Kind::Map(_) => input_topic(cx, item),
                    _ => cx
                        .nonempty_string(item, "input_topics")
                        .map(|n| (n, InputFormat::Native)),
                };
                let Some((name, format)) = entry else {
                    ok = false;
                    continue;
                };
                if names.contains(&name) {
                    cx.err(item, format!("input topic `{name}` is listed twice"));
                    ok = false;
                    continue;
                }
                if format != InputFormat::Native {
                    formats.insert(name.clone(), format);
                }
                names.push(name);
            }
            if !ok {
                return None;
            }
            names
        }
        (_, Some(text)) => text
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => {
            cx.err(node, "`input_topics` must be a list");
            return None;
        }
    };
    if topics.is_empty() {
        cx.err(node, "`input_topics` must list at least one topic");
        return None;
    }
    Some((topics, formats))
}

/// One `{ name, format[, customer_id_attribute] }` entry of `input_topics`.
fn input_topic(cx: &mut Cx, node: &Node) -> Option<(String, InputFormat)> {
    let f = cx.fields(
        node,
        "each input topic",
        "input topic",
        &["name", "format", "customer_id_attribute"],
    )?;
    let name = f
        .require(cx, "name")
        .and_then(|n| cx.nonempty_string(n, "name"));
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Native,
        Segment,
        CloudEvents,
    }
    let kind = match f.get("format") {
        Some(n) => cx.choice(
            n,
            "format",
            &[
                ("native", Kind::Native),
                ("segment", Kind::Segment),
                ("cloudevents", Kind::CloudEvents),
            ],
        ),
        None => Some(Kind::Native),
    };
    let attribute = match f.get("customer_id_attribute") {
        Some(n) => {
            if kind.is_some_and(|k| k != Kind::CloudEvents) {
                cx.err(
                    n,
                    "`customer_id_attribute` only applies to `format: cloudevents`",
                );
                return None;
            }
            let attribute = cx.nonempty_string(n, "customer_id_attribute")?;
            // CloudEvents attribute names: lowercase letters and digits.
            if !attribute
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                cx.err(
                    n,
                    format!(
                        "bad CloudEvents attribute name `{attribute}`: use only lowercase letters and digits"
                    ),
                );
                return None;
            }
            Some(attribute)
        }
        None => Some("subject".to_string()),
    };
    let format = match kind? {
        Kind::Native => InputFormat::Native,
        Kind::Segment => InputFormat::Segment,
        Kind::CloudEvents => InputFormat::CloudEvents {
            customer_id_attribute: attribute?,
        },
    };
    Some((name?, format))
}

fn client(cx: &mut Cx, node: &Node) -> Option<IndexMap<String, String>> {
    if node.is_null() {
        return Some(IndexMap::new());
    }
    let Kind::Map(entries) = &node.kind else {
        cx.err(node, "`client` must be a mapping");
        return None;
    };
    let mut client = IndexMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let name = key.display_text();
        match value.scalar() {
            Some(Scalar::Null) | None => {
                cx.err(
                    value,
                    format!("kafka client property `{name}` must be a string, number or boolean"),
                );
                ok = false;
            }
            Some(_) => {
                client.insert(name, value.display_text());
            }
        }
    }
    ok.then_some(client)
}

fn metrics(cx: &mut Cx, node: &Node) -> Option<MetricsConfig> {
    let f = cx.fields(node, "`metrics`", "metrics", &["listen"])?;
    let listen = string_or(cx, &f, "listen", "127.0.0.1:9464")?;
    let valid = listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !valid {
        cx.err(
            f.get("listen")?,
            format!("bad listen address `{listen}`: expected HOST:PORT, like `127.0.0.1:9464`"),
        );
        return None;
    }
    Some(MetricsConfig { listen })
}

fn channels(cx: &mut Cx, node: &Node) -> Option<IndexMap<String, ChannelConfig>> {
    let Kind::Map(entries) = &node.kind else {
        if node.is_null() {
            cx.err(node, "`channels` must declare at least one channel");
        } else {
            cx.err(node, "`channels` must be a mapping");
        }
        return None;
    };
    if entries.is_empty() {
        cx.err(node, "`channels` must declare at least one channel");
        return None;
    }
    let mut channels = IndexMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let name = cx.identifier(key, "channel name");
        let channel = name.as_ref().and_then(|name| channel(cx, name, value));
        match (name, channel) {
            (Some(name), Some(channel)) => {
                channels.insert(name, channel);
            }
            _ => ok = false,
        }
    }
    ok.then_some(channels)
}

fn channel(cx: &mut Cx, name: &str, node: &Node) -> Option<ChannelConfig> {
    let f = cx.fields(
        node,
        &format!("channel `{name}`"),
        &format!("channel `{name}`"),
        &["topic", "address", "consent", "quiet_hours"],
    )?;
    let topic = string_or(cx, &f, "topic", &format!("actions.{name}"));
    let address = f
        .require(cx, "address")
        .and_then(|n| cx.nonempty_string(n, "address"));
    let consent = f.require(cx, "consent").and_then(|n| {
        cx.choice(
            n,
            "consent",
            &[
                ("opt_in", ConsentMode::OptIn),
                ("opt_out", ConsentMode::OptOut),
            ],
        )
    });
    let quiet_hours = match f.get("quiet_hours") {
        Some(n) => cx.bool(n, "quiet_hours"),
        None => Some(false),
    };
    Some(ChannelConfig {
        topic: topic?,
        address: address?,
        consent: consent?,
        quiet_hours: quiet_hours?,
    })
}

/// `declared`: the channel names of the file; empty when `channels` is missing or malformed,
/// which skips the declared-channel check (that problem is reported on its own).
fn caps(cx: &mut Cx, node: &Node, declared: &[String]) -> Option<Vec<FrequencyCap>> {
    if node.is_null() {
        return Some(Vec::new());
    }
    let items = cx.list(node, "`frequency_caps`")?;
    let mut caps: Vec<FrequencyCap> = Vec::new();
    // Names of every cap seen, including caps with other errors, to report duplicates.
    let mut names: Vec<String> = Vec::new();
    let mut ok = true;
    for item in items {
        match cap(cx, item, declared, &mut names) {
            Some(cap) => caps.push(cap),
            None => ok = false,
        }
    }
    ok.then_some(caps)
}

fn cap(
    cx: &mut Cx,
    node: &Node,
    declared: &[String],
    names: &mut Vec<String>,
) -> Option<FrequencyCap> {
    let f = cx.fields(
        node,
        "each frequency cap",
        "frequency cap",
        &["name", "channels", "max", "per"],
    )?;
    let name = f.require(cx, "name").and_then(|n| {
        let name = cx.nonempty_string(n, "name")?;
        if names.contains(&name) {
            cx.err(n, format!("duplicate frequency cap name `{name}`"));
            return None;
        }
        names.push(name.clone());
        Some(name)
    });
    let channels = f
        .require(cx, "channels")
        .and_then(|n| cap_channels(cx, n, declared));
    let max = f
        .require(cx, "max")
        .and_then(|n| cx.positive_int(n, "max", u32::MAX as u64));
    let per = f.require(cx, "per").and_then(|n| cx.duration(n));
    Some(FrequencyCap {
        name: name?,
        channels: channels?,
        max: max? as u32,
        per: per?,
    })
}

fn cap_channels(cx: &mut Cx, node: &Node, declared: &[String]) -> Option<CapChannels> {
    if node.text() == Some("all") {
        return Some(CapChannels::All);
    }
    let Kind::Seq(items) = &node.kind else {
        cx.err(node, "`channels` must be `all` or a list of channels");
        return None;
    };
    if items.is_empty() {
        cx.err(node, "`channels` must list at least one channel");
        return None;
    }
    let mut list: Vec<String> = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(name) = cx.nonempty_string(item, "channel") else {
            ok = false;
            continue;
        };
        if list.contains(&name) {
            cx.err(item, format!("channel `{name}` is listed twice"));
            ok = false;
        } else if !declared.is_empty() && !declared.contains(&name) {
            let hint = did_you_mean(&name, declared.iter().map(String::as_str));
            cx.err(
                item,
                format!("channel `{name}` is not declared in `channels`{hint}"),
            );
            ok = false;
        }
        list.push(name);
    }
    ok.then_some(CapChannels::List(list))
}

fn quiet_hours(cx: &mut Cx, node: &Node) -> Option<QuietHours> {
    let f = cx.fields(
        node,
        "`quiet_hours`",
        "quiet_hours",
        &["start", "end", "default_timezone"],
    )?;
    let time = |cx: &mut Cx, key: &str, default: TimeOfDay| match f.get(key) {
        Some(n) => cx.time_of_day(n),
        None => Some(default),
    };
    let start = time(
        cx,
        "start",
        TimeOfDay {
            hour: 21,
            minute: 0,
        },
    );
    let end = time(cx, "end", TimeOfDay { hour: 8, minute: 0 });
    let default_timezone = match f.get("default_timezone") {
        Some(n) => timezone(cx, n),
        None => Some(chrono_tz::UTC),
    };
    Some(QuietHours {
        start: start?,
        end: end?,
        default_timezone: default_timezone?,
    })
}

fn timezone(cx: &mut Cx, node: &Node) -> Option<chrono_tz::Tz> {
    let text = cx.nonempty_string(node, "default_timezone")?;
    match text.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let hint = did_you_mean(&text, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()));
            cx.err(
                node,
                format!("bad time zone `{text}`: expected an IANA name like `Europe/London`{hint}"),
            );
            None
        }
    }
}

fn event_catalog(cx: &mut Cx, node: &Node) -> Option<EventCatalog> {
    let f = cx.fields(
        node,
        "`event_catalog`",
        "event_catalog",
        &["events", "unknown_events"],
    )?;
    let unknown_events = match f.get("unknown_events") {
        Some(n) => cx.choice(
            n,
            "unknown_events",
            &[
                ("count", UnknownEvents::Count),
                ("dead_letter", UnknownEvents::DeadLetter),
            ],
        ),
        None => Some(UnknownEvents::Count),
    };
    let events = f.require(cx, "events").and_then(|n| catalog_events(cx, n));
    Some(EventCatalog {
        events: events?,
        unknown_events: unknown_events?,
    })
}

/// `events:` of the catalogue: event type → `{ properties: [NAME, ...] }` (or null: none).
fn catalog_events(cx: &mut Cx, node: &Node) -> Option<IndexMap<String, Vec<String>>> {
    let Kind::Map(entries) = &node.kind else {
        cx.err(
            node,
            "`events` must be a mapping from event type to its properties",
        );
        return None;
    };
    if entries.is_empty() {
        cx.err(node, "`events` must list at least one event type");
        return None;
    }
    let mut events = IndexMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let Some(name) = cx.nonempty_string(key, "event type") else {
            ok = false;
            continue;
        };
        if value.is_null() {
            events.insert(name, Vec::new());
            continue;
        }
        let subject = format!("event type `{name}`");
        let Some(f) = cx.fields(value, &subject, &subject, &["properties"]) else {
            ok = false;
            continue;
        };
        let properties = match f.get("properties") {
            None => Some(Vec::new()),
            Some(n) if n.is_null() => Some(Vec::new()),
            Some(n) => catalog_properties(cx, n),
        };
        match properties {
            Some(p) => {
                events.insert(name, p);
            }
            None => ok = false,
        }
    }
    ok.then_some(events)
}

fn catalog_properties(cx: &mut Cx, node: &Node) -> Option<Vec<String>> {
    let items = cx.list(node, "`properties`")?;
    let mut names: Vec<String> = Vec::new();
    let mut ok = true;
    for item in items {
        match cx.nonempty_string(item, "property") {
            Some(name) if names.contains(&name) => {
                cx.err(item, format!("property `{name}` is listed twice"));
                ok = false;
            }
            Some(name) => names.push(name),
            None => ok = false,
        }
    }
    ok.then_some(names)
}

fn inspect(cx: &mut Cx, node: &Node) -> Option<InspectConfig> {
    let f = cx.fields(node, "`inspect`", "inspect", &["enabled", "token"])?;
    let enabled = match f.get("enabled") {
        Some(n) => cx.bool(n, "enabled"),
        None => Some(false),
    };
    let token = match f.get("token") {
        Some(n) if n.is_null() => Some(None),
        Some(n) => cx.nonempty_string(n, "token").map(Some),
        None => Some(None),
    };
    if enabled == Some(true) && token == Some(None) {
        cx.err(node, "`inspect.enabled` needs a `token`");
        return None;
    }
    Some(InspectConfig {
        enabled: enabled?,
        token: token?,
    })
}

fn log(cx: &mut Cx, node: &Node) -> Option<LogConfig> {
    let f = cx.fields(node, "`log`", "log", &["format", "level"])?;
    let format = match f.get("format") {
        Some(n) => cx.choice(
            n,
            "log format",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        ),
        None => Some(LogFormat::Text),
    };
    let level = string_or(cx, &f, "level", "info");
    Some(LogConfig {
        format: format?,
        level: level?,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

/// `base` joined with the relative path `rel`, with `..` folded into the preceding name where
/// there is one (`deploy` + `../journeys` is `journeys`), so paths in messages read the way a
/// person would write them. Purely textual: a `..` after a symbolic link would differ from the
/// file system's view, which does not matter for a configuration-relative journeys directory.
fn join_lexically(base: &FsPath, rel: &FsPath) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in base.join(rel).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}
