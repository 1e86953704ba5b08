//! Consistency checks of the operations artifacts in `deploy/` and `docs/operations.md` against
//! the code: the Grafana dashboard and the Prometheus rules may only query series that
//! `journey_kafka::metrics` defines (with labels those series have), every alert links to a
//! runbook section that exists, the Kubernetes manifests wire the probes, the scrape annotations
//! and a per-pod transactional.id, their embedded configuration and journeys validate, the
//! inspection endpoint is off, the SASL password comes from a Secret and the Kafka client
//! properties are accepted by the librdkafka this build links, each pod has a volume for
//! `state_dir`, the Dockerfile agrees with the StatefulSet (user, entrypoint, paths), the ACL
//! table of the runbook covers every resource, and the systemd unit reloads with SIGHUP.
//!
//! PromQL syntax itself is checked by `deploy/prometheus/check.sh` (promtool).
//!
//! Over 600 lines on purpose: one test binary per subject (CONTRIBUTING.md), and the subject is
//! every artifact in `deploy/`; each check is a few dozen lines and shares the readers of YAML,
//! Markdown and PromQL at the top.

use journey_kafka::metrics::{metric_names, METRIC_FAMILIES};
use journey_spec::Diagnostics;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// Labels every scraped series has, or that histogram series add.
const TARGET_LABELS: &[&str] = &["instance", "job", "pod", "namespace", "le"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_docs(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: invalid YAML: {e}"))
}

/// Label names of each family, with the `_bucket`/`_sum`/`_count` series of histograms.
fn family_labels() -> BTreeMap<String, BTreeSet<String>> {
    let mut map = BTreeMap::new();
    for (name, labels) in METRIC_FAMILIES {
        let labels: BTreeSet<String> = labels.iter().map(|l| l.to_string()).collect();
        map.insert(name.to_string(), labels.clone());
        for suffix in ["_bucket", "_sum", "_count"] {
            let series = format!("{name}{suffix}");
            if metric_names().contains(&series.as_str()) {
                let mut labels = labels.clone();
                if suffix == "_bucket" {
                    labels.insert("le".to_string());
                }
                map.insert(series, labels);
            }
        }
    }
    map
}

/// A metric referenced by a query, with the label names its selector uses.
#[derive(Debug)]
struct Reference {
    metric: String,
    selector_labels: Vec<String>,
}

/// What a PromQL (or Grafana) query refers to: metrics with their selector labels, and the
/// label names of `by`/`without`/`on`/`ignoring` clauses and `label_values(metric, label)`.
#[derive(Debug, Default)]
struct QueryRefs {
    metrics: Vec<Reference>,
    grouping_labels: Vec<String>,
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Scans a query for identifiers. Strings (inside quotes) are skipped so that label values are
/// never mistaken for metric names.
fn scan(query: &str) -> QueryRefs {
    let chars: Vec<char> = query.chars().collect();
    let mut refs = QueryRefs::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == '[' {
            // Range or subquery durations: `[5m]`, `[$__rate_interval]`.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            continue;
        }
        if c == '$' {
            // A Grafana variable such as $instance.
            i += 1;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            continue;
        }
        if is_ident_char(c) && !c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let next = chars.get(j).copied();
            if matches!(word.as_str(), "by" | "without" | "on" | "ignoring") && next == Some('(') {
                i = j + 1;
                let mut k = i;
                while k < chars.len() && chars[k] != ')' {
                    k += 1;
                }
                let inside: String = chars[i..k].iter().collect();
                refs.grouping_labels.extend(
                    inside
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty()),
                );
                i = k + 1;
                continue;
            }
            if word == "label_values" && next == Some('(') {
                let mut k = j + 1;
                while k < chars.len() && chars[k] != ')' {
                    k += 1;
                }
                let inside: String = chars[j + 1..k].iter().collect();
                let mut parts = inside.split(',').map(str::trim);
                let metric = parts.next().unwrap_or_default().to_string();
                if let Some(label) = parts.next() {
                    refs.grouping_labels.push(label.to_string());
                }
                refs.metrics.push(Reference {
                    metric,
                    selector_labels: Vec::new(),
                });
                i = k + 1;
                continue;
            }
            if word.starts_with("journeyd_") || word.starts_with("journeyd:") || word == "up" {
                let mut selector_labels = Vec::new();
                if next == Some('{') {
                    let mut k = j + 1;
                    let mut in_string = false;
                    let mut current = String::new();
                    let mut expecting_name = true;
                    while k < chars.len() && (in_string || chars[k] != '}') {
                        let ch = chars[k];
                        if ch == '"' {
                            in_string = !in_string;
                        } else if !in_string {
                            if ch == ',' {
                                expecting_name = true;
                            } else if expecting_name && is_ident_char(ch) {
                                current.push(ch);
                            } else if expecting_name && !current.is_empty() {
                                selector_labels.push(std::mem::take(&mut current));
                                expecting_name = false;
                            }
                        }
                        k += 1;
                    }
                    i = k + 1;
                }
                refs.metrics.push(Reference {
                    metric: word,
                    selector_labels,
                });
            }
            continue;
        }
        i += 1;
    }
    refs
}

/// Names of the recording rules of alerts.yml.
fn recording_rules() -> BTreeSet<String> {
    let docs = yaml_docs("deploy/prometheus/alerts.yml");
    let mut names = BTreeSet::new();
    for group in docs[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            if let Some(name) = rule["record"].as_str() {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// Checks one query; returns the problems found, naming `place`.
fn check_query(place: &str, query: &str, recorded: &BTreeSet<String>) -> Vec<String> {
    let families = family_labels();
    let refs = scan(query);
    let mut problems = Vec::new();
    let mut available: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    if refs.metrics.is_empty() {
        problems.push(format!("{place}: `{query}` queries no journeyd metric"));
    }
    for r in &refs.metrics {
        if r.metric == "up" {
            continue;
        }
        if r.metric.starts_with("journeyd:") {
            if !recorded.contains(&r.metric) {
                problems.push(format!(
                    "{place}: `{}` is not a recording rule of alerts.yml",
                    r.metric
                ));
            }
            // Recorded series carry the labels their rule keeps; accept the usual ones.
            available.extend(["journey", "holdout", "topic", "outcome"].map(String::from));
            continue;
        }
        match families.get(&r.metric) {
            None => problems.push(format!(
                "{place}: `{}` is not a metric of journey_kafka::metrics",
                r.metric
            )),
            Some(labels) => {
                for l in &r.selector_labels {
                    if !labels.contains(l) && !TARGET_LABELS.contains(&l.as_str()) {
                        problems.push(format!(
                            "{place}: `{}` has no label `{l}` (labels: {labels:?})",
                            r.metric
                        ));
                    }
                }
                available.extend(labels.iter().cloned());
            }
        }
    }
    for l in &refs.grouping_labels {
        if !available.contains(l) {
            problems.push(format!(
                "{place}: label `{l}` in `{query}` belongs to none of its metrics"
            ));
        }
    }
    problems
}

/// Every query of the dashboard: panel targets (rows included) and query variables.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(panels: &[serde_json::Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().expect("every target has an expr");
                out.push((format!("panel {title:?}"), expr.to_string()));
            }
            if let Some(inner) = p["panels"].as_array() {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dashboard["panels"].as_array().expect("panels"), &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .expect("query variable text");
            out.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    out
}

#[test]
fn the_query_scanner_finds_metrics_labels_and_groupings() {
    let refs = scan(
        r#"sum by (journey, holdout) (increase(journeyd_journey_goals_total{instance=~"$instance",journey="a,b"}[$lift_window])) / ignoring (holdout) up"#,
    );
    let metrics: Vec<&str> = refs.metrics.iter().map(|r| r.metric.as_str()).collect();
    assert_eq!(metrics, ["journeyd_journey_goals_total", "up"]);
    assert_eq!(refs.metrics[0].selector_labels, ["instance", "journey"]);
    assert_eq!(refs.grouping_labels, ["journey", "holdout", "holdout"]);
    let none = BTreeSet::new();
    assert!(check_query("t", "sum(journeyd_customers)", &none).is_empty());
    assert_eq!(
        check_query("t", "journeyd_nope_total", &none),
        ["t: `journeyd_nope_total` is not a metric of journey_kafka::metrics"]
    );
    assert_eq!(
        check_query(
            "t",
            r#"sum by (customer) (journeyd_customers{channel="x"})"#,
            &none
        )
        .len(),
        2
    );
}

#[test]
fn dashboard_parses_and_queries_only_defined_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/journeyd.json")).expect("dashboard is JSON");
    assert_eq!(dashboard["uid"], "journeyd");
    let recorded = recording_rules();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "only {} queries", queries.len());
    let problems: Vec<String> = queries
        .iter()
        .flat_map(|(place, q)| check_query(place, q, &recorded))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Panels: unique ids, inside the 24-column grid, each query on the datasource variable.
    let mut ids = BTreeSet::new();
    for p in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "duplicate id {}",
            p["id"]
        );
        let x = p["gridPos"]["x"].as_i64().unwrap();
        let w = p["gridPos"]["w"].as_i64().unwrap();
        assert!(x + w <= 24, "panel {} overflows the grid", p["title"]);
        if p["type"] != "row" {
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "panel {}",
                p["title"]
            );
        }
    }
}

#[test]
fn the_dashboard_shows_what_an_sre_needs() {
    let text = read("deploy/grafana/journeyd.json");
    for metric in [
        "journeyd_events_consumed_total",
        "journeyd_dead_letters_total",
        "journeyd_decisions_total",
        "journeyd_commands_total",
        "journeyd_journey_goals_total",
        "journeyd_journey_entries_total",
        "journeyd_consumer_lag",
        "journeyd_timer_lateness_seconds_bucket",
        "journeyd_transaction_commit_seconds_bucket",
        "journeyd_transaction_aborts_total",
        "journeyd_restore_seconds_bucket",
        "journeyd_ready",
        "journeyd_reloads_total",
    ] {
        assert!(
            text.contains(metric),
            "the dashboard does not show {metric}"
        );
    }
}

/// GitHub-style anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

fn runbook_anchors() -> BTreeSet<String> {
    read("docs/operations.md")
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn alert_rules_use_defined_metrics_and_link_existing_runbook_sections() {
    let docs = yaml_docs("deploy/prometheus/alerts.yml");
    let recorded = recording_rules();
    let anchors = runbook_anchors();
    let mut problems = Vec::new();
    let mut alerts = 0;
    for group in docs[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let expr = rule["expr"].as_str().expect("every rule has an expr");
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .expect("alert or record");
            problems.extend(check_query(name, expr, &recorded));
            if rule["alert"].as_str().is_none() {
                continue;
            }
            alerts += 1;
            if rule["for"].as_str().is_none() {
                problems.push(format!("{name}: no `for:`"));
            }
            if rule["labels"]["severity"].as_str().is_none() {
                problems.push(format!("{name}: no severity label"));
            }
            if rule["annotations"]["summary"].as_str().is_none() {
                problems.push(format!("{name}: no summary"));
            }
            match rule["annotations"]["runbook_url"].as_str() {
                Some(url) => match url.split_once("docs/operations.md#") {
                    Some((_, a)) if anchors.contains(a) => {}
                    _ => problems.push(format!(
                        "{name}: runbook_url {url} names no section of docs/operations.md"
                    )),
                },
                None => problems.push(format!("{name}: no runbook_url")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(alerts >= 6, "only {alerts} alerts");
}

#[test]
fn alert_unit_tests_feed_defined_series() {
    let docs = yaml_docs("deploy/prometheus/alerts_test.yml");
    let recorded = recording_rules();
    let mut problems = Vec::new();
    for test in docs[0]["tests"].as_vec().expect("tests") {
        for series in test["input_series"].as_vec().expect("input_series") {
            let s = series["series"].as_str().expect("series");
            problems.extend(check_query("alerts_test.yml", s, &recorded));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The documents of the Kubernetes manifest by kind.
fn manifests() -> BTreeMap<String, Vec<Yaml>> {
    let mut by_kind: BTreeMap<String, Vec<Yaml>> = BTreeMap::new();
    for doc in yaml_docs("deploy/kubernetes/journeyd.yaml") {
        let kind = doc["kind"].as_str().expect("kind").to_string();
        by_kind.entry(kind).or_default().push(doc);
    }
    by_kind
}

#[test]
fn the_statefulset_wires_probes_scraping_and_a_per_pod_transactional_id() {
    let m = manifests();
    let sts = &m["StatefulSet"][0];
    assert_eq!(sts["spec"]["serviceName"].as_str(), Some("journeyd"));
    let pod = &sts["spec"]["template"];
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
    let container = &pod["spec"]["containers"][0];
    let env = container["env"].as_vec().expect("env");
    let txn = env
        .iter()
        .find(|e| e["name"].as_str() == Some("JOURNEYD_KAFKA__TRANSACTIONAL_ID"))
        .expect("JOURNEYD_KAFKA__TRANSACTIONAL_ID is set");
    assert_eq!(
        txn["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.name")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    let port = container["ports"][0]["containerPort"]
        .as_i64()
        .expect("port");
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(port.to_string().as_str())
    );

    // The configuration listens on that port on every interface (probes come from the node).
    let config_text = m["ConfigMap"]
        .iter()
        .find_map(|c| c["data"]["journeyd.yaml"].as_str())
        .expect("a ConfigMap holds journeyd.yaml");
    let config = parse_manifest_config(config_text);
    assert_eq!(config.metrics.listen, format!("0.0.0.0:{port}"));
    assert_eq!(config.kafka.transactional_id.as_deref(), Some("journeyd-0"));

    let service = &m["Service"][0];
    assert_eq!(service["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(
        service["spec"]["selector"],
        sts["spec"]["selector"]["matchLabels"]
    );
    let pdb = &m["PodDisruptionBudget"][0];
    assert_eq!(pdb["spec"]["selector"], sts["spec"]["selector"]);
}

/// The environment the StatefulSet gives pod `journeyd-0`: plain values, the pod name for
/// `metadata.name`, and `<secret>/<key>` for a value from a Secret.
fn pod_env(sts: &Yaml) -> Vec<(String, String)> {
    let env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_vec()
        .expect("the container's env");
    env.iter()
        .map(|e| {
            let name = e["name"].as_str().expect("env name").to_string();
            let from = &e["valueFrom"];
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if from["fieldRef"]["fieldPath"].as_str() == Some("metadata.name") {
                "journeyd-0".to_string()
            } else if let Some(secret) = from["secretKeyRef"]["name"].as_str() {
                let key = from["secretKeyRef"]["key"].as_str().expect("secret key");
                format!("{secret}/{key}")
            } else {
                panic!("env {name}: unexpected source {from:?}")
            };
            (name, value)
        })
        .collect()
}

/// Parses the ConfigMap's configuration with the environment the StatefulSet gives the pod.
fn parse_manifest_config(text: &str) -> journey_spec::Config {
    let m = manifests();
    let env = pod_env(&m["StatefulSet"][0]);
    let file = Path::new("/etc/journeyd/config/journeyd.yaml");
    journey_spec::parse_config(text, file, &env).unwrap_or_else(|diags| {
        panic!(
            "ConfigMap journeyd.yaml is invalid:\n{}",
            Diagnostics::from(diags)
        )
    })
}

#[test]
fn the_configmap_configuration_and_journeys_validate() {
    let m = manifests();
    let maps = &m["ConfigMap"];
    let config_text = maps
        .iter()
        .find_map(|c| c["data"]["journeyd.yaml"].as_str())
        .unwrap();
    let config = parse_manifest_config(config_text);
    assert!(
        !config.inspect.enabled,
        "the inspection endpoint serves personal data: docs/operations.md says to keep it off"
    );
    let journeys = maps
        .iter()
        .find(|c| c["metadata"]["name"].as_str() == Some("journeyd-journeys"))
        .expect("the journeys ConfigMap");
    let data = journeys["data"].as_hash().expect("journey files");
    assert!(!data.is_empty());
    for (name, text) in data {
        let name = name.as_str().unwrap();
        let file = Path::new("/etc/journeyd/journeys").join(name);
        if let Err(diags) = journey_spec::parse_journey(text.as_str().unwrap(), &file, &config) {
            panic!("{name} is invalid:\n{}", Diagnostics::from(diags));
        }
    }
}

fn manifest_config() -> journey_spec::Config {
    let m = manifests();
    let text = m["ConfigMap"]
        .iter()
        .find_map(|c| c["data"]["journeyd.yaml"].as_str())
        .expect("a ConfigMap holds journeyd.yaml");
    parse_manifest_config(text)
}

#[test]
fn the_sasl_password_comes_from_a_secret_and_librdkafka_accepts_the_client_settings() {
    let m = manifests();
    let env = pod_env(&m["StatefulSet"][0]);
    let password = env
        .iter()
        .find(|(k, _)| k == "JOURNEYD_KAFKA__CLIENT__SASL_PASSWORD")
        .map(|(_, v)| v.as_str());
    assert_eq!(password, Some("journeyd-kafka/sasl-password"));
    // The example Secret has that key.
    let secret = yaml_docs("deploy/kubernetes/kafka-secret.example.yaml")
        .into_iter()
        .next()
        .expect("a Secret");
    assert_eq!(secret["kind"].as_str(), Some("Secret"));
    assert_eq!(secret["metadata"]["name"].as_str(), Some("journeyd-kafka"));
    assert!(!secret["stringData"]["sasl-password"].is_badvalue());

    let config = manifest_config();
    let client = &config.kafka.client;
    assert_eq!(
        client.get("sasl.password").map(String::as_str),
        Some("journeyd-kafka/sasl-password"),
        "the environment override sets sasl.password: {client:?}"
    );
    assert!(
        !config_text_has("sasl.password"),
        "no password written in the ConfigMap"
    );
    // librdkafka checks every property when a client is created (no connection is made): an
    // unknown property, or TLS/SASL support missing from this build, fails here.
    let mut props = rdkafka::ClientConfig::new();
    props.set("bootstrap.servers", "127.0.0.1:9");
    props.set("group.id", &config.kafka.group_id);
    for (k, v) in client {
        props.set(k, v);
    }
    if let Err(e) = props.create::<rdkafka::consumer::BaseConsumer>() {
        panic!("librdkafka rejects the ConfigMap's kafka.client settings: {e}");
    }
}

/// Whether the ConfigMap text itself mentions `key` (rather than the environment setting it).
fn config_text_has(key: &str) -> bool {
    let m = manifests();
    m["ConfigMap"]
        .iter()
        .filter_map(|c| c["data"]["journeyd.yaml"].as_str())
        .any(|t| {
            t.lines()
                .any(|l| l.trim_start().starts_with(&format!("{key}:")))
        })
}

/// `KEY value` instructions of the Dockerfile's last stage (the runtime image), continuation
/// lines joined.
fn dockerfile_runtime_stage() -> Vec<(String, String)> {
    let text = read("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let last_from = joined
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    let froms = joined.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "the Dockerfile is multi-stage");
    joined[last_from..]
        .iter()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_string(), v.trim().to_string())
        })
        .collect()
}

#[test]
fn the_dockerfile_and_the_statefulset_agree() {
    let stage = dockerfile_runtime_stage();
    let get = |key: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let m = manifests();
    let pod = &m["StatefulSet"][0]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // The image's user is the pod's (non-root) user.
    let user = *get("USER").last().expect("USER in the runtime stage");
    let uid = pod["securityContext"]["runAsUser"]
        .as_i64()
        .expect("runAsUser");
    let gid = pod["securityContext"]["runAsGroup"]
        .as_i64()
        .expect("runAsGroup");
    assert_eq!(user, format!("{uid}:{gid}"));
    assert_ne!(uid, 0);
    assert_eq!(pod["securityContext"]["fsGroup"].as_i64(), Some(gid));

    // `journeyd run` is the entrypoint; the StatefulSet passes only the arguments.
    assert_eq!(
        get("ENTRYPOINT"),
        ["[\"/usr/local/bin/journeyd\", \"run\"]"]
    );
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("an argument"))
        .collect();
    assert_eq!(args[0], "--config");
    let cmd = get("CMD");
    assert_eq!(
        cmd,
        [format!("[\"--config\", \"{}\"]", args[1]).as_str()],
        "the image's default arguments are the StatefulSet's"
    );

    // The configuration, journeys and state paths of the image are where the pod mounts them.
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_vec()
        .expect("volumeMounts")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    let config_path = Path::new(args[1]);
    assert_eq!(Some(Path::new(mounts["config"])), config_path.parent());
    assert!(get("COPY")
        .iter()
        .any(|c| c.ends_with(&format!(" {}", args[1]))));
    let config = manifest_config();
    assert_eq!(config.journeys_dir, Path::new(mounts["journeys"]));
    assert!(get("COPY")
        .iter()
        .any(|c| c.trim_end_matches('/').ends_with(mounts["journeys"])));
    let env = get("ENV").join(" ");
    assert!(
        env.contains(&format!(
            "JOURNEYD_STATE_DIR={}",
            config.state_dir.display()
        )),
        "the image's state_dir ({env}) is the pod's ({})",
        config.state_dir.display()
    );
    assert!(
        config.state_dir.starts_with(mounts["state"]),
        "state_dir {} is on the state volume ({})",
        config.state_dir.display(),
        mounts["state"]
    );
    assert!(get("WORKDIR").contains(&mounts["state"]));
    let claims = m["StatefulSet"][0]["spec"]["volumeClaimTemplates"]
        .as_vec()
        .expect("volumeClaimTemplates");
    assert!(claims
        .iter()
        .any(|c| c["metadata"]["name"].as_str() == Some("state")));
    assert!(
        env.contains("JOURNEYD_METRICS__LISTEN=0.0.0.0:"),
        "the image listens beyond loopback: {env}"
    );
    assert_eq!(config.metrics.listen, "0.0.0.0:9464");

    // Nothing from the build machine goes into the build context.
    let ignore = read(".dockerignore");
    for path in ["/target", "/.git", "/deploy/kafka/.cache"] {
        assert!(
            ignore.lines().any(|l| l.trim() == path),
            ".dockerignore misses {path}"
        );
    }
}

#[test]
fn the_runbook_lists_every_kafka_acl_journeyd_needs() {
    let doc = read("docs/operations.md");
    let start = doc.find("### Kafka ACLs").expect("a Kafka ACLs section");
    let section = &doc[start..];
    let section = &section[..section[4..].find("\n### ").map_or(section.len(), |i| i + 4)];
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| resource"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let has = |resource: &str, operations: &[&str]| {
        rows.iter()
            .any(|r| r[1] == resource && operations.iter().all(|op| r[3].contains(op)))
    };
    assert!(has("Topic", &["Read", "Describe"]), "input topics");
    assert!(has("Topic", &["Read", "Write", "Describe"]), "state topic");
    assert!(has("Topic", &["Write", "Describe"]), "output topics");
    assert!(has("Group", &["Read", "Describe"]), "consumer group");
    assert!(
        has("TransactionalId", &["Write", "Describe"]),
        "transactional ids"
    );
    assert!(has("Cluster", &["IdempotentWrite"]), "idempotent write");
    // Every topic of the example configuration is named in the table.
    let config = journey_spec::load_config(&repo().join("deploy/journeyd.yaml"))
        .unwrap_or_else(|d| panic!("deploy/journeyd.yaml: {}", Diagnostics::from(d)));
    let mut topics: Vec<String> = config.kafka.input_topics.clone();
    topics.push(config.kafka.state_topic.clone());
    topics.push(config.kafka.decisions_topic.clone());
    topics.push(config.kafka.dead_letter_topic.clone());
    topics.extend(config.channels.values().map(|c| c.topic.clone()));
    for topic in topics {
        assert!(
            section.contains(&format!("`{topic}`")) || section.contains(&format!(" {topic}")),
            "the ACL section does not name topic {topic}"
        );
    }
    assert!(section.contains(&format!("`{}`", config.kafka.group_id)));
}

#[test]
fn the_systemd_unit_reloads_with_sighup_and_restarts_on_failure() {
    let unit = read("deploy/systemd/journeyd.service");
    let keys: BTreeMap<&str, Vec<&str>> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .fold(BTreeMap::new(), |mut m, (k, v)| {
            m.entry(k.trim()).or_default().push(v.trim());
            m
        });
    assert_eq!(keys["ExecReload"], ["/bin/kill -HUP $MAINPID"]);
    assert_eq!(keys["Restart"], ["on-failure"]);
    assert!(keys["ExecStart"][0].contains(" run --config "));
    for hardening in [
        "NoNewPrivileges",
        "ProtectSystem",
        "PrivateTmp",
        "DynamicUser",
    ] {
        assert!(keys.contains_key(hardening), "missing {hardening}");
    }
}

#[test]
fn the_prometheus_check_script_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(repo().join("deploy/prometheus/check.sh")).unwrap();
    assert!(
        meta.permissions().mode() & 0o111 != 0,
        "check.sh is not executable"
    );
}
