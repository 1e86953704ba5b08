//! The JSON Schema accepts every valid journey (the spec's examples and the valid fixtures) and
//! rejects unknown keys and malformed values, checked with a draft 2020-12 validator.

use journey_spec::{json_schema, yaml_to_json};
use serde_json::Value;
use std::path::Path;

struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl Validator {
    fn new() -> Self {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource("urn:journeyd:journey.json", json_schema())
            .unwrap();
        let index = compiler
            .compile("urn:journeyd:journey.json", &mut schemas)
            .unwrap_or_else(|e| panic!("schema does not compile: {e:#}"));
        Validator { schemas, index }
    }

    fn accepts(&self, yaml: &str) -> bool {
        let value: Value = yaml_to_json(yaml, Path::new("x.yaml")).unwrap();
        self.schemas.validate(&value, self.index).is_ok()
    }
}

const VALID: [&str; 3] = [
    include_str!("cart_abandonment.yaml"),
    include_str!("../../../tests/fixtures/validate/valid/journeys/welcome.yaml"),
    include_str!("../../../tests/fixtures/validate/valid/journeys/receipts.yml"),
];

#[test]
fn accepts_valid_journeys() {
    let v = Validator::new();
    let config = journey_spec::Config::example();
    for text in VALID {
        journey_spec::parse_journey(text, Path::new("x.yaml"), &config).unwrap();
        assert!(v.accepts(text), "{text}");
    }
    assert!(v.accepts(
        "id: j\nversion: 1\ntrigger: { event: e }\nentry: { reentry: always, holdout: 0.25% }\n\
         steps:\n  - id: a\n    wait_until: { time: \"23:59\" }\n  - id: b\n    branch:\n      - when: { not: { any: [{ did: x }, { all: [{ path: profile.a.b, exists: false, ne: 1 }] }] } }\n        next: c\n  - id: c\n    split: [{ name: x, percent: 100, next: end }]\n"
    ));
}

#[test]
fn rejects_what_the_loader_rejects() {
    let v = Validator::new();
    let head = "id: j\nversion: 1\ntrigger: { event: e }\n";
    let bad = [
        format!("{head}colour: red\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}steps: [{{ id: a, wiat: 1h }}]\n"),
        format!("{head}steps: [{{ id: a, wait: 1h, send: {{ channels: [email], template: t }} }}]\n"),
        format!("{head}steps: [{{ id: a }}]\n"),
        format!("{head}steps: [{{ id: a, wait: 1.5h }}]\n"),
        format!("{head}steps: [{{ id: a, wait: 0s }}]\n"),
        format!("{head}steps: [{{ id: end, wait: 1h }}]\n"),
        format!("{head}steps: [{{ id: A, wait: 1h }}]\n"),
        format!("{head}steps: []\n"),
        format!("{head}steps: [{{ id: a, send: {{ channels: [email], template: \"\" }} }}]\n"),
        format!("{head}steps: [{{ id: a, send: {{ channels: [email], tempalte: t }} }}]\n"),
        format!("{head}steps: [{{ id: a, wait_for: {{ event: x }} }}]\n"),
        format!("{head}steps: [{{ id: a, wait_until: {{ time: \"24:00\" }} }}]\n"),
        format!("{head}steps: [{{ id: a, split: [{{ name: x, percent: 12.345%, next: end }}] }}]\n"),
        format!("{head}entry: {{ unless: {{ path: event.type, eq: x }} }}\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}entry: {{ unless: {{ path: customer.x, eq: x }} }}\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}entry: {{ unless: {{ path: profile.x, in: x }} }}\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}entry: {{ unless: {{ path: profile.x, exists: yes }} }}\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}entry: {{ unless: {{ path: profile.x }} }}\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}entry: {{ unless: {{ path: profile.x, eq: 1, did: y }} }}\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}entry: {{ reentry: sometimes }}\nsteps: [{{ id: a, wait: 1h }}]\n"),
        format!("{head}status: actve\nsteps: [{{ id: a, wait: 1h }}]\n"),
        "id: j\nversion: 0\ntrigger: { event: e }\nsteps: [{ id: a, wait: 1h }]\n".to_string(),
        "version: 1\ntrigger: { event: e }\nsteps: [{ id: a, wait: 1h }]\n".to_string(),
    ];
    for text in &bad {
        assert!(!v.accepts(text), "accepted:\n{text}");
        assert!(
            journey_spec::parse_journey(
                text,
                Path::new("x.yaml"),
                &journey_spec::Config::example()
            )
            .is_err(),
            "the loader accepts:\n{text}"
        );
    }
}

#[test]
fn accepts_the_repository_journeys_the_loader_accepts() {
    let v = Validator::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // The repository's journeys are written for its deployment configuration.
    let config = std::fs::read_to_string(root.join("deploy/journeyd.yaml"))
        .ok()
        .and_then(|text| journey_spec::parse_config(&text, Path::new("journeyd.yaml"), &[]).ok())
        .unwrap_or_else(journey_spec::Config::example);
    let dir = root.join("journeys");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if journey_spec::parse_journey(&text, &path, &config).is_ok() {
                assert!(v.accepts(&text), "{}", path.display());
            }
        }
    }
}
