//! `journeyd validate [--config FILE] [JOURNEYS_DIR]`: checks the configuration (including the
//! `kafka.client` properties against the linked librdkafka) and every journey, prints one `FILE:LINE:COLUMN: message` line per problem on stdout, and exits 0 when
//! everything is valid, 1 otherwise.

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
            (
                vec![format!(
                    "ok: {} {noun} valid ({})",
                    journeys.len(),
                    dir_label(&dir)
                )],
                true,
            )
        }
        Err(diagnostics) => (render(&diagnostics), false),
    }
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
