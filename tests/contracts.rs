//! The machine-readable contracts (`journeyd schema --kind ...`) against what journeyd really
//! emits and what its reference documentation shows: every send command and decision that
//! `simulate` produces for the example scenarios validates against its schema and uses only
//! fields the schema lists, and every JSON example of `docs/reference/*.md` (events, commands,
//! decisions) and every configuration example validates too, and is accepted by the real
//! parsers.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const KINDS: [&str; 5] = ["journey", "config", "event", "command", "decision"];

fn schema_json(kind: Option<&str>) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_journeyd"));
    command.arg("schema");
    if let Some(kind) = kind {
        command.arg("--kind").arg(kind);
    }
    let output = command.output().expect("journeyd runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a schema is JSON")
}

/// The compiled schemas of every kind, as printed by the binary.
struct Schemas {
    schemas: boon::Schemas,
    index: Vec<(&'static str, boon::SchemaIndex, Value)>,
}

impl Schemas {
    fn new() -> Self {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let mut index = Vec::new();
        for kind in KINDS {
            let url = format!("urn:journeyd:{kind}.json");
            let schema = schema_json(Some(kind));
            compiler.add_resource(&url, schema.clone()).unwrap();
            let i = compiler
                .compile(&url, &mut schemas)
                .unwrap_or_else(|e| panic!("the {kind} schema does not compile: {e:#}"));
            index.push((kind, i, schema));
        }
        Schemas { schemas, index }
    }

    fn entry(&self, kind: &str) -> &(&'static str, boon::SchemaIndex, Value) {
        self.index.iter().find(|(k, _, _)| *k == kind).unwrap()
    }

    /// Panics with `what` when `value` does not validate, or (for records) has a field the
    /// schema does not list.
    fn check(&self, kind: &str, value: &Value, what: &str) {
        let (_, index, schema) = self.entry(kind);
        if let Err(e) = self.schemas.validate(value, *index) {
            panic!("{what}: not a valid {kind}: {e:#}\n{value}");
        }
        if kind != "config" && kind != "journey" {
            let listed = schema["properties"].as_object().unwrap();
            for field in value.as_object().unwrap().keys() {
                assert!(
                    listed.contains_key(field),
                    "{what}: field `{field}` is not in the {kind} schema"
                );
            }
        }
    }

    fn rejects(&self, kind: &str, value: &Value) -> bool {
        let (_, index, _) = self.entry(kind);
        self.schemas.validate(value, *index).is_err()
    }
}

#[test]
fn journey_is_the_default_kind() {
    assert_eq!(schema_json(None), schema_json(Some("journey")));
    let output = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(["schema", "--kind", "journeys"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("journey"), "{stderr}");
}

#[test]
fn every_command_and_decision_of_the_scenarios_validates() {
    let schemas = Schemas::new();
    let mut scenarios = 0;
    let (mut commands, mut decisions) = (0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(repo_root().join("tests/scenarios")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("events.jsonl").is_file() {
            continue;
        }
        scenarios += 1;
        let temp = tempfile::tempdir().unwrap();
        let decisions_file = temp.path().join("decisions.jsonl");
        let mut command = Command::new(env!("CARGO_BIN_EXE_journeyd"));
        command
            .arg("simulate")
            .arg("--config")
            .arg(repo_root().join("deploy/journeyd.yaml"))
            .arg("--events")
            .arg(dir.join("events.jsonl"))
            .arg("--decisions")
            .arg(&decisions_file);
        if let Ok(until) = std::fs::read_to_string(dir.join("until")) {
            command.arg("--until").arg(until.trim());
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", dir.display());
        for (n, line) in String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .enumerate()
        {
            let mut value: Value = serde_json::from_str(line).unwrap();
            // `simulate` adds the channel topic, which on Kafka is the record's topic.
            let topic = value.as_object_mut().unwrap().remove("topic");
            assert!(topic.is_some_and(|t| t.is_string()));
            schemas.check(
                "command",
                &value,
                &format!("{} command {}", dir.display(), n + 1),
            );
            commands += 1;
        }
        for (n, line) in std::fs::read_to_string(&decisions_file)
            .unwrap()
            .lines()
            .enumerate()
        {
            let value: Value = serde_json::from_str(line).unwrap();
            kinds.insert(value["kind"].as_str().unwrap().to_string());
            schemas.check(
                "decision",
                &value,
                &format!("{} decision {}", dir.display(), n + 1),
            );
            decisions += 1;
        }
    }
    assert!(scenarios >= 8 && commands > 0 && decisions > 0);
    // The scenarios exercise most kinds; the schema is checked on each of them.
    assert!(kinds.len() >= 10, "{kinds:?}");
}

#[test]
fn the_record_schemas_reject_what_they_should() {
    let s = Schemas::new();
    let event: Value = serde_json::json!({"event_id": "e", "customer_id": "c", "type": "t", "timestamp": "2026-01-01T00:00:00Z"});
    s.check("event", &event, "minimal event");
    let mut bad = event.clone();
    bad["timestamp"] = "2026-01-01T00:00:00".into();
    assert!(s.rejects("event", &bad), "timestamp without offset");
    let consent = serde_json::json!({"event_id": "e", "customer_id": "c", "type": "consent_updated", "timestamp": "2026-01-01T00:00:00Z", "properties": {"channel": "sms", "status": "revoked"}});
    assert!(s.rejects("event", &consent), "bad consent status");
    let sent = serde_json::json!({"at": "2026-01-01T00:00:00Z", "customer_id": "c", "journey_id": "j", "journey_version": 1, "step_id": "s", "kind": "sent", "channel": "email", "event_id": "e", "holdout": false});
    assert!(s.rejects("decision", &sent), "sent without command_id");
    let unknown =
        serde_json::json!({"at": "2026-01-01T00:00:00Z", "customer_id": "c", "kind": "maybe"});
    assert!(s.rejects("decision", &unknown));
}

/// Fenced blocks of `lang` in a Markdown text, without the fence's indentation (blocks inside
/// list items are indented).
fn fenced(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let opening = format!("```{lang}");
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut current {
            None if trimmed == opening => current = Some((indent, String::new())),
            Some(_) if trimmed == "```" => blocks.push(current.take().unwrap().1),
            Some((fence, block)) => {
                block.push_str(&line[indent.min(*fence)..]);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn the_reference_examples_validate() {
    let s = Schemas::new();
    let dir = repo_root().join("docs/reference");
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for page in [
        "events.md",
        "commands.md",
        "decisions.md",
        "configuration.md",
        "cli.md",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        for block in fenced(&text, "json") {
            for line in block.lines().filter(|l| !l.trim().is_empty()) {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{page}: example is not JSON ({e}): {line}"));
                let kind = if value.get("command_id").is_some() && value.get("template").is_some() {
                    "command"
                } else if value.get("kind").is_some() && value.get("at").is_some() {
                    "decision"
                } else if value.get("messageId").is_some() {
                    // Segment and CloudEvents examples: no schema, the real decoders.
                    journey_engine::decode_event(
                        journey_engine::formats::Format::Segment,
                        line.as_bytes(),
                        &[],
                        65_536,
                    )
                    .unwrap_or_else(|e| panic!("{page}: {e}: {line}"));
                    "segment"
                } else if value.get("specversion").is_some() {
                    journey_engine::decode_event(
                        journey_engine::formats::Format::CloudEvents {
                            customer_id_attribute: "subject",
                        },
                        line.as_bytes(),
                        &[],
                        65_536,
                    )
                    .unwrap_or_else(|e| panic!("{page}: {e}: {line}"));
                    "cloudevents"
                } else if value.get("event_id").is_some() && value.get("type").is_some() {
                    // The real parser accepts it too.
                    journey_engine::parse_event(line.as_bytes(), 65_536)
                        .unwrap_or_else(|e| panic!("{page}: {e}: {line}"));
                    "event"
                } else {
                    panic!("{page}: example of no known kind: {line}")
                };
                if kind != "segment" && kind != "cloudevents" {
                    s.check(kind, &value, &format!("{page} example"));
                }
                *checked.entry(kind).or_default() += 1;
            }
        }
        if page == "configuration.md" || page == "events.md" {
            for block in fenced(&text, "yaml") {
                // Partial examples (one section) get the example channels.
                let full = if block.contains("\nchannels:") || block.starts_with("channels:") {
                    block.clone()
                } else {
                    format!("{block}channels:\n  email: {{ address: email, consent: opt_out }}\n")
                };
                journey_spec::parse_config(&full, Path::new("journeyd.yaml"), &[])
                    .unwrap_or_else(|e| panic!("configuration.md example: {e:?}\n{full}"));
                let value = journey_spec::yaml_to_json(&full, Path::new("journeyd.yaml")).unwrap();
                s.check("config", &value, "configuration.md example");
                *checked.entry("config").or_default() += 1;
            }
        }
    }
    for kind in [
        "event",
        "command",
        "decision",
        "config",
        "segment",
        "cloudevents",
    ] {
        assert!(
            checked.get(kind).is_some_and(|n| *n > 0),
            "no {kind} example: {checked:?}"
        );
    }
}

#[test]
fn the_example_configuration_validates() {
    let s = Schemas::new();
    let file = "deploy/journeyd.yaml";
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    let value = journey_spec::yaml_to_json(&text, Path::new(file)).unwrap();
    s.check("config", &value, file);
}

/// The example configuration's event catalogue catches a misspelt event type the way the
/// documentation says: `FILE:LINE:COLUMN` and a suggestion, exit 1.
#[test]
fn validate_rejects_event_types_the_catalogue_lacks() {
    let temp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, temp.path().join(path.file_name().unwrap())).unwrap();
    }
    let file = temp.path().join("cart_abandonment.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let (line, _) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim() == "- event: order_completed")
        .expect("cart abandonment exits on order_completed");
    std::fs::write(
        &file,
        text.replacen("- event: order_completed", "- event: order_complete", 1),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .arg("validate")
        .arg("--config")
        .arg(repo_root().join("deploy/journeyd.yaml"))
        .arg(temp.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "{}:{}:12: event type `order_complete` is not in the event catalog; did you mean `order_completed`?\n",
            file.display(),
            line + 1
        )
    );
}
