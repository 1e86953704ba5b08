//! `journeyd schema`.

use std::process::ExitCode;

pub fn main() -> anyhow::Result<ExitCode> {
    anyhow::bail!("`schema` is not available yet")
}
