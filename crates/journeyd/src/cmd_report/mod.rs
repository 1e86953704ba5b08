//! `journeyd report`: a backtest of the journeys over a file of events, as one self-contained
//! HTML page (no network: styles, diagrams and charts are inlined). See docs/journeys.md,
//! "Backtest report".
//!
//! The events run through the engine exactly as in `simulate` (same virtual clock,
//! [`crate::virtual_clock`]); the report is built from the decision records:
//! - per journey: entered, held out, suppressed at entry by reason, exited, goal, completed, and
//!   the goal rate of treatment vs holdout with a 95% confidence interval of the difference;
//! - the journey's flow (the `graph --format svg` drawing) with customers per step and edge.
//!   Steps that record no decision (waits, branches) are counted along the only path through
//!   such steps between two recorded ones (or to the end), so a figure on a wait or a branch is
//!   inferred, not observed;
//! - sends per channel over time (an inline SVG chart) and per template, channel skips by
//!   reason, quiet-hour deferrals, customers held back by each frequency cap;
//! - with `--baseline-journeys DIR`, the same events through another journey set: counts side
//!   by side, the number of customers whose sends differ, and a few of them with their decisions.
//!   The engine keeps no state across customers, so those few are re-run alone.
//!
//! Bad event lines are counted and the first few listed with their line numbers; they never
//! stop the report.
//!
//! This module holds the command and the figures a run gathers; reading the events is in
//! `read`, counting the decisions in `collect`, the page in `html` and its chart in `chart`.

mod chart;
mod collect;
mod html;
mod read;
#[cfg(test)]
mod tests;

use crate::flow::Flow;
use anyhow::Context;
use chrono::{DateTime, Utc};
use html::render;
use journey_engine::Decision;
use read::run;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

/// Bad lines listed one by one (the rest are counted).
const BAD_LINES_LISTED: usize = 10;
/// Customers whose sends differ that are shown with their decisions.
const DIFFERING_SHOWN: usize = 5;

/// Arguments of `journeyd report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Engine configuration file (its `journeys_dir` is the journey set reported on).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Events, one JSON object a line (as for `simulate`).
    #[arg(long, value_name = "FILE.jsonl")]
    pub events: PathBuf,
    /// After the last event, fire the timers due up to this instant.
    #[arg(long, value_name = "RFC3339", value_parser = crate::cmd_simulate::parse_instant)]
    pub until: Option<DateTime<Utc>>,
    /// Where to write the HTML report.
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,
    /// Another journeys directory to compare with, over the same events and configuration.
    #[arg(long, value_name = "DIR")]
    pub baseline_journeys: Option<PathBuf>,
}

/// Entry point of `journeyd report`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let config = match journey_spec::load_config(&args.config) {
        Ok(c) => c,
        Err(ds) => return Ok(diagnostics(&ds)),
    };
    let journeys = match journey_spec::load_journeys_dir(&config.journeys_dir, &config) {
        Ok(j) => j,
        Err(ds) => return Ok(diagnostics(&ds)),
    };
    let baseline = match &args.baseline_journeys {
        Some(dir) => match journey_spec::load_journeys_dir(dir, &config) {
            Ok(j) => Some((dir.clone(), j)),
            Err(ds) => return Ok(diagnostics(&ds)),
        },
        None => None,
    };
    let started = std::time::Instant::now();
    let current = run(&config, &journeys, &args.events, args.until, None)?;
    let compared = match &baseline {
        Some((dir, baseline_journeys)) => {
            let base = run(&config, baseline_journeys, &args.events, args.until, None)?;
            let mut differing: Vec<&String> = current
                .customer_sends
                .iter()
                .filter(|(c, h)| base.customer_sends.get(*c) != Some(h))
                .map(|(c, _)| c)
                .chain(
                    base.customer_sends
                        .keys()
                        .filter(|c| !current.customer_sends.contains_key(*c)),
                )
                .collect();
            differing.sort();
            differing.dedup();
            let count = differing.len();
            let shown: HashSet<String> = differing
                .iter()
                .take(DIFFERING_SHOWN)
                .map(|c| c.to_string())
                .collect();
            let mine = run(&config, &journeys, &args.events, args.until, Some(&shown))?;
            let theirs = run(
                &config,
                baseline_journeys,
                &args.events,
                args.until,
                Some(&shown),
            )?;
            Some(Comparison {
                dir: dir.clone(),
                base,
                differing: count,
                current_records: mine.kept,
                base_records: theirs.kept,
            })
        }
        None => None,
    };
    let html = render(&args, &config, &current, compared.as_ref());
    std::fs::write(&args.out, &html)
        .with_context(|| format!("cannot write report {}", args.out.display()))?;
    eprintln!(
        "report: {} events ({} bad lines), {} customers, {} journeys in {:.1}s; wrote {} ({} bytes)",
        current.events,
        current.bad_lines,
        current.customers.len(),
        current.journeys.len(),
        started.elapsed().as_secs_f64(),
        args.out.display(),
        html.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn diagnostics(ds: &[journey_spec::Diagnostic]) -> ExitCode {
    for d in ds {
        eprintln!("{d}");
    }
    ExitCode::from(1)
}

struct Comparison {
    dir: PathBuf,
    base: Run,
    differing: usize,
    current_records: Vec<Kept>,
    base_records: Vec<Kept>,
}

/// A decision kept for display (with the template for sends).
struct Kept {
    decision: Decision,
    template: Option<String>,
}

/// Counts about one journey.
struct JourneyStats {
    id: String,
    version: u32,
    name: Option<String>,
    flow: Flow,
    /// Flow node index by key.
    index: HashMap<String, usize>,
    /// Steps that record no decision when passed (waits, `wait_for`, branches).
    silent: Vec<bool>,
    /// Outgoing (edge index, target node) per node.
    out: Vec<Vec<(usize, usize)>>,
    paths: HashMap<(usize, usize), Option<Vec<usize>>>,
    node_counts: Vec<u64>,
    edge_counts: Vec<u64>,
    entered: u64,
    entered_holdout: u64,
    suppressed: BTreeMap<String, u64>,
    exited: u64,
    goals: u64,
    goals_holdout: u64,
    completed: u64,
    sends: u64,
    held_sends: u64,
}

/// Everything one run over the events produced.
struct Run {
    journeys: Vec<JourneyStats>,
    by_id: HashMap<String, usize>,
    events: u64,
    bad_lines: u64,
    /// (line number, message) of the first bad lines.
    bad_listed: Vec<(usize, String)>,
    backwards: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    customers: HashSet<String>,
    /// Sends per (channel, hour since the epoch).
    sends_per_hour: BTreeMap<(String, i64), u64>,
    /// Sends per (journey, template, channel).
    templates: BTreeMap<(String, String, String), u64>,
    skips: BTreeMap<String, u64>,
    deferred: u64,
    no_channel: u64,
    /// Customers held back at least once per frequency cap.
    capped: BTreeMap<String, HashSet<String>>,
    /// Per customer: (journey, node) where each of their instances stands.
    position: HashMap<String, Vec<(u32, u32)>>,
    /// Per customer: a hash of their sends (journey, step, template, channel, time) in order.
    customer_sends: HashMap<String, u64>,
    /// Decisions of the customers asked for (only with `only`).
    kept: Vec<Kept>,
}
