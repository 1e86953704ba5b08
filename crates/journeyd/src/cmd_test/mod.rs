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
//!
//! This module finds the files and reports the results (text and JUnit); what a file names is
//! loaded and checked in `load`, a test is run and matched in `run`, and failures are worded in
//! `describe`.

mod describe;
mod load;
mod run;
#[cfg(test)]
mod tests;

pub(crate) use describe::describe_decision;
use load::{check_references, load};
use run::run_test;

use anyhow::Context;
use journey_engine::{Catalog, Decision, SendCommand};
use journey_spec::testfile;
use journey_spec::{Config, Diagnostic, Journey};
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

/// One record of a run: a decision, with the command sent with it for `sent` decisions.
pub(crate) struct Record {
    decision: Decision,
    command: Option<SendCommand>,
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
