//! A corrupt changelog record (garbage, a truncated value, an unknown format version, a key
//! that is not UTF-8) is skipped with a warning while a partition is restored: the customer
//! starts afresh instead of keeping an older state, and every other customer is restored.

use journey_engine::{Catalog, Effects, Engine};
use journey_kafka::restore::apply_record as apply;
use std::path::Path;
use std::sync::Arc;

const JOURNEY: &str = r#"id: welcome
version: 1
name: Welcome
trigger:
  event: signed_up
steps:
  - id: pause
    wait: 1d
  - id: hello
    send: { channels: [email], template: welcome_1 }
"#;

fn engine() -> Engine {
    let config = journey_spec::Config::example();
    let journey = journey_spec::parse_journey(JOURNEY, Path::new("welcome.yaml"), &config)
        .expect("valid journey");
    Engine::new(Arc::new(Catalog::new(&config, vec![journey])))
}

/// A customer waiting in the journey, as its changelog value.
fn waiting_state(customer: &str) -> Vec<u8> {
    let mut engine = engine();
    let event = journey_engine::parse_event(
        format!(
            r#"{{"event_id":"e-{customer}","customer_id":"{customer}","type":"signed_up","timestamp":"2026-03-01T10:00:00Z"}}"#
        )
        .as_bytes(),
        65_536,
    )
    .unwrap();
    let mut out = Effects::default();
    engine.handle(&event, event.timestamp, &mut out);
    engine.export_customer(customer).expect("a state to export")
}

#[test]
fn corrupt_records_are_skipped_and_the_rest_restores() {
    let good = waiting_state("good");
    let older = waiting_state("victim");
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut future_format = good.clone();
    future_format[0] = 0xEE;

    let mut engine = engine();
    assert!(apply(&mut engine, Some(b"good"), Some(&good)));
    // An older, valid state of `victim`, then corrupt values written after it.
    assert!(apply(&mut engine, Some(b"victim"), Some(&older)));
    assert_eq!(engine.pending_timers(), 2);
    for corrupt in [
        truncated.as_slice(),
        future_format.as_slice(),
        b"\x01garbage".as_slice(),
        b"".as_slice(),
    ] {
        assert!(!apply(&mut engine, Some(b"victim"), Some(corrupt)));
        // The older state is not kept: the later record replaced it, unreadable or not.
        assert_eq!(engine.export_customer("victim"), None);
        assert!(apply(&mut engine, Some(b"victim"), Some(&older)));
    }
    // A key that is not UTF-8 (no customer id) is skipped.
    assert!(!apply(&mut engine, Some(b"\xff\xfe"), Some(&good)));
    assert!(!apply(&mut engine, None, Some(&good)));
    // Everything readable is there, and the engine still works.
    assert_eq!(engine.customer_count(), 2);
    assert_eq!(engine.pending_timers(), 2);
    let due = engine.next_due().expect("timers restored");
    let mut out = Effects::default();
    engine.fire_due(due, &mut out);
    assert_eq!(
        out.commands.len(),
        0,
        "no address in the profile: no command"
    );
    assert!(!out.decisions.is_empty());
}
