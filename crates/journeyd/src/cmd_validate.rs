//! `journeyd validate [--config FILE] [JOURNEYS_DIR]`: checks the configuration (including the
//! `kafka.client` properties against the linked librdkafka) and every journey, prints one
//! `FILE:LINE:COLUMN: message` line per problem on stdout, and exits 0 when everything is valid,
//! 1 otherwise. For a valid set it also prints a `note:` line for every
//! `contains` condition, saying how it matches (an item of a list, or text inside text; see
//! docs/journeys.md, "Conditions"), since the journey alone cannot tell which the data holds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file [default: journeyd.yaml in the current directory].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Journeys directory; overrides the configuration's `journeys_dir`.
    #[arg(value_name = "JOURNEYS_DIR")]
    journeys_dir: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let (lines, valid) = run(&args);
    for line in lines {
        println!("{line}");
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The lines to print and whether everything is valid.
fn run(args: &Args) -> (Vec<String>, bool) {
    let config_path = match &args.config {
        Some(path) => path.clone(),
        None => {
            let default = crate::default_config_path();
            if !default.exists() {
                return (
                    vec![format!(
                        "{}: no configuration file in the current directory; pass one with \
                         --config FILE",
                        default.display()
                    )],
                    false,
                );
            }
            default
        }
    };
    let config = match journey_spec::load_config(&config_path) {
        Ok(config) => config,
        // Journeys are checked against the configuration (declared channels), so a broken
        // configuration stops here.
        Err(diagnostics) => return (render(&diagnostics), false),
    };
    // librdkafka's own check of `kafka.client` (names, values, what this build can speak).
    let client = render(&journey_spec::check_client_properties_file(
        &config_path,
        &journey_kafka::clients::property_problems,
    ));
    let (lines, valid) = journeys(args, &config);
    if client.is_empty() {
        (lines, valid)
    } else {
        let journey_problems = if valid { Vec::new() } else { lines };
        (client.into_iter().chain(journey_problems).collect(), false)
    }
}

/// The journeys' lines and whether they are valid.
fn journeys(args: &Args, config: &journey_spec::Config) -> (Vec<String>, bool) {
    let dir = args
        .journeys_dir
        .clone()
        .unwrap_or_else(|| config.journeys_dir.clone());
    match journey_spec::load_journeys_dir(&dir, config) {
        Ok(journeys) => {
            let noun = if journeys.len() == 1 {
                "journey"
            } else {
                "journeys"
            };
            let mut lines = vec![format!(
                "ok: {} {noun} valid ({})",
                journeys.len(),
                dir_label(&dir)
            )];
            for journey in &journeys {
                lines.extend(contains_notes(journey));
            }
            (lines, true)
        }
        Err(diagnostics) => (render(&diagnostics), false),
    }
}

/// One note per `contains` comparison in a journey: which match applies depends on the value
/// the path finds at run time, so both are spelled out.
fn contains_notes(journey: &journey_spec::Journey) -> Vec<String> {
    use journey_spec::{Action, Condition, Op};
    fn walk(c: &Condition, found: &mut Vec<(String, serde_json::Value)>) {
        match c {
            Condition::Compare { path, comparisons } => {
                for (op, value) in comparisons {
                    if *op == Op::Contains {
                        found.push((path.text.clone(), value.clone()));
                    }
                }
            }
            Condition::Did { .. } => {}
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| walk(c, found)),
            Condition::Not(c) => walk(c, found),
        }
    }
    let mut found = Vec::new();
    let conditions = journey
        .trigger
        .condition
        .iter()
        .chain(journey.entry.unless.iter())
        .chain(
            journey
                .exit_when
                .iter()
                .filter_map(|x| x.condition.as_ref()),
        )
        .chain(journey.goal.iter().filter_map(|g| g.condition.as_ref()));
    for c in conditions {
        walk(c, &mut found);
    }
    for step in &journey.steps {
        match &step.action {
            Action::WaitFor(w) => w.condition.iter().for_each(|c| walk(c, &mut found)),
            Action::Branch(cases) => cases
                .iter()
                .filter_map(|b| b.when.as_ref())
                .for_each(|c| walk(c, &mut found)),
            _ => {}
        }
    }
    let mut seen = Vec::new();
    found.retain(|f| {
        let new = !seen.contains(f);
        seen.push(f.clone());
        new
    });
    found
        .into_iter()
        .map(|(path, value)| {
            format!(
                "note: {}: `{path}` contains {value} is true when {path} is a list \
                 holding exactly that item, or text that contains it (a substring)",
                journey.source.display()
            )
        })
        .collect()
}

fn render(diagnostics: &[journey_spec::Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(ToString::to_string).collect()
}

/// The directory as given, with a trailing `/` so it reads as a directory.
fn dir_label(dir: &Path) -> String {
    let text = dir.display().to_string();
    if text.ends_with('/') {
        text
    } else {
        format!("{text}/")
    }
}
