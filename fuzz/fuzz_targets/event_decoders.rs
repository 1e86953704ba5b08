//! Every event decoder on arbitrary bytes: an `Ok` or an `Err`, never a panic, a hang or
//! unbounded memory. Adding a decoder (a new input format) is one more line in `DECODERS`.
#![no_main]

use journey_engine::formats::Format;
use libfuzzer_sys::fuzz_target;

/// The size limit the decoders get (the default `kafka.max_event_bytes`).
const MAX_EVENT_BYTES: usize = 65_536;

/// Every input format's decoder, the result dropped: one line per format.
const DECODERS: &[fn(&[u8])] = &[
    // native JSON (docs/reliability.md)
    |bytes| drop(journey_engine::parse_event(bytes, MAX_EVENT_BYTES)),
    // the Segment Spec (track, identify, page, screen; the rest refused)
    |bytes| drop(decode(Format::Segment, bytes, &[])),
    // CloudEvents 1.0, structured mode (the whole event in the value)
    |bytes| drop(decode(CLOUDEVENTS, bytes, &[])),
    // CloudEvents 1.0, Kafka binary mode (attributes in `ce_*` headers, `data` in the value)
    |bytes| drop(decode(CLOUDEVENTS, bytes, BINARY_HEADERS)),
];

const CLOUDEVENTS: Format<'static> = Format::CloudEvents {
    customer_id_attribute: "subject",
};

/// The attributes of a valid binary-mode record, so the fuzzer reaches the `data` decoding.
const BINARY_HEADERS: &[(&str, &[u8])] = &[
    ("ce_specversion", b"1.0"),
    ("ce_id", b"e-1"),
    ("ce_type", b"cart_updated"),
    ("ce_source", b"/web"),
    ("ce_subject", b"c-1"),
    ("ce_time", b"2026-11-29T10:00:00Z"),
    ("content-type", b"application/json"),
];

fn decode(
    format: Format<'_>,
    bytes: &[u8],
    headers: &[(&str, &[u8])],
) -> Result<journey_engine::Event, journey_engine::EventError> {
    journey_engine::decode_event(format, bytes, headers, MAX_EVENT_BYTES)
}

fuzz_target!(|data: &[u8]| {
    for decode in DECODERS {
        decode(data);
    }
});
