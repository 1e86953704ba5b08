//! `journeyd schema`: prints a JSON Schema (draft 2020-12) for editors: of journey files by
//! default, of journey test files (`*.test.yaml`) with `--kind test`.

use std::process::ExitCode;

/// Arguments of `journeyd schema`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which files the schema describes.
    #[arg(long, value_enum, default_value = "journey")]
    pub kind: Kind,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    Journey,
    Test,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let schema = match args.kind {
        Kind::Journey => journey_spec::json_schema(),
        Kind::Test => journey_spec::testfile::test_json_schema(),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
