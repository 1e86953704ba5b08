//! Every event decoder on arbitrary bytes: an `Ok` or an `Err`, never a panic, a hang or
//! unbounded memory. Adding a decoder (a new input format) is one more line in `DECODERS`.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The size limit the decoders get (the default `kafka.max_event_bytes`).
const MAX_EVENT_BYTES: usize = 65_536;

/// Every input format's decoder, the result dropped: one line per format.
const DECODERS: &[fn(&[u8])] = &[
    // native JSON (docs/reliability.md)
    |bytes| drop(journey_engine::parse_event(bytes, MAX_EVENT_BYTES)),
];

fuzz_target!(|data: &[u8]| {
    for decode in DECODERS {
        decode(data);
    }
});
