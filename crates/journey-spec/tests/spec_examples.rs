//! Every example of the journey language (the language's original examples, as taught in
//! docs/journeys.md) is valid: the complete example as it is, each snippet as
//! written there, wrapped in the smallest journey that gives it a place (`CONDITION`
//! placeholders replaced by conditions from the Conditions section). Also the example of docs/reference/configuration.md.

use journey_spec::*;
use std::path::Path;

fn journey(text: &str) -> Journey {
    match parse_journey(text, Path::new("journeys/example.yaml"), &Config::example()) {
        Ok(j) => j,
        Err(diagnostics) => panic!("{}\n--- in ---\n{text}", Diagnostics(diagnostics)),
    }
}

/// A journey around top-level snippets (trigger given unless the snippet has one).
fn with_top_level(snippet: &str) -> Journey {
    let trigger = if snippet.contains("trigger:") {
        ""
    } else {
        "trigger: { event: cart_updated }\n"
    };
    journey(&format!(
        "id: snippet\nversion: 1\n{trigger}{snippet}\nsteps:\n  - id: pause\n    wait: 1h\n"
    ))
}

/// A journey whose steps are the snippet (indented as a step list) and the named extra steps.
fn with_steps(snippet: &str, extra_steps: &[&str]) -> Journey {
    let mut text =
        "id: snippet\nversion: 1\ntrigger: { event: cart_updated }\nsteps:\n".to_string();
    for line in snippet.lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    for id in extra_steps {
        text.push_str(&format!("  - id: {id}\n    wait: 1h\n    next: end\n"));
    }
    journey(&text)
}

#[test]
fn complete_example() {
    let j = journey(include_str!("cart_abandonment.yaml"));
    assert_eq!(j.id, "cart_abandonment");
    assert_eq!(j.version, 3);
    assert_eq!(j.name.as_deref(), Some("Cart abandonment recovery"));
    assert_eq!(
        j.entry.reentry,
        Reentry::After(Duration::from_secs(7 * 86_400))
    );
    assert_eq!(j.entry.holdout.basis_points, 1_000);
    assert_eq!(j.exit_when.len(), 2);
    assert_eq!(
        j.goal.as_ref().unwrap().within,
        Some(Duration::from_secs(7 * 86_400))
    );
    let ids: Vec<&str> = j.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "wait_an_hour",
            "first_reminder",
            "wait_for_click",
            "vip_check",
            "vip_offer",
            "second_reminder"
        ]
    );
    let kinds: Vec<&str> = j.steps.iter().map(|s| s.action.kind()).collect();
    assert_eq!(
        kinds,
        ["wait", "send", "wait_for", "branch", "send", "send"]
    );
}

#[test]
fn trigger_snippet() {
    let j = with_top_level(
        "trigger:\n  event: cart_updated          # event type that can start the journey\n  where: { path: event.properties.cart_value, gte: 20 }\n",
    );
    assert_eq!(j.trigger.event, "cart_updated");
}

#[test]
fn entry_table() {
    for reentry in ["once", "always", "{ after: 7d }"] {
        with_top_level(&format!(
            "entry:\n  reentry: {reentry}\n  unless: {{ did: order_completed, within: 24h }}\n  holdout: 10%\n"
        ));
    }
    let j = with_top_level("entry: {}\n");
    assert_eq!(j.entry.holdout.basis_points, 0);
}

#[test]
fn exit_and_goal_snippet() {
    let j = with_top_level(
        "exit_when:\n  - event: order_completed\n    where: { path: event.properties.total, gt: 0 }           # optional\ngoal:\n  event: order_completed\n  where: { path: profile.country, in: [GB, IE] }             # optional\n  within: 7d                   # counted only within 7 days of entry\n  exit: true                   # default true: reaching the goal ends the journey (decision\n                               # `goal` alone, no `exited`)\n",
    );
    assert!(j.goal.unwrap().exit);
}

#[test]
fn step_snippets() {
    with_steps(
        "- id: pause\n  wait: 1h                      # DURATION\n",
        &[],
    );
    let j = with_steps(
        "- id: morning\n  wait_until: { time: \"09:30\" } # next 09:30 in the customer's time zone (see docs/reference/configuration.md)\n",
        &[],
    );
    assert_eq!(
        j.steps[0].action,
        Action::WaitUntil(TimeOfDay {
            hour: 9,
            minute: 30
        })
    );
    with_steps(
        "- id: wait_for_click\n  wait_for:\n    event: message_clicked\n    where: { path: event.properties.campaign, eq: spring }            # optional\n    timeout: 2d                 # required\n    on_event: thank_you         # step id or end; default: the following step\n    on_timeout: reminder        # step id or end; default: the following step\n",
        &["thank_you", "reminder"],
    );
    let j = with_steps(
        "- id: reminder\n  send:\n    channels: [push, email, sms]   # priority order, at least one\n    template: cart_reminder        # required, non-empty\n    data:                          # optional; literal values, or { path: PATH } copied at send\n                                   # time (a missing value leaves the key out)\n      cart_value: { path: trigger.properties.cart_value }\n      campaign: spring\n    if_no_channel: continue        # continue (default) | exit\n",
        &[],
    );
    let Action::Send(send) = &j.steps[0].action else {
        panic!()
    };
    assert_eq!(send.channels, ["push", "email", "sms"]);
    with_steps(
        "- id: vip_check\n  branch:\n    - when: { path: profile.tier, eq: vip }\n      next: vip_offer\n    - when: { path: profile.country, in: [GB, IE] }\n      next: other\n    - next: standard            # the last case may omit `when`: the else case\n",
        &["vip_offer", "other", "standard"],
    );
    with_steps(
        "- id: ab_test\n  split:\n    - { name: a, percent: 50, next: variant_a }\n    - { name: b, percent: 50, next: variant_b }\n",
        &["variant_a", "variant_b"],
    );
}

#[test]
fn condition_snippets() {
    let conditions = [
        "{ path: event.properties.cart_value, gte: 20 }",
        "{ path: profile.country, in: [GB, IE] }",
        "{ path: profile.email, exists: true }",
        "{ did: order_completed, within: 24h }        # the customer had this event type in the last 24h",
        "{ did: order_completed }                     # ... ever (since the engine has known them)",
        "{ all: [{ path: profile.email, exists: true }, { did: order_completed }] }",
        "{ any: [{ path: profile.country, in: [GB, IE] }, { path: profile.tier, eq: vip }] }",
        "{ not: { did: order_completed, within: 24h } }",
    ];
    for condition in conditions {
        // In a trigger every path root is allowed.
        with_top_level(&format!(
            "trigger:\n  event: cart_updated\n  where: {condition}\n"
        ));
    }
    // Each comparison operator of the list.
    for op in [
        "eq: a",
        "ne: a",
        "gt: 1",
        "gte: 1",
        "lt: 1",
        "lte: 1",
        "in: [a]",
        "not_in: [a]",
        "contains: a",
        "starts_with: a",
        "exists: true",
        "exists: false",
    ] {
        with_top_level(&format!("entry:\n  unless: {{ path: profile.x, {op} }}\n"));
    }
}

#[test]
fn durations_and_percentages() {
    for duration in ["30s", "15m", "2h", "7d", "2w"] {
        with_steps(&format!("- id: pause\n  wait: {duration}\n"), &[]);
    }
    for percent in ["10%", "12.5%"] {
        with_top_level(&format!("entry:\n  holdout: {percent}\n"));
    }
}

#[test]
fn config_example() {
    let c = parse_config(EXAMPLE_CONFIG, Path::new("journeyd.yaml"), &[]).unwrap();
    assert_eq!(c, Config::example());
    assert_eq!(c.channels.len(), 3);
}
