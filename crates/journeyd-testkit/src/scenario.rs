//! One test's world: topics, consumer group and transactional ids that start with the test's
//! name and a random suffix, so tests running at the same time on the same broker do not see
//! each other; a directory under `target/tmp/kafka-tests/` with the configuration, the journeys
//! and the logs of every process it started (kept for diagnosis, printed on failure).

use crate::broker::{broker, Broker};
use crate::compare::parse_json_lines;
use crate::kafka::{Delivered, Kafka, Outgoing};
use crate::process::{tail, Journeyd};
use crate::{fixtures, journeyd_bin, target_tmp, unique_suffix};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An event as in events.md.
pub fn event(
    event_id: &str,
    customer_id: &str,
    event_type: &str,
    at: chrono::DateTime<chrono::Utc>,
    properties: Value,
) -> Value {
    json!({
        "event_id": event_id,
        "customer_id": customer_id,
        "type": event_type,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "properties": properties,
    })
}

/// Channels of the test configuration (`tests/fixtures/kafka/journeyd.yaml.in`).
pub const CHANNELS: [&str; 3] = ["email", "sms", "push"];

/// One test's world: unique topic names, a directory with the configuration and journeys, and
/// the `journeyd` processes it started.
pub struct Scenario {
    pub name: String,
    /// Prefix of every topic, the group id and the transactional ids.
    pub prefix: String,
    pub dir: PathBuf,
    pub kafka: Kafka,
    logs: std::sync::Mutex<Vec<PathBuf>>,
}

impl Scenario {
    /// A scenario named after the test, with the given fixture journeys
    /// (`tests/fixtures/kafka/journeys/<name>.yaml`) copied into its journeys directory, and its
    /// topics created (`input_partitions` partitions for the input and the changelog).
    /// On the shared [`broker`].
    pub fn new(test_name: &str, journeys: &[&str], input_partitions: i32) -> Scenario {
        Scenario::on(broker(), test_name, journeys, input_partitions)
    }

    /// [`Scenario::new`] on a given broker (e.g. a [`crate::PrivateBroker`] the test stops).
    pub fn on(
        broker: &Broker,
        test_name: &str,
        journeys: &[&str],
        input_partitions: i32,
    ) -> Scenario {
        let prefix = format!("{}-{}", test_name.replace('_', "-"), unique_suffix());
        let dir = target_tmp().join("kafka-tests").join(&prefix);
        fs::create_dir_all(dir.join("journeys")).expect("create the scenario directory");
        for j in journeys {
            let from = fixtures().join("journeys").join(format!("{j}.yaml"));
            fs::copy(&from, dir.join("journeys").join(format!("{j}.yaml")))
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        eprintln!(
            "scenario {test_name}: prefix {prefix}, directory {}, broker {}",
            dir.display(),
            broker.bootstrap
        );
        let scenario = Scenario {
            name: test_name.to_string(),
            prefix,
            dir,
            kafka: Kafka::connect(&broker.bootstrap),
            logs: std::sync::Mutex::new(Vec::new()),
        };
        let mut topics = vec![
            (scenario.events_topic(), input_partitions, false),
            (scenario.state_topic(), input_partitions, true),
            (scenario.dead_letter_topic(), 1, false),
            (scenario.decisions_topic(), 1, false),
        ];
        for ch in CHANNELS {
            topics.push((scenario.action_topic(ch), 1, false));
        }
        scenario.kafka.create_topics(&topics);
        scenario
    }

    pub fn events_topic(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn state_topic(&self) -> String {
        format!("{}.state", self.prefix)
    }
    pub fn dead_letter_topic(&self) -> String {
        format!("{}.dead-letter", self.prefix)
    }
    pub fn decisions_topic(&self) -> String {
        format!("{}.decisions", self.prefix)
    }
    pub fn action_topic(&self, channel: &str) -> String {
        format!("{}.actions.{channel}", self.prefix)
    }
    /// Every channel's action topic.
    pub fn action_topics(&self) -> Vec<String> {
        CHANNELS.iter().map(|c| self.action_topic(c)).collect()
    }
    pub fn journeys_dir(&self) -> PathBuf {
        self.dir.join("journeys")
    }
    /// The `state_dir` of one instance (`state-<instance>` beside its configuration: each
    /// instance has its own, as each pod has its own volume).
    pub fn state_dir(&self, instance: &str) -> PathBuf {
        self.dir.join(format!("state-{instance}"))
    }

    /// Writes `config-<instance>.yaml` from the fixture template for one `journeyd run`
    /// instance (its own transactional id and metrics port). Returns its path.
    pub fn write_config(&self, instance: &str, metrics_port: u16) -> PathBuf {
        self.write_config_with(instance, metrics_port, &ConfigExtra::default())
    }

    /// [`Scenario::write_config`] with settings added to the template (see [`ConfigExtra`]).
    pub fn write_config_with(
        &self,
        instance: &str,
        metrics_port: u16,
        extra: &ConfigExtra,
    ) -> PathBuf {
        let template = fs::read_to_string(fixtures().join("journeyd.yaml.in"))
            .expect("read tests/fixtures/kafka/journeyd.yaml.in");
        let text = template
            .replace("{{bootstrap}}", &self.kafka.bootstrap)
            .replace("{{prefix}}", &self.prefix)
            .replace("{{instance}}", instance)
            .replace("{{metrics_port}}", &metrics_port.to_string());
        let text = extra.apply(&text);
        let path = self.dir.join(format!("config-{instance}.yaml"));
        fs::write(&path, text).expect("write the scenario configuration");
        path
    }

    /// Produces events to the input topic, keyed by customer id.
    pub fn produce_events(&self, events: &[Value]) -> Vec<Delivered> {
        let records: Vec<Outgoing> = events.iter().map(Outgoing::event).collect();
        self.kafka.produce(&self.events_topic(), &records)
    }

    /// Starts `journeyd run --config <config>`; stdout and stderr go to `<dir>/<log_name>.log`.
    pub fn spawn_run(&self, config: &Path, log_name: &str, metrics_port: u16) -> Journeyd {
        let log = self.dir.join(format!("{log_name}.log"));
        self.logs.lock().unwrap().push(log.clone());
        Journeyd::spawn_run(config, &self.dir, log, metrics_port)
    }

    /// Runs `journeyd simulate` over `events` (written to `<dir>/<label>.jsonl`) with
    /// `--until`, and returns (commands, decisions), each a JSON object.
    pub fn simulate(
        &self,
        config: &Path,
        label: &str,
        events: &[Value],
        until: chrono::DateTime<chrono::Utc>,
    ) -> (Vec<Value>, Vec<Value>) {
        let events_file = self.dir.join(format!("{label}.jsonl"));
        let decisions_file = self.dir.join(format!("{label}.decisions.jsonl"));
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).expect("serialize event"));
            text.push('\n');
        }
        fs::write(&events_file, text).expect("write the events file");
        let output = Command::new(journeyd_bin())
            .arg("simulate")
            .arg("--config")
            .arg(config)
            .arg("--events")
            .arg(&events_file)
            .arg("--until")
            .arg(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .arg("--decisions")
            .arg(&decisions_file)
            .output()
            .expect("run journeyd simulate");
        assert!(
            output.status.success(),
            "journeyd simulate failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let commands = parse_json_lines(&String::from_utf8_lossy(&output.stdout));
        let decisions = parse_json_lines(
            &fs::read_to_string(&decisions_file).expect("read the simulate decisions"),
        );
        (commands, decisions)
    }

    /// The last lines of every log of this scenario, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        for log in self.logs.lock().unwrap().iter() {
            out.push_str(&format!("---- last lines of {} ----\n", log.display()));
            out.push_str(&tail(log, 30));
        }
        out
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "scenario {} failed; files in {}\n{}",
                self.name,
                self.dir.display(),
                self.diagnostics()
            );
        }
    }
}

/// Settings added to the configuration template, each `(key, YAML value)` written as one line:
/// top-level keys, keys of `kafka:` and librdkafka properties of `kafka.client:`.
#[derive(Debug, Clone, Default)]
pub struct ConfigExtra {
    /// `workers` instead of the template's 2.
    pub workers: Option<usize>,
    pub top: Vec<(String, String)>,
    pub kafka: Vec<(String, String)>,
    pub client: Vec<(String, String)>,
}

impl ConfigExtra {
    /// Sets `workers` (the template has 2).
    pub fn workers(mut self, n: usize) -> ConfigExtra {
        self.workers = Some(n);
        self
    }
    /// Adds a top-level `key: value`.
    pub fn top(mut self, key: &str, value: &str) -> ConfigExtra {
        self.top.push((key.to_string(), value.to_string()));
        self
    }
    /// Adds `kafka.key: value`.
    pub fn kafka(mut self, key: &str, value: &str) -> ConfigExtra {
        self.kafka.push((key.to_string(), value.to_string()));
        self
    }
    /// Adds the librdkafka property `kafka.client.key: "value"`.
    pub fn client(mut self, key: &str, value: &str) -> ConfigExtra {
        self.client
            .push((key.to_string(), json!(value).to_string()));
        self
    }

    fn apply(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 256);
        for (k, v) in &self.top {
            out.push_str(&format!("{k}: {v}\n"));
        }
        for line in template.lines() {
            match self.workers {
                Some(n) if line.starts_with("workers:") => out.push_str(&format!("workers: {n}")),
                _ => out.push_str(line),
            }
            out.push('\n');
            if line == "kafka:" {
                for (k, v) in &self.kafka {
                    out.push_str(&format!("  {k}: {v}\n"));
                }
            } else if line == "  client:" {
                for (k, v) in &self.client {
                    out.push_str(&format!("    {k}: {v}\n"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_settings_land_in_their_sections() {
        let template =
            "journeys_dir: journeys\nkafka:\n  group_id: g\n  client:\n    a: \"1\"\nmetrics: {}\n";
        let extra = ConfigExtra::default()
            .top("state_dir", "\"/tmp/s\"")
            .kafka("static_membership", "false")
            .client("group.instance.id", "g-a");
        assert_eq!(
            extra.apply(template),
            "state_dir: \"/tmp/s\"\njourneys_dir: journeys\nkafka:\n  static_membership: false\n  group_id: g\n  client:\n    group.instance.id: \"g-a\"\n    a: \"1\"\nmetrics: {}\n"
        );
        assert_eq!(
            ConfigExtra::default()
                .workers(3)
                .apply("workers: 2\nkafka:\n"),
            "workers: 3\nkafka:\n"
        );
    }
}
