//! Environment overrides: `JOURNEYD_A__B__C=value` applied to the YAML tree before it is
//! validated (see the parent module's documentation).

use super::PREFIX;
use crate::check::Cx;
use crate::diagnostic::Diagnostic;
use crate::yaml::{self, Kind, Node};
use std::rc::Rc;

/// The process's `JOURNEYD_*` variables (the overrides [`load_config`] applies).
pub(crate) fn journeyd_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect()
}

/// Applies the `JOURNEYD_` variables of `env` to the tree (in name order), when it is a mapping.
pub(crate) fn apply_overrides(cx: &mut Cx, root: &mut Node, env: &[(String, String)]) {
    if matches!(root.kind, Kind::Map(_)) {
        let mut env: Vec<&(String, String)> =
            env.iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
        env.sort();
        for (name, value) in env {
            apply_override(cx, root, name, value);
        }
    }
}

/// Sets the key path named by one `JOURNEYD_` variable in the tree.
fn apply_override(cx: &mut Cx, root: &mut Node, name: &str, value: &str) {
    let rest = &name[PREFIX.len()..];
    let upper = rest.to_ascii_uppercase();
    let (path, node): (Vec<String>, Node) = if let Some(property) = upper
        .strip_prefix("KAFKA__CLIENT__")
        .map(|_| &rest["KAFKA__CLIENT__".len()..])
    {
        let key = property.to_lowercase().replace('_', ".");
        (
            vec!["kafka".into(), "client".into(), key],
            Node::from_env(name, value, false),
        )
    } else if rest.contains("__")
        || upper == "JOURNEYS_DIR"
        || upper == "STATE_DIR"
        || upper == "WORKERS"
    {
        let path = rest.split("__").map(str::to_lowercase).collect();
        (path, env_value(name, value))
    } else {
        return;
    };
    if path.iter().any(String::is_empty) {
        cx.diagnostics.push(Diagnostic::whole_file(
            cx.file,
            format!("environment variable {name} names no setting (empty name between `__`)"),
        ));
        return;
    }
    let mut at = root;
    for (depth, key) in path.iter().enumerate() {
        let Kind::Map(entries) = &mut at.kind else {
            // The file holds something else there; its own type error is reported.
            return;
        };
        let position = entries.iter().position(|(k, _)| k.text() == Some(key));
        let last = depth + 1 == path.len();
        let index = match position {
            Some(i) => {
                if last {
                    entries[i].1 = node;
                    return;
                }
                if entries[i].1.is_null() {
                    entries[i].1 = Node::env_map(name);
                }
                i
            }
            None => {
                let value = if last {
                    node.clone()
                } else {
                    Node::env_map(name)
                };
                entries.push((Node::from_env(name, key, false), value));
                if last {
                    return;
                }
                entries.len() - 1
            }
        };
        at = &mut entries[index].1;
    }
}

/// An override's value: a flow list when written `[...]`, else a plain scalar.
fn env_value(name: &str, value: &str) -> Node {
    let trimmed = value.trim();
    if trimmed.starts_with('[') && trimmed.ends_with(']') {
        if let Ok(yaml::Parsed {
            root: Some(mut node),
            problems,
        }) = yaml::parse(trimmed)
        {
            if problems.is_empty() && matches!(node.kind, Kind::Seq(_)) {
                mark_origin(&mut node, &Rc::from(name));
                return node;
            }
        }
    }
    Node::from_env(name, value, true)
}

fn mark_origin(node: &mut Node, var: &Rc<str>) {
    node.origin = Some(var.clone());
    match &mut node.kind {
        Kind::Scalar(..) => {}
        Kind::Seq(items) => items.iter_mut().for_each(|n| mark_origin(n, var)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            mark_origin(k, var);
            mark_origin(v, var);
        }),
    }
}
