//! Unit tests of the flow graph and its renderings.

use super::*;

fn journey(text: &str) -> Journey {
    let config = journey_spec::Config::example();
    journey_spec::parse_journey(text, std::path::Path::new("j.yaml"), &config).unwrap()
}

const LOOPING: &str = "\
id: loop
version: 1
trigger: { event: order_completed }
goal: { event: order_completed, exit: false }
steps:
  - id: countdown
    wait_for: { event: order_completed, timeout: 7w, on_event: countdown, on_timeout: remind }
  - id: remind
    send: { channels: [email], template: refill }
  - id: check
    branch:
      - when: { path: profile.tier, eq: vip }
        next: end
      - next: countdown
";

#[test]
fn flow_has_every_step_and_labelled_edges() {
    let f = flow(&journey(LOOPING));
    let keys: Vec<&str> = f.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "trigger",
            "entry",
            "step:countdown",
            "step:remind",
            "step:check",
            "end",
            "goal"
        ]
    );
    let labels: Vec<String> = f
        .edges
        .iter()
        .map(|e| {
            format!(
                "{}>{}:{}",
                e.from,
                e.to,
                e.label.clone().unwrap_or_default()
            )
        })
        .collect();
    assert!(labels.contains(&"step:countdown>step:countdown:order_completed".to_string()));
    assert!(labels.contains(&"step:countdown>step:remind:timeout 49d".to_string()));
    assert!(labels.contains(&"step:check>end:profile.tier = vip".to_string()));
}

#[test]
fn svg_draws_nodes_edges_and_counts() {
    let f = flow(&journey(LOOPING));
    let counts = FlowCounts {
        nodes: vec![Some(1234), Some(1234), Some(1000), None, None, None, None],
        edges: vec![Some(1200); f.edges.len()],
    };
    let svg = to_svg(&f, Some(&counts));
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert_eq!(
        svg.matches("<g class=\"node ").count(),
        f.nodes.len(),
        "{svg}"
    );
    assert!(
        svg.matches("class=\"edge\"").count() >= f.edges.len(),
        "{svg}"
    );
    assert!(svg.contains(">1,234 customers</tspan>"), "{svg}");
    assert!(svg.contains(">timeout 49d</tspan>"), "{svg}");
    assert!(svg.contains(">1,200</tspan>"), "{svg}");
}

#[test]
fn dot_quotes_labels() {
    let dot = to_dot(&flow(&journey(LOOPING)), "loop");
    assert!(dot.starts_with("digraph \"loop\" {\n"), "{dot}");
    assert!(
        dot.contains("\"step:check\" -> \"end\" [label=\"profile.tier = vip\"];"),
        "{dot}"
    );
    assert!(dot.contains("\"goal\" -> \"end\"") || !dot.contains("goal: order_completed\\nwithin"));
}

#[test]
fn digits_are_grouped() {
    assert_eq!(group_digits(0), "0");
    assert_eq!(group_digits(999), "999");
    assert_eq!(group_digits(1000), "1,000");
    assert_eq!(group_digits(1234567), "1,234,567");
}
