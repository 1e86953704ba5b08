//! Black-box tests of `journeyd graph --format dot|svg` over every example journey: every step is
//! drawn, branch, split and timeout edges carry their labels, and the SVG is one standalone
//! document drawn by journeyd (no script, no external reference).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn graph(file: &Path, format: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(["graph", "--format", format, "--config"])
        .arg(repo_root().join("deploy/journeyd.yaml"))
        .arg(file)
        .output()
        .expect("journeyd runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn example_journeys() -> Vec<(PathBuf, Vec<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("journeys")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".yaml") || journey_spec::is_test_file(&name) {
            continue;
        }
        let steps = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- id: ").map(str::to_string))
            .collect();
        out.push((path, steps));
    }
    assert_eq!(out.len(), 8);
    out
}

#[test]
fn svg_draws_every_step_of_every_example_journey() {
    for (path, steps) in example_journeys() {
        let svg = graph(&path, "svg");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("<script") && !svg.contains("href=\"http"));
        for step in &steps {
            assert!(
                svg.contains(&format!("font-weight=\"bold\">{step}</tspan>")),
                "{}: step {step} not drawn",
                path.display()
            );
        }
        assert!(svg.contains("class=\"edge\""));
    }
}

#[test]
fn svg_labels_branch_split_and_timeout_edges() {
    let cart = graph(&repo_root().join("journeys/cart_abandonment.yaml"), "svg");
    for label in [
        "timeout 1d",
        "message_clicked",
        "profile.tier = vip",
        "else",
        "exited",
        "goal",
    ] {
        assert!(cart.contains(&format!(">{label}</tspan>")), "{label}");
    }
    let cross = graph(&repo_root().join("journeys/cross_sell.yaml"), "svg");
    assert!(cross.contains(">bundle 50%</tspan>") && cross.contains(">single 50%</tspan>"));
}

#[test]
fn dot_lists_every_step_and_edge() {
    for (path, steps) in example_journeys() {
        let dot = graph(&path, "dot");
        assert!(dot.starts_with("digraph "));
        for step in &steps {
            assert!(dot.contains(&format!("\"step:{step}\" [label=")), "{step}");
        }
    }
    let cart = graph(&repo_root().join("journeys/cart_abandonment.yaml"), "dot");
    assert!(cart.contains("\"step:wait_for_click\" -> \"step:vip_check\" [label=\"timeout 1d\"];"));
}
