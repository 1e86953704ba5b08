//! Unit tests of journey loading: every rule with its exact message and position.
//!
//! Over 600 lines on purpose: one test per rule with its exact messages, kept together so that
//! the language's diagnostics read as one list.

use super::*;
use crate::values;
use std::path::Path;

/// Three lines of header; `steps:` is line 4, the first step starts on line 5.
const HEAD: &str = "id: j\nversion: 1\ntrigger: { event: e }\n";

fn check(text: &str) -> Result<Journey, Vec<String>> {
    parse_journey(text, Path::new("j.yaml"), &Config::example()).map_err(|ds| {
        ds.iter()
            .map(|d| {
                assert_eq!(d.file, Path::new("j.yaml"));
                format!("{}:{}: {}", d.line, d.column, d.message)
            })
            .collect()
    })
}

fn errors(text: &str) -> Vec<String> {
    match check(text) {
        Ok(_) => panic!("expected errors in:\n{text}"),
        Err(errors) => errors,
    }
}

/// Errors of a journey made of HEAD and the given steps.
fn step_errors(steps: &str) -> Vec<String> {
    errors(&format!("{HEAD}steps:\n{steps}"))
}

fn steps_ok(steps: &str) -> Journey {
    let text = format!("{HEAD}steps:\n{steps}");
    check(&text).unwrap_or_else(|e| panic!("{e:#?}\n{text}"))
}

/// Errors of a journey whose first step is a branch on the given condition.
fn when_errors(condition: &str) -> Vec<String> {
    step_errors(&format!(
        "  - id: b\n    branch:\n      - when: {condition}\n        next: end\n"
    ))
}

fn when_ok(condition: &str) -> Condition {
    let j = steps_ok(&format!(
        "  - id: b\n    branch:\n      - when: {condition}\n        next: end\n"
    ));
    match &j.steps[0].action {
        Action::Branch(cases) => cases[0].when.clone().unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn minimal_journey_has_defaults() {
    let j = steps_ok("  - id: pause\n    wait: 1h\n");
    assert_eq!(j.id, "j");
    assert_eq!(j.version, 1);
    assert_eq!(j.name, None);
    assert_eq!(j.status, Status::Active);
    assert_eq!(j.category, Category::Marketing);
    assert_eq!(j.priority, 0);
    assert_eq!(j.entry, Entry::default());
    assert_eq!(j.entry.reentry, Reentry::Once);
    assert_eq!(j.entry.holdout.basis_points, 0);
    assert!(j.exit_when.is_empty());
    assert_eq!(j.goal, None);
    assert_eq!(j.source, Path::new("j.yaml"));
    assert_eq!(
        j.steps,
        [Step {
            id: "pause".into(),
            action: Action::Wait(Duration::from_secs(3600)),
            next: None
        }]
    );
}

#[test]
fn top_level_values() {
    let j = check(
        "id: j2\nversion: 7\nname: Welcome\nstatus: draining\ncategory: transactional\n\
         priority: -3\ntrigger: { event: e, where: { path: event.type, eq: e } }\n\
         entry: { reentry: { after: 2w }, holdout: 12.5%, unless: { did: x } }\n\
         exit_when: [{ event: a }, { event: b, where: { path: event.properties.n, gt: 1 } }]\n\
         goal: { event: g, within: 3d, exit: false }\nsteps: [{ id: s, wait: 1m }]\n",
    )
    .unwrap();
    assert_eq!(j.name.as_deref(), Some("Welcome"));
    assert_eq!(j.status, Status::Draining);
    assert_eq!(j.category, Category::Transactional);
    assert_eq!(j.priority, -3);
    assert_eq!(
        j.entry.reentry,
        Reentry::After(Duration::from_secs(14 * 86_400))
    );
    assert_eq!(j.entry.holdout.basis_points, 1250);
    assert_eq!(
        j.entry.unless,
        Some(Condition::Did {
            event: "x".into(),
            within: None
        })
    );
    assert_eq!(j.exit_when.len(), 2);
    assert_eq!(j.exit_when[1].event, "b");
    assert!(j.exit_when[1].condition.is_some());
    let goal = j.goal.unwrap();
    assert_eq!(goal.within, Some(Duration::from_secs(3 * 86_400)));
    assert!(!goal.exit);
    let always = check(&format!(
        "{HEAD}entry: {{ reentry: always }}\nsteps: [{{ id: s, wait: 1m }}]\n"
    ))
    .unwrap();
    assert_eq!(always.entry.reentry, Reentry::Always);
    let goal = check(&format!(
        "{HEAD}goal: {{ event: g }}\nsteps: [{{ id: s, wait: 1m }}]\n"
    ))
    .unwrap()
    .goal
    .unwrap();
    assert!(goal.exit, "goal exit defaults to true");
}

#[test]
fn yaml_syntax_error() {
    assert_eq!(
        errors("id: x\n  bad: [1\n"),
        ["2:6: invalid YAML: mapping values are not allowed in this context"]
    );
    assert_eq!(
        errors("id: \"x\n"),
        ["1:5: invalid YAML: while scanning a quoted scalar, found unexpected end of stream"]
    );
}

#[test]
fn file_shape() {
    assert_eq!(errors(""), ["1:1: empty journey file"]);
    assert_eq!(errors("# only a comment\n"), ["1:1: empty journey file"]);
    assert_eq!(
        errors("- a\n- b\n"),
        ["1:1: a journey file must be a mapping"]
    );
    assert_eq!(
        errors(&format!(
            "{HEAD}steps: [{{ id: s, wait: 1m }}]\n---\nid: other\n"
        )),
        ["5:1: expected a single YAML document"]
    );
    assert_eq!(
        errors(&format!(
            "{HEAD}version: 2\nsteps: [{{ id: s, wait: 1m }}]\n"
        )),
        ["4:1: duplicate key `version`"]
    );
}

#[test]
fn unknown_keys_with_and_without_suggestion() {
    assert_eq!(
        errors(&format!(
            "{HEAD}stesp: []\ncolour: red\nsteps: [{{ id: s, wait: 1m }}]\n"
        )),
        [
            "4:1: unknown key `stesp` in journey; did you mean `steps`?",
            "5:1: unknown key `colour` in journey",
        ]
    );
    assert_eq!(
        step_errors("  - id: s\n    send: { channels: [email], tempalte: t, template: t }\n"),
        ["6:32: unknown key `tempalte` in send; did you mean `template`?"]
    );
    assert_eq!(
        step_errors("  - id: s\n    wiat: 1h\n    wait: 1h\n"),
        ["6:5: unknown key `wiat` in step; did you mean `wait`?"]
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        errors("name: x\n"),
        [
            "1:1: missing required key `id` in journey",
            "1:1: missing required key `version` in journey",
            "1:1: missing required key `trigger` in journey",
            "1:1: missing required key `steps` in journey",
        ]
    );
    assert_eq!(
        errors("id: j\nversion: 1\ntrigger: { where: { did: x } }\nsteps:\n  - wait: 1h\n"),
        [
            "3:10: missing required key `event` in trigger",
            "5:5: missing required key `id` in step",
        ]
    );
    assert_eq!(
        step_errors("  - id: s\n    send:\n      channels: [email]\n"),
        ["7:7: missing required key `template` in send"]
    );
}

#[test]
fn ids_and_versions() {
    assert_eq!(
        errors("id: Cart-1\nversion: 0\ntrigger: { event: e }\nsteps: [{ id: s, wait: 1m }]\n"),
        [
            "1:5: bad journey id `Cart-1`: use only lowercase letters, digits and `_`",
            "2:10: `version` must be a positive integer",
        ]
    );
    for version in ["-1", "1.5", "x", "4294967296"] {
        assert_eq!(
            errors(&format!(
                "id: j\nversion: {version}\ntrigger: {{ event: e }}\nsteps: [{{ id: s, wait: 1m }}]\n"
            )),
            ["2:10: `version` must be a positive integer"],
            "{version}"
        );
    }
    // A number is a fine id: its text matches `[a-z0-9_]+`.
    let j = check("id: 123\nversion: 1\ntrigger: { event: e }\nsteps: [{ id: s, wait: 1m }]\n");
    assert_eq!(j.unwrap().id, "123");
}

#[test]
fn enums_and_priority() {
    let text = format!(
        "{HEAD}status: actve\ncategory: promo\npriority: high\nsteps: [{{ id: s, wait: 1m }}]\n"
    );
    assert_eq!(
        errors(&text),
        [
            "4:9: bad status `actve`: expected `active`, `paused` or `draining`; did you mean `active`?",
            "5:11: bad category `promo`: expected `marketing` or `transactional`",
            "6:11: `priority` must be an integer",
        ]
    );
}

#[test]
fn entry_rules() {
    let text = format!(
        "{HEAD}entry:\n  reentry: sometimes\n  holdout: 12.345%\n  unless: {{ path: event.type, eq: x }}\nsteps: [{{ id: s, wait: 1m }}]\n"
    );
    assert_eq!(
        errors(&text),
        [
            "5:12: bad reentry `sometimes`: expected `once`, `always` or `{ after: DURATION }`",
            "6:12: bad percentage `12.345%`: expected 0% to 100% with at most two decimals, like `10%` or `12.5%`",
            "7:19: path `event.type` is not allowed here: `event.` paths only work in trigger, exit_when, goal and wait_for conditions",
        ]
    );
    let text = format!("{HEAD}entry: {{ reentry: {{ after: 1.5d }}, holdout: 101% }}\nsteps: [{{ id: s, wait: 1m }}]\n");
    assert_eq!(
        errors(&text),
        [
            "4:28: bad duration `1.5d`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`",
            "4:45: bad percentage `101%`: expected 0% to 100% with at most two decimals, like `10%` or `12.5%`",
        ]
    );
    let text =
        format!("{HEAD}entry: {{ reentry: {{ afer: 1d }} }}\nsteps: [{{ id: s, wait: 1m }}]\n");
    assert_eq!(
        errors(&text),
        [
            "4:19: missing required key `after` in reentry",
            "4:21: unknown key `afer` in reentry; did you mean `after`?",
        ]
    );
}

#[test]
fn exit_when_and_goal_rules() {
    let text = format!(
        "{HEAD}exit_when:\n  - event: \"\"\n  - evnt: x\n  - done\ngoal:\n  event: g\n  within: 7 days\n  exit: yes\nsteps: [{{ id: s, wait: 1m }}]\n"
    );
    assert_eq!(
        errors(&text),
        [
            "5:12: `event` must not be empty",
            "6:5: unknown key `evnt` in exit_when entry; did you mean `event`?",
            "6:5: missing required key `event` in exit_when entry",
            "7:5: each exit_when entry must be a mapping",
            "10:11: bad duration `7 days`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`",
            "11:9: `exit` must be true or false",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{HEAD}exit_when: {{ event: x }}\nsteps: [{{ id: s, wait: 1m }}]\n"
        )),
        ["4:12: `exit_when` must be a list"]
    );
    assert_eq!(
        errors(&format!("{HEAD}goal:\nsteps: [{{ id: s, wait: 1m }}]\n")),
        ["4:1: `goal` must be a mapping"]
    );
}

#[test]
fn step_list_shape() {
    assert_eq!(
        errors(&format!("{HEAD}steps: []\n")),
        ["4:8: `steps` must list at least one step"]
    );
    assert_eq!(
        errors(&format!("{HEAD}steps: {{ id: s }}\n")),
        ["4:8: `steps` must be a list"]
    );
    assert_eq!(
        step_errors("  - wait\n"),
        ["5:5: each step must be a mapping"]
    );
}

#[test]
fn step_ids() {
    assert_eq!(
        step_errors("  - id: a\n    wait: 1h\n  - id: a\n    wait: 1h\n  - id: end\n    wait: 1h\n  - id: B\n    wait: 1h\n"),
        [
            "7:9: duplicate step id `a` (first at line 5)",
            "9:9: step id `end` is reserved",
            "11:9: bad step id `B`: use only lowercase letters, digits and `_`",
        ]
    );
}

#[test]
fn exactly_one_action() {
    assert_eq!(
        step_errors("  - id: a\n  - id: b\n    wait: 1h\n    send: { channels: [email], template: t }\n"),
        [
            "5:5: step `a` has no action; expected one of `wait`, `wait_until`, `wait_for`, `send`, `branch` or `split`",
            "8:5: step has more than one action (`wait` and `send`); a step does exactly one thing",
        ]
    );
    assert_eq!(
        step_errors("  - next: end\n"),
        [
            "5:5: missing required key `id` in step",
            "5:5: step has no action; expected one of `wait`, `wait_until`, `wait_for`, `send`, `branch` or `split`",
        ]
    );
}

#[test]
fn references() {
    assert_eq!(
        step_errors(
            "  - id: reminder\n    wait: 1h\n    next: remnder\n  - id: w\n    wait_for: { event: c, timeout: 1d, on_event: nowhere, on_timeout: [x] }\n"
        ),
        [
            "7:11: `next` names unknown step `remnder`; did you mean `reminder`?",
            "9:50: `on_event` names unknown step `nowhere`",
            "9:71: `on_timeout` must be a step id or `end`",
        ]
    );
    let j =
        steps_ok("  - id: a\n    wait: 1h\n    next: b\n  - id: b\n    wait: 1h\n    next: end\n");
    assert_eq!(j.steps[0].next, Some(Next::Step("b".into())));
    assert_eq!(j.steps[1].next, Some(Next::End));
}

#[test]
fn wait_for_for_send_names_a_send_step() {
    let j = steps_ok(
        "  - id: first\n    send: { channels: [email], template: t }\n  - id: w\n    wait_for: { event: message_opened, for_send: first, timeout: 1d }\n",
    );
    match &j.steps[1].action {
        Action::WaitFor(w) => assert_eq!(w.for_send.as_deref(), Some("first")),
        other => panic!("not a wait_for: {other:?}"),
    }
    assert_eq!(
        step_errors(
            "  - id: first\n    send: { channels: [email], template: t }\n  - id: w\n    wait_for: { event: message_opened, for_send: frist, timeout: 1d }\n  - id: x\n    wait_for: { event: message_opened, for_send: w, timeout: 1d }\n  - id: y\n    wait_for: { event: message_opened, for_send: Bad-Id, timeout: 1d }\n"
        ),
        [
            "8:50: `for_send` names unknown step `frist`; did you mean `first`?",
            "10:50: `for_send` must name a `send` step; `w` is a `wait_for` step",
            "12:50: bad `for_send` step id `Bad-Id`: use only lowercase letters, digits and `_`",
        ]
    );
}

#[test]
fn unreachable_steps() {
    assert_eq!(
        step_errors(
            "  - id: a\n    wait: 1h\n    next: end\n  - id: b\n    wait: 1h\n  - id: c\n    wait: 1h\n"
        ),
        [
            "8:5: step `b` cannot be reached from the first step",
            "10:5: step `c` cannot be reached from the first step",
        ]
    );
    // Branch without an else case falls through; with one it does not.
    steps_ok(
        "  - id: a\n    branch:\n      - { when: { path: profile.x, eq: 1 }, next: c }\n  - id: b\n    wait: 1h\n  - id: c\n    wait: 1h\n",
    );
    assert_eq!(
        step_errors(
            "  - id: a\n    branch:\n      - { when: { path: profile.x, eq: 1 }, next: c }\n      - next: end\n  - id: b\n    wait: 1h\n  - id: c\n    wait: 1h\n"
        ),
        ["9:5: step `b` cannot be reached from the first step"]
    );
    // wait_for with both targets set does not fall through; a `next` on it does.
    assert_eq!(
        step_errors(
            "  - id: a\n    wait_for: { event: x, timeout: 1d, on_event: c, on_timeout: end }\n  - id: b\n    wait: 1h\n  - id: c\n    wait: 1h\n"
        ),
        ["7:5: step `b` cannot be reached from the first step"]
    );
    steps_ok("  - id: a\n    wait_for: { event: x, timeout: 1d, on_event: c }\n  - id: b\n    wait: 1h\n  - id: c\n    wait: 1h\n");
    // Split arms are edges.
    steps_ok(
        "  - id: a\n    split:\n      - { name: x, percent: 50, next: c }\n      - { name: y, percent: 50%, next: b }\n  - id: b\n    wait: 1h\n    next: end\n  - id: c\n    wait: 1h\n",
    );
}

#[test]
fn loops_without_a_wait() {
    assert_eq!(
        step_errors(
            "  - id: a\n    send: { channels: [email], template: t }\n  - id: b\n    branch:\n      - { when: { path: profile.x, eq: 1 }, next: a }\n      - next: end\n"
        ),
        ["5:5: loop without a wait: `a` -> `b` -> `a`; put a `wait`, `wait_until` or `wait_for` step in it"]
    );
    assert_eq!(
        step_errors("  - id: a\n    wait: 1h\n  - id: s\n    send: { channels: [email], template: t }\n    next: s\n"),
        ["7:5: loop without a wait: `s` -> `s`; put a `wait`, `wait_until` or `wait_for` step in it"]
    );
    // Through a wait it is a legitimate reminder loop.
    steps_ok(
        "  - id: a\n    send: { channels: [email], template: t }\n  - id: w\n    wait: 1d\n  - id: b\n    branch:\n      - { when: { path: profile.x, eq: 1 }, next: a }\n",
    );
    steps_ok("  - id: a\n    wait_for: { event: x, timeout: 1d, on_timeout: a, on_event: end }\n");
    steps_ok("  - id: a\n    wait_until: { time: \"09:00\" }\n    next: a\n");
}

#[test]
fn splits() {
    assert_eq!(
        step_errors(
            "  - id: s\n    split:\n      - { name: a, percent: 50, next: end }\n      - { name: b, percent: 40%, next: end }\n"
        ),
        ["7:7: split percentages add up to 90%, not 100%"]
    );
    assert_eq!(
        step_errors(
            "  - id: s\n    split:\n      - { name: a, percent: 33.33%, next: end }\n      - { name: a, percent: 66.66, next: end }\n      - { percent: x, next: end }\n"
        ),
        [
            "8:17: duplicate split arm name `a`",
            "9:9: missing required key `name` in split arm",
            "9:20: bad percentage `x`: expected 0% to 100% with at most two decimals, like `10%` or `12.5%`",
        ]
    );
    let j = steps_ok(
        "  - id: s\n    split:\n      - { name: a, percent: 33.34%, next: end }\n      - { name: b, percent: 66.66, next: end }\n",
    );
    let Action::Split(arms) = &j.steps[0].action else {
        panic!()
    };
    assert_eq!(arms[0].percent.basis_points, 3334);
    assert_eq!(arms[1].percent.basis_points, 6666);
    assert_eq!(arms[1].next, Next::End);
    assert_eq!(
        step_errors("  - id: s\n    split: []\n"),
        ["6:12: `split` must list at least one arm"]
    );
}

#[test]
fn branches() {
    assert_eq!(
        step_errors(
            "  - id: b\n    branch:\n      - next: end\n      - when: { path: profile.x, eq: 1 }\n  - id: c\n    wait: 1h\n"
        ),
        [
            "7:9: only the last branch case may omit `when`",
            "8:9: missing required key `next` in branch case",
        ]
    );
    assert_eq!(
        step_errors("  - id: b\n    branch: []\n"),
        ["6:13: `branch` must list at least one case"]
    );
}

#[test]
fn sends() {
    let j = steps_ok(
        "  - id: s\n    send:\n      channels: [sms, email]\n      template: t\n      if_no_channel: exit\n      data:\n        v: { path: trigger.properties.cart_value }\n        c: spring\n        n: 3\n        obj: { a: [1, true] }\n",
    );
    let Action::Send(send) = &j.steps[0].action else {
        panic!()
    };
    assert_eq!(send.channels, ["sms", "email"]);
    assert_eq!(send.if_no_channel, IfNoChannel::Exit);
    let keys: Vec<&str> = send.data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["v", "c", "n", "obj"]);
    assert!(
        matches!(&send.data["v"], DataValue::Path(p) if p.text == "trigger.properties.cart_value")
    );
    assert_eq!(
        send.data["c"],
        DataValue::Literal(serde_json::json!("spring"))
    );
    assert_eq!(send.data["n"], DataValue::Literal(serde_json::json!(3)));
    assert_eq!(
        send.data["obj"],
        DataValue::Literal(serde_json::json!({ "a": [1, true] }))
    );

    assert_eq!(
        step_errors(
            "  - id: s\n    send:\n      channels: [push, emial, push]\n      template: \"\"\n      if_no_channel: stop\n      data:\n        a: { path: event.properties.x }\n        b: { path: profile.x, extra: 1 }\n"
        ),
        [
            "7:24: channel `emial` is not declared in the configuration; did you mean `email`?",
            "7:31: channel `push` is listed twice",
            "8:17: `template` must not be empty",
            "9:22: bad if_no_channel `stop`: expected `continue` or `exit`",
            "11:20: path `event.properties.x` is not allowed here: `event.` paths only work in trigger, exit_when, goal and wait_for conditions",
            "12:31: unknown key `extra` in data value",
        ]
    );
    assert_eq!(
        step_errors("  - id: s\n    send: { channels: [], template: }\n"),
        [
            "6:23: `channels` must list at least one channel",
            "6:27: `template` must not be empty",
        ]
    );
    assert_eq!(
        step_errors("  - id: s\n    send: { channels: email, template: [t] }\n"),
        [
            "6:23: `channels` must be a list",
            "6:40: `template` must be a string"
        ]
    );
}

#[test]
fn waits() {
    let j = steps_ok(
        "  - id: a\n    wait_until: { time: \"09:30\" }\n  - id: b\n    wait_for:\n      event: clicked\n      where: { path: event.properties.n, exists: true }\n      timeout: 2d\n      on_event: end\n",
    );
    assert_eq!(
        j.steps[0].action,
        Action::WaitUntil(TimeOfDay {
            hour: 9,
            minute: 30
        })
    );
    let Action::WaitFor(w) = &j.steps[1].action else {
        panic!()
    };
    assert_eq!(w.timeout, Duration::from_secs(2 * 86_400));
    assert_eq!(w.on_event, Some(Next::End));
    assert_eq!(w.on_timeout, None);
    assert_eq!(
        step_errors(
            "  - id: a\n    wait: 90\n  - id: b\n    wait_until: { time: \"25:00\" }\n  - id: c\n    wait_until: { at: \"09:00\" }\n  - id: d\n    wait_for: { event: x }\n"
        ),
        [
            "6:11: bad duration `90`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`",
            "8:25: bad time of day `25:00`: expected HH:MM (24-hour), like `09:30`",
            "10:17: missing required key `time` in wait_until",
            "10:19: unknown key `at` in wait_until",
            "12:15: missing required key `timeout` in wait_for",
        ]
    );
}

#[test]
fn condition_forms() {
    assert_eq!(
        when_ok("{ path: profile.country, in: [GB, IE], ne: FR }"),
        Condition::Compare {
            path: values::parse_path("profile.country").unwrap(),
            comparisons: vec![
                (Op::In, serde_json::json!(["GB", "IE"])),
                (Op::Ne, serde_json::json!("FR")),
            ],
        }
    );
    assert_eq!(
        when_ok("{ did: order_completed, within: 24h }"),
        Condition::Did {
            event: "order_completed".into(),
            within: Some(Duration::from_secs(86_400))
        }
    );
    assert_eq!(
        when_ok("{ not: { any: [{ did: a }, { all: [{ path: profile.x, exists: false }] }] } }"),
        Condition::Not(Box::new(Condition::Any(vec![
            Condition::Did {
                event: "a".into(),
                within: None
            },
            Condition::All(vec![Condition::Compare {
                path: values::parse_path("profile.x").unwrap(),
                comparisons: vec![(Op::Exists, serde_json::json!(false))],
            }]),
        ])))
    );
    // Every operator with a value of the right type.
    when_ok(
        "{ path: profile.x, eq: 1, ne: a, gt: 2.5, gte: b, lt: 3, lte: z, in: [1, a, true], not_in: [], contains: x, starts_with: \"+44\", exists: true }",
    );
}

#[test]
fn condition_errors() {
    assert_eq!(
        when_errors("{ path: profile.x, in: x, exists: 1, starts_with: 5, contains: [1], gt: true, eq: ~, not_in: [[1]] }"),
        [
            "7:38: `in` needs a list of values",
            "7:49: `exists` needs true or false",
            "7:65: `starts_with` needs a string",
            "7:78: `contains` needs a string, number or boolean",
            "7:87: `gt` needs a number or a string",
            "7:97: `eq` needs a string, number or boolean",
            "7:109: `not_in` items must be strings, numbers or booleans",
        ]
    );
    assert_eq!(
        when_errors("{ path: profile.x }"),
        ["7:15: missing operator in condition; expected one of `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `in`, `not_in`, `contains`, `starts_with` or `exists`"]
    );
    assert_eq!(
        when_errors("{ path: profile.x, gtee: 1, eq: 1 }"),
        ["7:34: unknown key `gtee` in condition; did you mean `gte`?"]
    );
    assert_eq!(
        when_errors("{ path: profile.x, did: y }"),
        ["7:34: condition has both `path` and `did`; nest conditions in `all` or `any` to combine them"]
    );
    assert_eq!(
        when_errors("{ eq: 1 }"),
        ["7:15: missing required key `path` in condition"]
    );
    assert_eq!(
        when_errors("{ pth: profile.x }"),
        ["7:17: unknown key `pth` in condition; did you mean `path`?"]
    );
    assert_eq!(
        when_errors("{}"),
        ["7:15: empty condition: expected `path`, `did`, `all`, `any` or `not`"]
    );
    assert_eq!(when_errors("x"), ["7:15: a condition must be a mapping"]);
    assert_eq!(
        when_errors("{ all: [] }"),
        ["7:22: `all` must list at least one condition"]
    );
    assert_eq!(
        when_errors("{ any: { did: x } }"),
        ["7:22: `any` must be a list"]
    );
    assert_eq!(
        when_errors("{ did: x, within: 0s }"),
        ["7:33: bad duration `0s`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`"]
    );
    assert_eq!(
        when_errors("{ not: [{ did: x }] }"),
        ["7:22: a condition must be a mapping"]
    );
}

#[test]
fn paths_in_conditions() {
    assert_eq!(
        when_errors("{ all: [{ path: customer.tier, eq: a }, { path: trigger.cart, eq: 1 }] }"),
        [
            "7:31: bad path `customer.tier`: must start with `event.`, `trigger.` or `profile.`",
            "7:63: bad path `trigger.cart`: expected `trigger.type` or `trigger.properties.<name>`",
        ]
    );
    assert_eq!(
        when_errors("{ path: event.type, eq: a }"),
        ["7:23: path `event.type` is not allowed here: `event.` paths only work in trigger, exit_when, goal and wait_for conditions"]
    );
    // `event.` is fine in trigger, exit_when, goal and wait_for conditions.
    check(
        "id: j\nversion: 1\ntrigger: { event: e, where: { path: event.properties.a, eq: 1 } }\n\
         exit_when: [{ event: x, where: { path: event.type, eq: x } }]\n\
         goal: { event: g, where: { not: { path: event.properties.b.c, exists: true } } }\n\
         steps: [{ id: w, wait_for: { event: c, timeout: 1d, where: { path: event.properties.d, gt: 0 } } }]\n",
    )
    .unwrap();
}

#[test]
fn every_error_of_a_file_is_reported() {
    let text = "id: Bad\nversion: x\ntrigger: { event: e, when: 1 }\nsteps:\n  - id: a\n    wait: soon\n  - id: b\n    send: { channels: [fax], template: \"\" }\n";
    assert_eq!(
        errors(text),
        [
            "1:5: bad journey id `Bad`: use only lowercase letters, digits and `_`",
            "2:10: `version` must be a positive integer",
            "3:22: unknown key `when` in trigger",
            "6:11: bad duration `soon`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`",
            "8:24: channel `fax` is not declared in the configuration",
            "8:40: `template` must not be empty",
        ]
    );
}

#[test]
fn journeys_directory() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let valid = |id: &str| {
        format!("id: {id}\nversion: 1\ntrigger: {{ event: e }}\nsteps: [{{ id: s, wait: 1m }}]\n")
    };
    write("b.yaml", &valid("two"));
    write("a.yml", &valid("one"));
    write("notes.txt", "not a journey");
    write(".hidden.yaml", "not: [valid");
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
    let journeys = load_journeys_dir(dir.path(), &Config::example()).unwrap();
    let ids: Vec<&str> = journeys.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["one", "two"]);
    assert_eq!(journeys[0].source, dir.path().join("a.yml"));

    write("c.yaml", &valid("one"));
    write("d.yaml", "id: [x\n");
    write("e.yaml", "id: e\nversion: 1\n");
    let errors: Vec<String> = load_journeys_dir(dir.path(), &Config::example())
        .unwrap_err()
        .iter()
        .map(|d| {
            let name = d.file.file_name().unwrap().to_string_lossy().into_owned();
            format!("{name}:{}:{}: {}", d.line, d.column, d.message)
        })
        .collect();
    let first = dir.path().join("a.yml");
    assert_eq!(
        errors,
        [
            format!(
                "c.yaml:1:5: duplicate journey id `one` (first defined in {})",
                first.display()
            ),
            "d.yaml:2:1: invalid YAML: while parsing a flow sequence, expected ',' or ']'"
                .to_string(),
            "e.yaml:1:1: missing required key `trigger` in journey".to_string(),
            "e.yaml:1:1: missing required key `steps` in journey".to_string(),
        ]
    );

    let missing = dir.path().join("nope");
    let err = load_journeys_dir(&missing, &Config::example()).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].line, 0);
    assert!(err[0].to_string().starts_with(&format!(
        "{}: cannot read journeys directory: ",
        missing.display()
    )));
}

#[test]
fn graph_checks_run_beside_other_errors() {
    // An unrelated error in a step does not hide reachability or loops.
    assert_eq!(
        step_errors(
            "  - id: a\n    send: { channels: [email], template: \"\" }\n  - id: b\n    branch:\n      - { when: { path: profile.x, eq: 1 }, next: a }\n      - next: end\n  - id: c\n    wait: 1x\n"
        ),
        [
            "5:5: loop without a wait: `a` -> `b` -> `a`; put a `wait`, `wait_until` or `wait_for` step in it",
            "6:42: `template` must not be empty",
            "11:5: step `c` cannot be reached from the first step",
            "12:11: bad duration `1x`: expected a whole positive number and a unit (s, m, h, d, w), like `30s`, `2h` or `7d`",
        ]
    );
    // An unknown target may be the typo of a step's name: reachability is not judged then,
    // loops still are.
    assert_eq!(
        step_errors(
            "  - id: a\n    send: { channels: [email], template: t }\n    next: a\n  - id: reminder\n    wait: 1h\n    next: remnder\n"
        ),
        [
            "5:5: loop without a wait: `a` -> `a`; put a `wait`, `wait_until` or `wait_for` step in it",
            "10:11: `next` names unknown step `remnder`; did you mean `reminder`?",
        ]
    );
}

fn catalog_config() -> Config {
    let mut config = Config::example();
    let mut events = IndexMap::new();
    events.insert(
        "cart_updated".to_string(),
        vec!["cart_value".to_string(), "sku".to_string()],
    );
    events.insert(
        "order_completed".to_string(),
        vec!["order_id".to_string(), "categories".to_string()],
    );
    events.insert(
        "message_clicked".to_string(),
        vec!["command_id".to_string(), "template".to_string()],
    );
    config.event_catalog = Some(EventCatalog {
        events,
        unknown_events: UnknownEvents::Count,
    });
    config
}

fn catalog_errors(text: &str) -> Vec<String> {
    match parse_journey(text, Path::new("j.yaml"), &catalog_config()) {
        Ok(_) => Vec::new(),
        Err(ds) => ds
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect(),
    }
}

#[test]
fn event_catalog_checks_types_and_properties() {
    let good = "id: j\nversion: 1\ntrigger:\n  event: cart_updated\n  where: { path: event.properties.cart_value, gte: 20 }\nentry:\n  unless: { did: order_completed, within: 1d }\nexit_when:\n  - event: order_completed\n    where: { path: event.properties.categories.first, exists: true }\n  - event: consent_updated\n    where: { path: event.properties.status, eq: withdrawn }\nsteps:\n  - id: s\n    send: { channels: [email], template: t, data: { v: { path: trigger.properties.sku }, p: { path: profile.anything } } }\n  - id: w\n    wait_for: { event: message_clicked, where: { path: event.properties.template, eq: t }, timeout: 1d }\n  - id: p\n    wait_for: { event: profile_updated, where: { path: event.properties.whatever, exists: true }, timeout: 1d }\n";
    assert_eq!(catalog_errors(good), Vec::<String>::new());
    // Without a catalogue, any type validates.
    assert!(check(&good.replace("order_completed", "order_complete")).is_ok());
    let bad = "id: j\nversion: 1\ntrigger:\n  event: cart_updated\n  where: { path: event.properties.cart_valeu, gte: 20 }\nentry:\n  unless: { did: order_complete, within: 1d }\nexit_when:\n  - event: order_complete\n    where: { path: event.properties.total, gte: 1 }\n  - event: consent_updated\n    where: { path: event.properties.state, eq: withdrawn }\ngoal: { event: signup_done }\nsteps:\n  - id: s\n    send: { channels: [email], template: t, data: { v: { path: trigger.properties.skus } } }\n  - id: w\n    wait_for: { event: message_clicked, where: { path: event.properties.templat, eq: t }, timeout: 1d }\n";
    assert_eq!(
        catalog_errors(bad),
        [
            "5:18: event type `cart_updated` has no property `cart_valeu` in the event catalog; did you mean `cart_value`?",
            "7:18: event type `order_complete` is not in the event catalog; did you mean `order_completed`?",
            "9:12: event type `order_complete` is not in the event catalog; did you mean `order_completed`?",
            "12:20: event type `consent_updated` has no property `state` in the event catalog; did you mean `status`?",
            "13:16: event type `signup_done` is not in the event catalog",
            "16:64: event type `cart_updated` has no property `skus` in the event catalog; did you mean `sku`?",
            "18:56: event type `message_clicked` has no property `templat` in the event catalog; did you mean `template`?",
        ]
    );
    // `for_send` reads `command_id`: the awaited event type must carry it.
    let steps = "id: j\nversion: 1\ntrigger: { event: cart_updated }\nsteps:\n  - id: s\n    send: { channels: [email], template: t }\n  - id: w\n    wait_for: { event: EVENT, for_send: s, timeout: 1d }\n";
    assert_eq!(
        catalog_errors(&steps.replace("EVENT", "message_clicked")),
        Vec::<String>::new()
    );
    assert_eq!(
        catalog_errors(&steps.replace("EVENT", "order_completed")),
        ["8:51: event type `order_completed` has no property `command_id` in the event catalog (`for_send` reads it)"]
    );
}

#[test]
fn the_lenient_check_accepts_undeclared_channels_and_nothing_else() {
    let file = Path::new("j.yaml");
    let text =
        format!("{HEAD}steps:\n  - id: s\n    send: {{ channels: [fax, email], template: t }}\n");
    let strict = parse_journey(&text, file, &Config::example()).unwrap_err();
    assert_eq!(strict.len(), 1, "{strict:?}");
    assert!(
        strict[0].message.contains("`fax` is not declared"),
        "{strict:?}"
    );
    let journey = parse_journey_lenient(&text, file).unwrap();
    let Action::Send(send) = &journey.steps[0].action else {
        panic!("a send step")
    };
    assert_eq!(send.channels, ["fax", "email"]);
    // Every other rule still applies.
    let broken =
        format!("{HEAD}steps:\n  - id: s\n    send: {{ channels: [fax], template: \"\" }}\n");
    let errors: Vec<String> = parse_journey_lenient(&broken, file)
        .unwrap_err()
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(errors, ["6:40: `template` must not be empty"]);
}
