//! Positions for the problems a Kafka client library finds in `kafka.client`.
//!
//! The configuration loader cannot know librdkafka's properties (they depend on the linked
//! build), so the check itself is supplied by the runtime (`journeyd validate` passes librdkafka's
//! own); this module reads the configuration again, with the same environment overrides as
//! [`crate::load_config`], and reports each problem at its property's key as FILE:LINE:COLUMN,
//! or names the environment variable that set it.

use crate::check::Cx;
use crate::config::{apply_overrides, journeyd_env};
use crate::diagnostic::Diagnostic;
use crate::yaml::{self, Kind, Node};
use std::path::Path;

/// A check of the client properties, in file order: returns `(property, message)` for each
/// problem. A property that is not among the given ones is reported at the `client` key.
pub type ClientPropertyCheck<'a> = &'a dyn Fn(&[(String, String)]) -> Vec<(String, String)>;

/// Reads the configuration file and the process's `JOURNEYD_*` variables like
/// [`crate::load_config`] and runs `check` over `kafka.client`. A file that cannot be read or
/// parsed gives no diagnostics here: [`crate::load_config`] reports it.
pub fn check_client_properties_file(path: &Path, check: ClientPropertyCheck) -> Vec<Diagnostic> {
    match std::fs::read_to_string(path) {
        Ok(text) => check_client_properties(&text, path, &journeyd_env(), check),
        Err(_) => Vec::new(),
    }
}

/// Same as [`check_client_properties_file`] over text, with an explicit environment.
pub fn check_client_properties(
    text: &str,
    file: &Path,
    env: &[(String, String)],
    check: ClientPropertyCheck,
) -> Vec<Diagnostic> {
    let mut cx = Cx::new(file);
    let Ok(parsed) = yaml::parse(text) else {
        return Vec::new();
    };
    let Some(mut root) = parsed.root else {
        return Vec::new();
    };
    apply_overrides(&mut cx, &mut root, env);
    // Override problems are load_config's to report.
    cx.diagnostics.clear();
    let Some((client_key, client)) =
        entry(&root, "kafka").and_then(|(_, kafka)| entry(kafka, "client"))
    else {
        return Vec::new();
    };
    let Kind::Map(entries) = &client.kind else {
        return Vec::new();
    };
    let properties: Vec<(String, String)> = entries
        .iter()
        .map(|(k, v)| (k.display_text(), v.display_text()))
        .collect();
    for (property, message) in check(&properties) {
        let at = entries
            .iter()
            .find(|(k, _)| k.display_text() == property)
            // A value set by an environment variable names it; a key in the file is its place.
            .map(|(k, v)| if v.origin.is_some() { v } else { k })
            .unwrap_or(client_key);
        cx.err(at, message);
    }
    cx.finish()
}

fn entry<'n>(node: &'n Node, key: &str) -> Option<(&'n Node, &'n Node)> {
    let Kind::Map(entries) = &node.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.text() == Some(key))
        .map(|(k, v)| (k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str =
        "kafka:\n  client:\n    security.protocol: SASL_SSL\n    sasl.usernme: bob\n";

    /// Flags every property whose name contains `usernme`, and the whole set once.
    fn check(props: &[(String, String)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = props
            .iter()
            .filter(|(k, _)| k.contains("usernme"))
            .map(|(k, _)| (k.clone(), format!("unknown property `{k}`")))
            .collect();
        out.push(("(all)".into(), format!("{} properties", props.len())));
        out
    }

    #[test]
    fn problems_are_reported_at_the_property_key() {
        let d = check_client_properties(CONFIG, Path::new("c.yaml"), &[], &check);
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "c.yaml:2:3: 2 properties",
                "c.yaml:4:5: unknown property `sasl.usernme`"
            ]
        );
    }

    #[test]
    fn a_property_from_the_environment_names_its_variable() {
        let env = [(
            "JOURNEYD_KAFKA__CLIENT__SASL_USERNME".to_string(),
            "alice".to_string(),
        )];
        let text = "kafka:\n  client: {}\n";
        let d = check_client_properties(text, Path::new("c.yaml"), &env, &check);
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert!(
            lines.contains(
                &"c.yaml: unknown property `sasl.usernme` (from JOURNEYD_KAFKA__CLIENT__SASL_USERNME)"
                    .to_string()
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn no_client_section_means_nothing_to_check() {
        let d = check_client_properties("kafka: {}\n", Path::new("c.yaml"), &[], &check);
        assert!(d.is_empty());
    }
}
