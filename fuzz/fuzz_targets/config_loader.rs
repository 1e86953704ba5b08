//! The configuration loader on arbitrary text, with environment overrides: the input's lines
//! that start with `JOURNEYD_` and contain `=` are also given as variables, so the override
//! paths are explored too. Diagnostics or a configuration, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let env: Vec<(String, String)> = text
        .lines()
        .filter(|l| l.starts_with("JOURNEYD_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Err(diagnostics) = journey_spec::parse_config(&text, Path::new("journeyd.yaml"), &env) {
        for d in &diagnostics {
            let _ = d.to_string();
        }
    }
});
