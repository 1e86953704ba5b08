//! `journeyd schema [--kind KIND]`: prints a JSON Schema (draft 2020-12): of journey files (the
//! default, for editors), of journey test files (`*.test.yaml`), or of the configuration, events,
//! send commands or decision records (docs/reference/cli.md).

use std::process::ExitCode;

/// Which format's schema to print.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// A journey file.
    #[default]
    Journey,
    /// A journey test file (`*.test.yaml`).
    Test,
    /// The configuration file.
    Config,
    /// A behavioural event (native format).
    Event,
    /// A send command.
    Command,
    /// A decision record.
    Decision,
}

/// Arguments of `journeyd schema`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which schema to print.
    #[arg(long, value_enum, default_value_t = Kind::Journey)]
    pub kind: Kind,
}

/// The schema of `kind`.
pub fn schema(kind: Kind) -> serde_json::Value {
    use journey_spec::contracts;
    match kind {
        Kind::Journey => journey_spec::json_schema(),
        Kind::Test => journey_spec::testfile::test_json_schema(),
        Kind::Config => contracts::config_schema(),
        Kind::Event => contracts::event_schema(),
        Kind::Command => contracts::command_schema(),
        Kind::Decision => contracts::decision_schema(),
    }
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(&schema(args.kind))?);
    Ok(ExitCode::SUCCESS)
}
