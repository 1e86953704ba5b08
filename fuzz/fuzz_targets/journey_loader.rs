//! The journey loader (YAML parsing, validation, diagnostics) on arbitrary text, against the
//! example configuration: diagnostics or a journey, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn config() -> &'static journey_spec::Config {
    static CONFIG: OnceLock<journey_spec::Config> = OnceLock::new();
    CONFIG.get_or_init(journey_spec::Config::example)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match journey_spec::parse_journey(&text, Path::new("fuzz.yaml"), config()) {
        Ok(_) => {}
        Err(diagnostics) => {
            // Every diagnostic renders (positions and messages are well-formed).
            for d in &diagnostics {
                let _ = d.to_string();
            }
        }
    }
});
