//! The `kafka` section: cluster, topics with their input formats, librdkafka client properties.

use super::{string_or, KAFKA_KEYS};
use crate::check::Cx;
use crate::model::*;
use crate::yaml::{Kind, Node, Scalar};
use indexmap::IndexMap;

pub(super) fn kafka(cx: &mut Cx, node: &Node) -> Option<KafkaConfig> {
    let f = cx.fields(node, "`kafka`", "kafka", &KAFKA_KEYS)?;
    let bootstrap_servers = string_or(cx, &f, "bootstrap_servers", "127.0.0.1:9092");
    let group_id = string_or(cx, &f, "group_id", "journeyd");
    let input_topics = match f.get("input_topics") {
        Some(n) => topics(cx, n),
        None => Some((vec!["events".to_string()], IndexMap::new())),
    };
    let dead_letter_topic = string_or(cx, &f, "dead_letter_topic", "events.dead_letter");
    let decisions_topic = string_or(cx, &f, "decisions_topic", "journey.decisions");
    let state_topic = string_or(cx, &f, "state_topic", "journeyd.state");
    let client = match f.get("client") {
        Some(n) => client(cx, n),
        None => Some(IndexMap::new()),
    };
    let commit_interval_ms = match f.get("commit_interval_ms") {
        Some(n) => cx.positive_int(n, "commit_interval_ms", u32::MAX as u64),
        None => Some(100),
    };
    let max_event_bytes = match f.get("max_event_bytes") {
        Some(n) => cx.positive_int(n, "max_event_bytes", u32::MAX as u64),
        None => Some(65_536),
    };
    let transactional_id = match f.get("transactional_id") {
        Some(n) if n.is_null() => Some(None),
        Some(n) => cx.nonempty_string(n, "transactional_id").map(Some),
        None => Some(None),
    };
    let static_membership = match f.get("static_membership") {
        Some(n) => cx.bool(n, "static_membership"),
        None => Some(true),
    };
    let group_instance_id = match f.get("group_instance_id") {
        Some(n) if n.is_null() => Some(None),
        Some(n) => cx.nonempty_string(n, "group_instance_id").map(Some),
        None => Some(None),
    };
    if let (Some(false), Some(Some(_)), Some(n)) = (
        static_membership,
        &group_instance_id,
        f.get("group_instance_id"),
    ) {
        cx.err(
            n,
            "`group_instance_id` is set but `static_membership` is false: remove one of them",
        );
        return None;
    }
    Some(KafkaConfig {
        bootstrap_servers: bootstrap_servers?,
        group_id: group_id?,
        input_topics: input_topics.as_ref()?.0.clone(),
        input_formats: input_topics?.1,
        dead_letter_topic: dead_letter_topic?,
        decisions_topic: decisions_topic?,
        state_topic: state_topic?,
        client: client?,
        commit_interval_ms: commit_interval_ms?,
        max_event_bytes: max_event_bytes? as usize,
        transactional_id: transactional_id?,
        static_membership: static_membership?,
        group_instance_id: group_instance_id?,
    })
}

/// `input_topics`: a list of names (native format) or `{ name, format[, customer_id_attribute] }`
/// entries, or a comma-separated string (from an environment override). Returns the names and
/// the formats of the topics that are not native.
fn topics(cx: &mut Cx, node: &Node) -> Option<(Vec<String>, IndexMap<String, InputFormat>)> {
    let mut formats = IndexMap::new();
    let topics: Vec<String> = match (&node.kind, node.text()) {
        (Kind::Seq(items), _) => {
            let mut names: Vec<String> = Vec::new();
            let mut ok = true;
            for item in items {
                let entry = match &item.kind {
                    Kind::Map(_) => input_topic(cx, item),
                    _ => cx
                        .nonempty_string(item, "input_topics")
                        .map(|n| (n, InputFormat::Native)),
                };
                let Some((name, format)) = entry else {
                    ok = false;
                    continue;
                };
                if names.contains(&name) {
                    cx.err(item, format!("input topic `{name}` is listed twice"));
                    ok = false;
                    continue;
                }
                if format != InputFormat::Native {
                    formats.insert(name.clone(), format);
                }
                names.push(name);
            }
            if !ok {
                return None;
            }
            names
        }
        (_, Some(text)) => text
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => {
            cx.err(node, "`input_topics` must be a list");
            return None;
        }
    };
    if topics.is_empty() {
        cx.err(node, "`input_topics` must list at least one topic");
        return None;
    }
    Some((topics, formats))
}

/// One `{ name, format[, customer_id_attribute] }` entry of `input_topics`.
fn input_topic(cx: &mut Cx, node: &Node) -> Option<(String, InputFormat)> {
    let f = cx.fields(
        node,
        "each input topic",
        "input topic",
        &["name", "format", "customer_id_attribute"],
    )?;
    let name = f
        .require(cx, "name")
        .and_then(|n| cx.nonempty_string(n, "name"));
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Native,
        Segment,
        CloudEvents,
    }
    let kind = match f.get("format") {
        Some(n) => cx.choice(
            n,
            "format",
            &[
                ("native", Kind::Native),
                ("segment", Kind::Segment),
                ("cloudevents", Kind::CloudEvents),
            ],
        ),
        None => Some(Kind::Native),
    };
    let attribute = match f.get("customer_id_attribute") {
        Some(n) => {
            if kind.is_some_and(|k| k != Kind::CloudEvents) {
                cx.err(
                    n,
                    "`customer_id_attribute` only applies to `format: cloudevents`",
                );
                return None;
            }
            let attribute = cx.nonempty_string(n, "customer_id_attribute")?;
            // CloudEvents attribute names: lowercase letters and digits.
            if !attribute
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                cx.err(
                    n,
                    format!(
                        "bad CloudEvents attribute name `{attribute}`: use only lowercase letters and digits"
                    ),
                );
                return None;
            }
            Some(attribute)
        }
        None => Some("subject".to_string()),
    };
    let format = match kind? {
        Kind::Native => InputFormat::Native,
        Kind::Segment => InputFormat::Segment,
        Kind::CloudEvents => InputFormat::CloudEvents {
            customer_id_attribute: attribute?,
        },
    };
    Some((name?, format))
}

pub(super) fn client(cx: &mut Cx, node: &Node) -> Option<IndexMap<String, String>> {
    if node.is_null() {
        return Some(IndexMap::new());
    }
    let Kind::Map(entries) = &node.kind else {
        cx.err(node, "`client` must be a mapping");
        return None;
    };
    let mut client = IndexMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let name = key.display_text();
        match value.scalar() {
            Some(Scalar::Null) | None => {
                cx.err(
                    value,
                    format!("kafka client property `{name}` must be a string, number or boolean"),
                );
                ok = false;
            }
            Some(_) => {
                client.insert(name, value.display_text());
            }
        }
    }
    ok.then_some(client)
}
