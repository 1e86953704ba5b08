//! The `journeyd` binary: a thin command line over the spec, engine and Kafka crates.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod cmd_demo;
mod cmd_graph;
mod cmd_leave_group;
mod cmd_report;
mod cmd_run;
mod cmd_schema;
mod cmd_simulate;
mod cmd_test;
mod cmd_validate;
mod flow;
mod logging;
mod summary;
mod virtual_clock;

/// journeyd: journey orchestration driven by Kafka events.
#[derive(Parser, Debug)]
#[command(name = "journeyd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check the configuration and every journey; print FILE:LINE:COLUMN: message per error.
    Validate(cmd_validate::Args),
    /// Run the engine over events from a JSON-lines file, with a virtual clock and no Kafka.
    Simulate(cmd_simulate::Args),
    /// Run the Kafka service.
    Run(cmd_run::Args),
    /// Run the real runtime against an in-process Kafka with a generated event stream.
    Demo(cmd_demo::Args),
    /// Print a JSON Schema: of journey files (default), journey test files, the configuration,
    /// events, commands or decisions.
    Schema(cmd_schema::Args),
    /// Print a journey as a Mermaid flowchart, Graphviz DOT or an SVG drawing.
    Graph(cmd_graph::Args),
    /// Write a self-contained HTML backtest report of the journeys over a file of events.
    Report(cmd_report::Args),
    /// Run journey tests (`*.test.yaml`) through the engine with a virtual clock.
    Test(cmd_test::Args),
    /// Hand a removed instance's partitions to the others at once (scale-in).
    LeaveGroup(cmd_leave_group::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => cmd_validate::main(args),
        Command::Simulate(args) => cmd_simulate::main(args),
        Command::Run(args) => cmd_run::main(args),
        Command::Demo(args) => cmd_demo::main(args),
        Command::Schema(args) => cmd_schema::main(args),
        Command::Graph(args) => cmd_graph::main(args),
        Command::Test(args) => cmd_test::main(args),
        Command::Report(args) => cmd_report::main(args),
        Command::LeaveGroup(args) => cmd_leave_group::main(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("journeyd: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Default configuration file looked for when `--config` is not given.
pub(crate) fn default_config_path() -> PathBuf {
    PathBuf::from("journeyd.yaml")
}
