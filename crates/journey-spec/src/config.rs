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
//!
//! This module reads the file and its top level; the overrides are in `env`, the `kafka` section
//! in `kafka`, channels, caps and quiet hours in `sending`, the other sections in `sections`.

mod env;
mod kafka;
mod sections;
mod sending;

pub(crate) use env::{apply_overrides, journeyd_env};
use kafka::kafka;
use sections::{event_catalog, inspect, log, metrics};
use sending::{caps, channels, quiet_hours};

use crate::check::{Cx, Fields};
use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::yaml::{self, Kind, Node, Scalar};
use std::path::{Path as FsPath, PathBuf};

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
