//! The smaller sections: metrics, the event catalog, inspection, logging.

use super::string_or;
use crate::check::Cx;
use crate::model::*;
use crate::yaml::{Kind, Node};
use indexmap::IndexMap;

pub(super) fn metrics(cx: &mut Cx, node: &Node) -> Option<MetricsConfig> {
    let f = cx.fields(node, "`metrics`", "metrics", &["listen"])?;
    let listen = string_or(cx, &f, "listen", "127.0.0.1:9464")?;
    let valid = listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !valid {
        cx.err(
            f.get("listen")?,
            format!("bad listen address `{listen}`: expected HOST:PORT, like `127.0.0.1:9464`"),
        );
        return None;
    }
    Some(MetricsConfig { listen })
}

pub(super) fn event_catalog(cx: &mut Cx, node: &Node) -> Option<EventCatalog> {
    let f = cx.fields(
        node,
        "`event_catalog`",
        "event_catalog",
        &["events", "unknown_events"],
    )?;
    let unknown_events = match f.get("unknown_events") {
        Some(n) => cx.choice(
            n,
            "unknown_events",
            &[
                ("count", UnknownEvents::Count),
                ("dead_letter", UnknownEvents::DeadLetter),
            ],
        ),
        None => Some(UnknownEvents::Count),
    };
    let events = f.require(cx, "events").and_then(|n| catalog_events(cx, n));
    Some(EventCatalog {
        events: events?,
        unknown_events: unknown_events?,
    })
}

/// `events:` of the catalogue: event type → `{ properties: [NAME, ...] }` (or null: none).
fn catalog_events(cx: &mut Cx, node: &Node) -> Option<IndexMap<String, Vec<String>>> {
    let Kind::Map(entries) = &node.kind else {
        cx.err(
            node,
            "`events` must be a mapping from event type to its properties",
        );
        return None;
    };
    if entries.is_empty() {
        cx.err(node, "`events` must list at least one event type");
        return None;
    }
    let mut events = IndexMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let Some(name) = cx.nonempty_string(key, "event type") else {
            ok = false;
            continue;
        };
        if value.is_null() {
            events.insert(name, Vec::new());
            continue;
        }
        let subject = format!("event type `{name}`");
        let Some(f) = cx.fields(value, &subject, &subject, &["properties"]) else {
            ok = false;
            continue;
        };
        let properties = match f.get("properties") {
            None => Some(Vec::new()),
            Some(n) if n.is_null() => Some(Vec::new()),
            Some(n) => catalog_properties(cx, n),
        };
        match properties {
            Some(p) => {
                events.insert(name, p);
            }
            None => ok = false,
        }
    }
    ok.then_some(events)
}

fn catalog_properties(cx: &mut Cx, node: &Node) -> Option<Vec<String>> {
    let items = cx.list(node, "`properties`")?;
    let mut names: Vec<String> = Vec::new();
    let mut ok = true;
    for item in items {
        match cx.nonempty_string(item, "property") {
            Some(name) if names.contains(&name) => {
                cx.err(item, format!("property `{name}` is listed twice"));
                ok = false;
            }
            Some(name) => names.push(name),
            None => ok = false,
        }
    }
    ok.then_some(names)
}

pub(super) fn inspect(cx: &mut Cx, node: &Node) -> Option<InspectConfig> {
    let f = cx.fields(node, "`inspect`", "inspect", &["enabled", "token"])?;
    let enabled = match f.get("enabled") {
        Some(n) => cx.bool(n, "enabled"),
        None => Some(false),
    };
    let token = match f.get("token") {
        Some(n) if n.is_null() => Some(None),
        Some(n) => cx.nonempty_string(n, "token").map(Some),
        None => Some(None),
    };
    if enabled == Some(true) && token == Some(None) {
        cx.err(node, "`inspect.enabled` needs a `token`");
        return None;
    }
    Some(InspectConfig {
        enabled: enabled?,
        token: token?,
    })
}

pub(super) fn log(cx: &mut Cx, node: &Node) -> Option<LogConfig> {
    let f = cx.fields(node, "`log`", "log", &["format", "level"])?;
    let format = match f.get("format") {
        Some(n) => cx.choice(
            n,
            "log format",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        ),
        None => Some(LogFormat::Text),
    };
    let level = string_or(cx, &f, "level", "info");
    Some(LogConfig {
        format: format?,
        level: level?,
    })
}
