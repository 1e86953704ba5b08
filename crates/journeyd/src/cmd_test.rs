//! `journeyd test [PATH...]`: runs journey test files (`*.test.yaml`, docs/journeys.md "Testing
//! journeys") through the real engine under the virtual clock of `simulate`
//! ([`crate::virtual_clock`]) and checks their expectations.
//!
//! Each test runs on a fresh engine: the customers' profiles and consents become
//! `profile_updated` / `consent_updated` events at the test's start, then the test's events are
//! handled in order, then timers fire up to the test's end (its `until`, or the latest time an
//! expectation names). Every send command and decision is recorded on one timeline, a command
//! paired with the `sent` decision made with it.
//!
//! Exit status: 0 when every test passes, 1 when one fails, 2 when a test file is invalid
//! (`FILE:LINE:COLUMN: message`, unknown journeys, steps, channels and templates included).

use crate::virtual_clock::VirtualClock;
use anyhow::Context;
use chrono::{DateTime, Utc};
use journey_engine::DecisionKind as K;
use journey_engine::{format_time, Catalog, Decision, Engine, Event, Reason, SendCommand};
use journey_spec::testfile::{
    self, DecisionExpect, Expectation, Located, NoSendExpect, Order, SendExpect, TestCase,
    TestFile, Window,
};
use journey_spec::{Action, Config, Diagnostic, Journey};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `journeyd test`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Test files, or directories searched for `*.test.yaml` (default: the configuration's
    /// journeys directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Configuration for test files that name none (default: ./journeyd.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Entry point of `journeyd test`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let default_config = args
        .config
        .clone()
        .unwrap_or_else(crate::default_config_path);
    let roots = if args.paths.is_empty() {
        let config = journey_spec::load_config(&default_config).map_err(|ds| {
            anyhow::anyhow!(
                "no PATH given and no usable configuration to find the journeys directory:\n{}",
                journey_spec::Diagnostics(ds)
            )
        })?;
        vec![config.journeys_dir]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for root in &roots {
        collect_test_files(root, &mut files)
            .with_context(|| format!("cannot list test files in {}", root.display()))?;
    }
    if files.is_empty() {
        anyhow::bail!(
            "no test files (*.test.yaml) found in {}",
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut results: Vec<FileResult> = Vec::new();
    let mut invalid = false;
    for file in &files {
        match run_file(file, &default_config) {
            Ok(result) => results.push(result),
            Err(diagnostics) => {
                invalid = true;
                for d in &diagnostics {
                    eprintln!("{d}");
                }
                results.push(FileResult {
                    path: file.clone(),
                    invalid: diagnostics.iter().map(ToString::to_string).collect(),
                    tests: Vec::new(),
                });
            }
        }
    }
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    for file in &results {
        if !file.invalid.is_empty() {
            let _ = writeln!(
                out,
                "{}: INVALID (see the errors above)",
                file.path.display()
            );
            continue;
        }
        let _ = writeln!(out, "{}", file.path.display());
        for test in &file.tests {
            if test.failures.is_empty() {
                passed += 1;
                let _ = writeln!(out, "  ok    {}", test.name);
            } else {
                failed += 1;
                let _ = writeln!(out, "  FAIL  {}", test.name);
                for line in test.report().lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
    }
    let invalid_files = results.iter().filter(|f| !f.invalid.is_empty()).count();
    let _ = write!(out, "{passed} passed, {failed} failed");
    if invalid_files > 0 {
        let _ = write!(out, ", {invalid_files} invalid test files");
    }
    out.push('\n');
    print!("{out}");
    if let Some(path) = &args.junit {
        let xml = junit(&results)?;
        std::fs::write(path, xml)
            .with_context(|| format!("cannot write JUnit report {}", path.display()))?;
    }
    Ok(if invalid {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `path` itself when it is a file, else every `*.test.yaml` under it (sorted, hidden
/// directories and `target` skipped).
fn collect_test_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if entry.is_dir() {
            if name != "target" {
                collect_test_files(&entry, out)?;
            }
        } else if journey_spec::is_test_file(&name) {
            out.push(entry);
        }
    }
    Ok(())
}

struct FileResult {
    path: PathBuf,
    invalid: Vec<String>,
    tests: Vec<TestResult>,
}

/// One expectation that was not met, or one send nobody expected.
struct Failure {
    /// `line N: send email cart_reminder_1 at ...`
    expected: String,
    /// What happened instead, one line each.
    got: Vec<String>,
}

struct TestResult {
    name: String,
    failures: Vec<Failure>,
    /// The decisions of the run, readable, for the customers the failures concern.
    explanation: Vec<String>,
}

impl TestResult {
    /// The expected-vs-got diff, then the decisions that explain what happened.
    fn report(&self) -> String {
        let mut o = String::new();
        for f in &self.failures {
            let _ = writeln!(o, "- expected {}", f.expected);
            for g in &f.got {
                let _ = writeln!(o, "+ got      {g}");
            }
        }
        let _ = writeln!(o, "what happened:");
        if self.explanation.is_empty() {
            let _ = writeln!(o, "  (no decisions)");
        }
        for line in &self.explanation {
            let _ = writeln!(o, "  {line}");
        }
        o
    }
}

/// The journeys a test file runs with, with what expectations may name.
struct Loaded {
    catalog: Arc<Catalog>,
    journeys: Vec<Journey>,
    config: Config,
}

fn run_file(path: &Path, default_config: &Path) -> Result<FileResult, Vec<Diagnostic>> {
    let file = testfile::load_test_file(path)?;
    let loaded = load(&file, default_config)?;
    check_references(&file, &loaded)?;
    let tests = file
        .tests
        .iter()
        .map(|test| run_test(test, &loaded))
        .collect();
    Ok(FileResult {
        path: path.to_path_buf(),
        invalid: Vec::new(),
        tests,
    })
}

fn load(file: &TestFile, default_config: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let config_path = match &file.config {
        Some(c) => {
            if !c.value.is_file() {
                return Err(vec![Diagnostic::new(
                    &file.path,
                    c.pos.line,
                    c.pos.column,
                    format!("configuration file {} not found", c.value.display()),
                )]);
            }
            c.value.clone()
        }
        None => default_config.to_path_buf(),
    };
    let config = journey_spec::load_config(&config_path)?;
    let journeys = match &file.journeys {
        None => journey_spec::load_journeys_dir(&config.journeys_dir, &config)?,
        Some(list) => {
            let mut journeys = Vec::new();
            let mut diagnostics = Vec::new();
            for j in list {
                match std::fs::read_to_string(&j.value) {
                    Ok(text) => match journey_spec::parse_journey(&text, &j.value, &config) {
                        Ok(journey) => journeys.push(journey),
                        Err(ds) => diagnostics.extend(ds),
                    },
                    Err(e) => diagnostics.push(Diagnostic::new(
                        &file.path,
                        j.pos.line,
                        j.pos.column,
                        format!("cannot read journey file {}: {e}", j.value.display()),
                    )),
                }
            }
            if !diagnostics.is_empty() {
                return Err(diagnostics);
            }
            journeys
        }
    };
    Ok(Loaded {
        catalog: Arc::new(Catalog::new(&config, journeys.clone())),
        journeys,
        config,
    })
}

/// Unknown journeys, steps, channels and templates in expectations (and channels in consents)
/// are errors at their position, never silent non-matches.
fn check_references(file: &TestFile, loaded: &Loaded) -> Result<(), Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let mut err = |pos: testfile::Pos, message: String| {
        diagnostics.push(Diagnostic::new(&file.path, pos.line, pos.column, message));
    };
    let channels: Vec<&str> = loaded.config.channels.keys().map(String::as_str).collect();
    let journey_ids: Vec<&str> = loaded.journeys.iter().map(|j| j.id.as_str()).collect();
    let journey = |id: &str| loaded.journeys.iter().find(|j| j.id == id);
    let templates_of = |j: &Journey| -> Vec<String> {
        j.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Send(send) => Some(send.template.clone()),
                _ => None,
            })
            .collect()
    };
    let hint = |word: &str, options: &[&str]| match journey_spec::values::suggest(
        word,
        options.iter().copied(),
    ) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    for test in &file.tests {
        for c in &test.customers {
            for (channel, _) in &c.consent {
                if !channels.contains(&channel.value.as_str()) {
                    err(
                        channel.pos,
                        format!(
                            "channel `{}` is not declared in the configuration{}",
                            channel.value,
                            hint(&channel.value, &channels)
                        ),
                    );
                }
            }
        }
        for e in &test.expect {
            let (j, step, channel, template) = match e {
                Expectation::Send(s) => (&s.journey, &s.step, &s.channel, &s.template),
                Expectation::Decision(d) => (&d.journey, &d.step, &d.channel, &None),
                Expectation::NoSend(n) => (&n.journey, &None, &n.channel, &n.template),
            };
            let mut scope: Vec<&Journey> = loaded.journeys.iter().collect();
            if let Some(j) = j {
                match journey(&j.value) {
                    Some(found) => scope = vec![found],
                    None => {
                        err(
                            j.pos,
                            format!(
                                "journey `{}` is not loaded by this test file{}",
                                j.value,
                                hint(&j.value, &journey_ids)
                            ),
                        );
                        continue;
                    }
                }
            }
            if let Some(c) = channel {
                if !channels.contains(&c.value.as_str()) {
                    err(
                        c.pos,
                        format!(
                            "channel `{}` is not declared in the configuration{}",
                            c.value,
                            hint(&c.value, &channels)
                        ),
                    );
                }
            }
            if let Some(s) = step {
                let steps: Vec<&str> = scope
                    .iter()
                    .flat_map(|j| j.steps.iter().map(|s| s.id.as_str()))
                    .collect();
                if !steps.contains(&s.value.as_str()) {
                    err(
                        s.pos,
                        format!(
                            "step `{}` is in no loaded journey{}",
                            s.value,
                            hint(&s.value, &steps)
                        ),
                    );
                }
            }
            if let Some(t) = template {
                let templates: Vec<String> = scope.iter().flat_map(|j| templates_of(j)).collect();
                let refs: Vec<&str> = templates.iter().map(String::as_str).collect();
                if !refs.contains(&t.value.as_str()) {
                    err(
                        t.pos,
                        format!(
                            "template `{}` is sent by no loaded journey{}",
                            t.value,
                            hint(&t.value, &refs)
                        ),
                    );
                }
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(diagnostics)
    }
}

/// One record of a run: a decision, with the command sent with it for `sent` decisions.
pub(crate) struct Record {
    decision: Decision,
    command: Option<SendCommand>,
}

/// Runs one test on a fresh engine and returns every record in the order made.
fn execute(test: &TestCase, loaded: &Loaded) -> anyhow::Result<Vec<Record>> {
    let mut clock = VirtualClock::new(Engine::new(loaded.catalog.clone()));
    let mut records: Vec<Record> = Vec::new();
    let mut sink = |effects: &journey_engine::Effects| -> anyhow::Result<()> {
        let mut commands = effects.commands.iter();
        for d in &effects.decisions {
            let command = if d.kind == K::Sent {
                commands.next().cloned()
            } else {
                None
            };
            records.push(Record {
                decision: d.clone(),
                command,
            });
        }
        Ok(())
    };
    let setup_at = test
        .events
        .first()
        .map_or(test.start, |e| e.at.min(test.start));
    let mut events: Vec<Event> = Vec::new();
    for c in &test.customers {
        if !c.profile.is_empty() {
            events.push(Event {
                event_id: format!("setup-profile-{}", c.id),
                customer_id: c.id.clone(),
                event_type: "profile_updated".into(),
                timestamp: setup_at,
                properties: c.profile.clone(),
            });
        }
        for (channel, granted) in &c.consent {
            let props = json!({
                "channel": channel.value,
                "status": if *granted { "granted" } else { "withdrawn" }
            });
            events.push(Event {
                event_id: format!("setup-consent-{}-{}", c.id, channel.value),
                customer_id: c.id.clone(),
                event_type: "consent_updated".into(),
                timestamp: setup_at,
                properties: props.as_object().cloned().unwrap_or_default(),
            });
        }
    }
    for e in &test.events {
        events.push(Event {
            event_id: e.event_id.clone(),
            customer_id: e.customer.clone(),
            event_type: e.event_type.clone(),
            timestamp: e.at,
            properties: e.properties.clone(),
        });
    }
    for event in &events {
        clock.handle(event, &mut sink)?;
    }
    clock.advance_to(test.until, &mut sink)?;
    Ok(records)
}

fn run_test(test: &TestCase, loaded: &Loaded) -> TestResult {
    let records = match execute(test, loaded) {
        Ok(records) => records,
        Err(e) => {
            return TestResult {
                name: test.name.clone(),
                failures: vec![Failure {
                    expected: "the run to finish".into(),
                    got: vec![format!("{e:#}")],
                }],
                explanation: Vec::new(),
            }
        }
    };
    let mut used = vec![false; records.len()];
    let mut cursor = 0usize;
    let mut failures = Vec::new();
    let mut concerned: BTreeSet<String> = BTreeSet::new();
    for e in &test.expect {
        let line = e.pos().line;
        match e {
            Expectation::NoSend(n) => {
                let hits: Vec<String> = records
                    .iter()
                    .filter(|r| r.command.is_some() && no_send_hit(n, r))
                    .map(describe_send)
                    .collect();
                if !hits.is_empty() {
                    if let Some(c) = &n.customer {
                        concerned.insert(c.value.clone());
                    }
                    failures.push(Failure {
                        expected: format!("line {line}: {}", show_no_send(n)),
                        got: hits,
                    });
                }
            }
            Expectation::Send(_) | Expectation::Decision(_) => {
                let matches = |r: &Record| match e {
                    Expectation::Send(s) => send_matches(s, r),
                    Expectation::Decision(d) => decision_matches(d, r),
                    Expectation::NoSend(_) => false,
                };
                let from = if test.order == Order::Sequence {
                    cursor
                } else {
                    0
                };
                let found = (from..records.len()).find(|&i| !used[i] && matches(&records[i]));
                match found {
                    Some(i) => {
                        used[i] = true;
                        if test.order == Order::Sequence {
                            cursor = i + 1;
                        }
                    }
                    None => {
                        let (expected, customer) = match e {
                            Expectation::Send(s) => (show_send(s), s.customer.as_ref()),
                            Expectation::Decision(d) => (show_decision(d), d.customer.as_ref()),
                            Expectation::NoSend(_) => unreachable!("handled above"),
                        };
                        if let Some(c) = customer {
                            concerned.insert(c.value.clone());
                        }
                        let mut got = closest(e, &records);
                        if test.order == Order::Sequence {
                            if let Some(i) = (0..from).find(|&i| !used[i] && matches(&records[i])) {
                                got.insert(
                                    0,
                                    format!(
                                        "{} (matches, but before the expectation above it; \
                                         use `order: set` if order does not matter)",
                                        describe(&records[i])
                                    ),
                                );
                            }
                        }
                        failures.push(Failure {
                            expected: format!("line {line}: {expected}"),
                            got,
                        });
                    }
                }
            }
        }
    }
    if test.no_other_sends {
        for (i, r) in records.iter().enumerate() {
            if r.command.is_some() && !used[i] {
                concerned.insert(r.decision.customer_id.clone());
                failures.push(Failure {
                    expected: "no other sends (no_other_sends: true)".into(),
                    got: vec![describe_send(r)],
                });
            }
        }
    }
    let explanation = if failures.is_empty() {
        Vec::new()
    } else {
        records
            .iter()
            .filter(|r| concerned.is_empty() || concerned.contains(&r.decision.customer_id))
            .map(describe)
            .collect()
    };
    TestResult {
        name: test.name.clone(),
        failures,
        explanation,
    }
}

fn in_window(w: &Option<Located<Window>>, t: DateTime<Utc>) -> bool {
    w.as_ref()
        .is_none_or(|w| w.value.from <= t && t <= w.value.to)
}

fn eq_opt(want: &Option<Located<String>>, got: Option<&str>) -> bool {
    want.as_ref().is_none_or(|w| Some(w.value.as_str()) == got)
}

fn send_matches(s: &SendExpect, r: &Record) -> bool {
    let Some(c) = &r.command else { return false };
    eq_opt(&s.customer, Some(&c.customer_id))
        && eq_opt(&s.channel, Some(&c.channel))
        && eq_opt(&s.template, Some(&c.template))
        && eq_opt(&s.journey, Some(&c.journey_id))
        && eq_opt(&s.step, Some(&c.step_id))
        && in_window(&s.window, c.issued_at)
        && s.data.iter().all(|(k, v)| data_eq(c.data.get(k), v))
}

/// Data values compare as JSON, numbers by value (`59` equals `59.0`).
fn data_eq(got: Option<&Value>, want: &Value) -> bool {
    match (got, want) {
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

fn decision_matches(e: &DecisionExpect, r: &Record) -> bool {
    let d = &r.decision;
    d.kind.as_str() == e.kind.value
        && eq_opt(&e.customer, Some(&d.customer_id))
        && e.reason
            .as_ref()
            .is_none_or(|x| d.reason.as_ref().map(Reason::as_str) == Some(x.as_str()))
        && eq_opt(&e.journey, d.journey_id.as_deref())
        && eq_opt(&e.step, d.step_id.as_deref())
        && eq_opt(&e.channel, d.channel.as_deref())
        && e.branch
            .as_ref()
            .is_none_or(|x| d.branch.as_ref() == Some(x))
        && e.holdout.is_none_or(|x| d.holdout == Some(x))
        && in_window(&e.window, d.at)
}

fn no_send_hit(n: &NoSendExpect, r: &Record) -> bool {
    let Some(c) = &r.command else { return false };
    eq_opt(&n.customer, Some(&c.customer_id))
        && eq_opt(&n.channel, Some(&c.channel))
        && eq_opt(&n.template, Some(&c.template))
        && eq_opt(&n.journey, Some(&c.journey_id))
        && n.window.value.from <= c.issued_at
        && c.issued_at <= n.window.value.to
}

/// The records closest to a failed expectation: same kind of record, most fields in common.
fn closest(e: &Expectation, records: &[Record]) -> Vec<String> {
    let score = |r: &Record| -> Option<usize> {
        match e {
            Expectation::Send(s) => {
                let c = r.command.as_ref()?;
                if !eq_opt(&s.customer, Some(&c.customer_id)) {
                    return None;
                }
                Some(
                    [
                        eq_opt(&s.channel, Some(&c.channel)),
                        eq_opt(&s.template, Some(&c.template)),
                        eq_opt(&s.journey, Some(&c.journey_id)),
                        eq_opt(&s.step, Some(&c.step_id)),
                        in_window(&s.window, c.issued_at),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count(),
                )
            }
            Expectation::Decision(x) => {
                let d = &r.decision;
                if !eq_opt(&x.customer, Some(&d.customer_id)) || d.kind.as_str() != x.kind.value {
                    return None;
                }
                Some(
                    [
                        x.reason.as_ref().is_none_or(|v| {
                            d.reason.as_ref().map(Reason::as_str) == Some(v.as_str())
                        }),
                        eq_opt(&x.journey, d.journey_id.as_deref()),
                        eq_opt(&x.step, d.step_id.as_deref()),
                        eq_opt(&x.channel, d.channel.as_deref()),
                        in_window(&x.window, d.at),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count(),
                )
            }
            Expectation::NoSend(_) => None,
        }
    };
    let scored: Vec<(usize, &Record)> = records
        .iter()
        .filter_map(|r| score(r).map(|s| (s, r)))
        .collect();
    let Some(best) = scored.iter().map(|(s, _)| *s).max() else {
        return vec![match e {
            Expectation::Send(_) => "no send at all".to_string(),
            _ => "no decision of that kind".to_string(),
        }];
    };
    scored
        .iter()
        .filter(|(s, _)| *s == best)
        .take(3)
        .map(|(_, r)| describe(r))
        .collect()
}

fn at_text(w: &Option<Located<Window>>) -> String {
    match w {
        None => String::new(),
        Some(w) if w.value.from == w.value.to => format!(" at {}", format_time(w.value.from)),
        Some(w) => format!(
            " between {} and {}",
            format_time(w.value.from),
            format_time(w.value.to)
        ),
    }
}

fn opt(label: &str, v: &Option<Located<String>>) -> String {
    v.as_ref()
        .map(|v| format!(" {label}{}", v.value))
        .unwrap_or_default()
}

fn show_send(s: &SendExpect) -> String {
    let mut o = "send".to_string();
    o += &opt("", &s.channel);
    o += &opt("", &s.template);
    o += &opt("to ", &s.customer);
    if s.journey.is_some() || s.step.is_some() {
        let _ = write!(
            o,
            " ({}{})",
            s.journey.as_ref().map_or("*", |j| j.value.as_str()),
            s.step
                .as_ref()
                .map(|x| format!("/{}", x.value))
                .unwrap_or_default()
        );
    }
    o += &at_text(&s.window);
    if !s.data.is_empty() {
        let _ = write!(o, " with data {}", Value::Object(s.data.clone()));
    }
    o
}

fn show_decision(d: &DecisionExpect) -> String {
    let mut o = format!("decision {}", d.kind.value);
    o += &opt("", &d.channel);
    if let Some(r) = &d.reason {
        let _ = write!(o, " {r}");
    }
    if let Some(b) = &d.branch {
        let _ = write!(o, " arm {b}");
    }
    o += &opt("for ", &d.customer);
    o += &opt("in ", &d.journey);
    o += &opt("at step ", &d.step);
    if let Some(h) = d.holdout {
        let _ = write!(o, " (holdout {h})");
    }
    o += &at_text(&d.window);
    o
}

fn show_no_send(n: &NoSendExpect) -> String {
    let mut o = "no send".to_string();
    o += &opt("on ", &n.channel);
    o += &opt("of ", &n.template);
    o += &opt("to ", &n.customer);
    o += &opt("from ", &n.journey);
    let _ = write!(
        o,
        " between {} and {}",
        format_time(n.window.value.from),
        format_time(n.window.value.to)
    );
    o
}

fn where_of(d: &Decision) -> String {
    match (&d.journey_id, &d.step_id) {
        (Some(j), Some(s)) => format!("{j}/{s}"),
        (Some(j), None) => j.clone(),
        _ => "-".to_string(),
    }
}

fn describe_send(r: &Record) -> String {
    describe(r)
}

/// A record in words: `2026-11-23T11:15:00Z  c-ada  cart_abandonment/first_reminder  skipped
/// sms: frequency_cap:sms_daily`.
pub(crate) fn describe(r: &Record) -> String {
    let d = &r.decision;
    let text = match d.kind {
        K::Sent => match &r.command {
            Some(c) => format!(
                "sent {} {}{}",
                c.channel,
                c.template,
                if c.data.is_empty() {
                    String::new()
                } else {
                    format!(" {}", Value::Object(c.data.clone()))
                }
            ),
            None => format!("sent {}", d.channel.as_deref().unwrap_or("?")),
        },
        _ => describe_decision(d),
    };
    format!(
        "{}  {}  {}  {text}",
        format_time(d.at),
        d.customer_id,
        where_of(d)
    )
}

/// A decision's kind and details in words (without time, customer and place).
pub(crate) fn describe_decision(d: &Decision) -> String {
    let reason = d.reason.as_ref().map_or("", Reason::as_str);
    let channel = d.channel.as_deref().unwrap_or("");
    match d.kind {
        K::Entered if d.holdout == Some(true) => "entered (held out: will receive nothing)".into(),
        K::Entered => "entered".into(),
        K::EntrySuppressed => format!("not entered: {reason}"),
        K::Sent => format!("sent {channel}"),
        K::SkippedChannel => format!("skipped {channel}: {reason}"),
        K::Deferred => format!(
            "deferred {channel} until {} ({reason})",
            d.until.map(format_time).unwrap_or_default()
        ),
        K::NoChannel => "no channel left: nothing sent".into(),
        K::Holdout => "held out: nothing sent".into(),
        K::Split => format!("split: arm {}", d.branch.as_deref().unwrap_or("?")),
        K::Exited if !reason.is_empty() => format!("exited ({reason})"),
        K::Exited => format!("exited on event {}", d.event_id.as_deref().unwrap_or("?")),
        K::Goal => format!(
            "goal reached{}",
            if d.holdout == Some(true) {
                " (held out)"
            } else {
                ""
            }
        ),
        K::Completed => "completed".into(),
        K::DuplicateEvent => format!(
            "duplicate event {} ignored",
            d.event_id.as_deref().unwrap_or("?")
        ),
        K::BadTimezone => format!("bad time zone `{reason}`: default used"),
    }
}

fn junit(results: &[FileResult]) -> anyhow::Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase as JCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("journeyd test");
    for file in results {
        let mut suite = TestSuite::new(file.path.display().to_string());
        if !file.invalid.is_empty() {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message("invalid test file");
            status.set_description(file.invalid.join("\n"));
            suite.add_test_case(JCase::new("(test file)", status));
        }
        for test in &file.tests {
            let status = if test.failures.is_empty() {
                TestCaseStatus::success()
            } else {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(format!(
                    "{} expectation(s) not met: {}",
                    test.failures.len(),
                    test.failures[0].expected
                ));
                status.set_description(test.report());
                status
            };
            let mut case = JCase::new(test.name.clone(), status);
            case.set_classname(file.path.display().to_string());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: &'static str) -> Decision {
        Decision {
            at: DateTime::parse_from_rfc3339("2026-11-23T11:15:00Z")
                .unwrap()
                .with_timezone(&Utc),
            customer_id: "c-ada".into(),
            journey_id: Some("cart_abandonment".into()),
            journey_version: Some(3),
            step_id: Some("first_reminder".into()),
            kind: kind.parse().expect("a decision kind"),
            channel: Some("sms".into()),
            reason: Some(Reason::FrequencyCap("frequency_cap:sms_daily".into())),
            event_id: None,
            holdout: Some(false),
            until: None,
            branch: None,
            command_id: None,
        }
    }

    #[test]
    fn decisions_read_as_sentences() {
        let r = Record {
            decision: decision("skipped_channel"),
            command: None,
        };
        assert_eq!(
            describe(&r),
            "2026-11-23T11:15:00Z  c-ada  cart_abandonment/first_reminder  skipped sms: \
             frequency_cap:sms_daily"
        );
        let mut d = decision("entered");
        d.holdout = Some(true);
        assert_eq!(
            describe_decision(&d),
            "entered (held out: will receive nothing)"
        );
    }

    #[test]
    fn numbers_in_data_compare_by_value() {
        assert!(data_eq(Some(&json!(59.0)), &json!(59)));
        assert!(!data_eq(Some(&json!("59")), &json!(59)));
        assert!(!data_eq(None, &json!(1)));
    }
}
