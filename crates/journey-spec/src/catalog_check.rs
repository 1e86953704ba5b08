//! Journeys against the event catalogue (`event_catalog` of the configuration,
//! docs/reference/configuration.md): every event type a journey names must be in the catalogue,
//! and every `event.properties.X` / `trigger.properties.X` it reads must be a property of that
//! event type (and a `wait_for.for_send` needs its event type to carry `command_id`). Runs on the positioned YAML tree, so each problem points at the name as written.

use crate::check::Cx;
use crate::model::EventCatalog;
use crate::values::did_you_mean;
use crate::yaml::{Kind, Node};

/// Reports every event type and property of the journey `root` that the catalogue lacks.
pub(crate) fn check(cx: &mut Cx, root: &Node, catalog: &EventCatalog) {
    let Kind::Map(top) = &root.kind else { return };
    let trigger = get(top, "trigger")
        .and_then(|t| match &t.kind {
            Kind::Map(entries) => get(entries, "event"),
            _ => None,
        })
        .and_then(Node::text);
    let mut walker = Walker {
        cx,
        catalog,
        trigger: trigger.filter(|t| catalog.knows(t)),
    };
    for (key, value) in top {
        match key.text() {
            Some("trigger" | "goal") => walker.event_block(value),
            Some("exit_when") => {
                if let Kind::Seq(items) = &value.kind {
                    items.iter().for_each(|item| walker.event_block(item));
                }
            }
            Some("steps") => {
                let Kind::Seq(steps) = &value.kind else {
                    continue;
                };
                for step in steps {
                    let Kind::Map(entries) = &step.kind else {
                        continue;
                    };
                    for (k, v) in entries {
                        if k.text() == Some("wait_for") {
                            walker.event_block(v);
                        } else {
                            walker.walk(v, None);
                        }
                    }
                }
            }
            _ => walker.walk(value, None),
        }
    }
}

fn get<'n>(entries: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    entries
        .iter()
        .find(|(k, _)| k.text() == Some(key))
        .map(|(_, v)| v)
}

struct Walker<'a, 'f, 'c> {
    cx: &'a mut Cx<'f>,
    catalog: &'c EventCatalog,
    /// The journey's trigger type, when the catalogue knows it.
    trigger: Option<&'c str>,
}

impl<'c> Walker<'_, '_, 'c> {
    /// A mapping with an `event:` type whose `where` reads that event (trigger, exit_when
    /// entry, goal, wait_for).
    fn event_block(&mut self, node: &'c Node) {
        let Kind::Map(entries) = &node.kind else {
            return;
        };
        let event = get(entries, "event").and_then(|n| Some((n, n.text()?)));
        let scope = match event {
            Some((n, t)) => self.event_type(n, t).then_some(t),
            None => None,
        };
        for (k, v) in entries {
            match k.text() {
                Some("event") => {}
                Some("where") => self.walk(v, scope),
                // `wait_for.for_send` reads the event's `command_id` property.
                Some("for_send") => {
                    if let Some(ty) = scope {
                        self.property(v, ty, "command_id", " (`for_send` reads it)");
                    }
                }
                _ => self.walk(v, None),
            }
        }
    }

    /// Whether `t` is known; reports it at `node` when not.
    fn event_type(&mut self, node: &Node, t: &str) -> bool {
        if self.catalog.knows(t) {
            return true;
        }
        let hint = did_you_mean(t, self.catalog.types());
        self.cx.err(
            node,
            format!("event type `{t}` is not in the event catalog{hint}"),
        );
        false
    }

    /// Conditions and data anywhere below `node`: `did:` types and `path:` properties.
    /// `event`: the type `event.` paths read here, when known.
    fn walk(&mut self, node: &'c Node, event: Option<&'c str>) {
        match &node.kind {
            Kind::Map(entries) => {
                for (k, v) in entries {
                    match (k.text(), v.text()) {
                        (Some("did"), Some(t)) => {
                            self.event_type(v, t);
                        }
                        (Some("path"), Some(p)) => self.path(v, p, event),
                        _ => self.walk(v, event),
                    }
                }
            }
            Kind::Seq(items) => items.iter().for_each(|item| self.walk(item, event)),
            Kind::Scalar(..) => {}
        }
    }

    fn path(&mut self, node: &Node, path: &str, event: Option<&str>) {
        let (ty, rest) = if let Some(rest) = path.strip_prefix("event.properties.") {
            (event, rest)
        } else if let Some(rest) = path.strip_prefix("trigger.properties.") {
            (self.trigger, rest)
        } else {
            return;
        };
        let Some(ty) = ty else { return };
        let name = rest.split('.').next().unwrap_or(rest);
        if !name.is_empty() {
            self.property(node, ty, name, "");
        }
    }

    /// Reports at `node` when the catalogue lists the properties of `ty` and `name` is not
    /// among them.
    fn property(&mut self, node: &Node, ty: &str, name: &str, why: &str) {
        let Some(known) = self.catalog.properties(ty) else {
            return;
        };
        if known.contains(&name) {
            return;
        }
        let hint = did_you_mean(name, known.iter().copied());
        self.cx.err(
            node,
            format!("event type `{ty}` has no property `{name}` in the event catalog{why}{hint}"),
        );
    }
}
