//! Unit tests of the test-file loader.

use super::load::fmt_time;
use super::*;
use std::path::Path;

fn parse(text: &str) -> Result<TestFile, Vec<String>> {
    parse_test_file(text, Path::new("dir/a.test.yaml"))
        .map_err(|ds| ds.into_iter().map(|d| d.to_string()).collect())
}

const GOOD: &str = "\
config: ../deploy/journeyd.yaml
start: 2026-11-23T10:00:00Z
tests:
  - name: reminder
    customers:
      - id: c-ada
        profile: { email: ada@example.com }
        consent: { sms: granted, push: false }
    events:
      - { at: +0, type: cart_updated, properties: { cart_value: 59 } }
      - { at: +30m, type: page_viewed }
    expect:
      - send: { channel: email, template: cart_reminder_1, at: +1h, data: { campaign: spring } }
      - decision: { kind: skipped_channel, channel: sms, reason: no_consent }
      - no_send: { channel: sms, until: +1d2h }
";

#[test]
fn a_good_file_loads_with_times_resolved() {
    let file = parse(GOOD).unwrap();
    assert_eq!(
        file.config.unwrap().value,
        Path::new("dir/../deploy/journeyd.yaml")
    );
    let test = &file.tests[0];
    assert_eq!(test.customers[0].consent.len(), 2);
    assert!(test.customers[0].consent[0].1);
    assert_eq!(test.events[1].event_id, "t1-e2");
    assert_eq!(test.events[1].customer, "c-ada");
    assert_eq!(fmt_time(test.events[1].at), "2026-11-23T10:30:00Z");
    let Expectation::NoSend(n) = &test.expect[2] else {
        panic!()
    };
    assert_eq!(fmt_time(n.window.value.to), "2026-11-24T12:00:00Z");
    assert_eq!(
        fmt_time(test.until),
        "2026-12-23T10:30:00Z",
        "without `until`, 30 days after the last event"
    );
    assert_eq!(test.order, Order::Sequence);
}

#[test]
fn times() {
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let t = |s: &str| parse_time(s, start).map(fmt_time);
    assert_eq!(t("+1d2h30m").unwrap(), "2026-01-02T02:30:00Z");
    assert_eq!(t("+0").unwrap(), "2026-01-01T00:00:00Z");
    assert_eq!(
        t("2026-11-27T09:00:00+01:00").unwrap(),
        "2026-11-27T08:00:00Z"
    );
    for bad in ["+", "+2", "+2x", "+h", "2h", "tomorrow", "+1.5h"] {
        assert!(t(bad).is_err(), "{bad}");
    }
}

#[test]
fn problems_are_positioned() {
    let text = GOOD
        .replace("kind: skipped_channel", "kind: skiped_channel")
        .replace("at: +30m", "at: soon")
        .replace(
            "  - name: reminder\n",
            "  - name: reminder\n    colour: red\n",
        );
    assert_eq!(
        parse(&text).unwrap_err(),
        [
            "dir/a.test.yaml:5:5: unknown key `colour` in test",
            "dir/a.test.yaml:12:15: bad time `soon`: expected an offset from the start such \
                 as `+2h`, or an RFC 3339 instant such as `2026-11-27T09:00:00Z`",
            "dir/a.test.yaml:15:27: bad decision kind `skiped_channel`: expected `entered`, \
                 `entry_suppressed`, `sent`, `skipped_channel`, `deferred`, `no_channel`, \
                 `holdout`, `split`, `exited`, `goal`, `completed`, `duplicate_event` or \
                 `bad_timezone`; did you mean `skipped_channel`?",
        ]
    );
}

#[test]
fn unreachable_expectations_and_backward_events_are_invalid() {
    let text = GOOD.replace("at: +1h,", "at: 2026-11-23T09:00:00Z,");
    let errors = parse(&text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "dir/a.test.yaml:13:64: this expectation can never be met: its time \
                 (2026-11-23T09:00:00Z) is before the test's first event (2026-11-23T10:00:00Z)"
        ),
        "{errors:?}"
    );
    let text = GOOD.replace("at: +30m", "at: 2026-11-23T09:59:00Z");
    assert_eq!(
        parse(&text).unwrap_err(),
        [
            "dir/a.test.yaml:11:9: events must be listed in time order: this one \
              (2026-11-23T09:59:00Z) is before the one on line 10 (2026-11-23T10:00:00Z)"
        ]
    );
}

#[test]
fn several_customers_need_names() {
    let text = GOOD.replace(
        "        consent: { sms: granted, push: false }\n",
        "        consent: { sms: granted, push: false }\n      - id: c-bob\n",
    );
    let errors = parse(&text).unwrap_err();
    assert_eq!(
        errors,
        [
            "dir/a.test.yaml:11:9: missing `customer`: the test has several customers, say \
                 which one",
            "dir/a.test.yaml:12:9: missing `customer`: the test has several customers, say \
                 which one"
        ]
    );
}

#[test]
fn the_schema_accepts_the_example() {
    let schema = test_json_schema();
    assert_eq!(schema["$defs"]["test"]["required"][0], "name");
}
