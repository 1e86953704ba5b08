//! `journeyd schema`: prints the JSON Schema (draft 2020-12) of journey files, for editors.

use std::process::ExitCode;

pub fn main() -> anyhow::Result<ExitCode> {
    println!(
        "{}",
        serde_json::to_string_pretty(&journey_spec::json_schema())?
    );
    Ok(ExitCode::SUCCESS)
}
