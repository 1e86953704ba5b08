//! A flow as Graphviz DOT text (`journeyd graph --format dot`).

use super::Flow;
use std::fmt::Write as _;

/// Graphviz DOT text of a flow.
pub(crate) fn to_dot(f: &Flow, name: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut o = format!("digraph {} {{\n", q(name));
    o.push_str("  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for n in &f.nodes {
        let (fill, stroke) = n.kind.colours();
        let label = n
            .lines
            .iter()
            .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
            .collect::<Vec<_>>()
            .join("\\n");
        let _ = writeln!(
            o,
            "  {} [label=\"{label}\", fillcolor=\"{fill}\", color=\"{stroke}\"];",
            q(&n.key)
        );
    }
    for e in &f.edges {
        let mut attrs = Vec::new();
        if let Some(l) = &e.label {
            attrs.push(format!("label={}", q(l)));
        }
        if e.dashed {
            attrs.push("style=dashed".into());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(o, "  {} -> {}{attrs};", q(&e.from), q(&e.to));
    }
    o.push_str("}\n");
    o
}
