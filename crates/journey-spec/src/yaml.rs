//! A YAML document as a tree of nodes that remember where they were written, so that every
//! validation error can point at the offending line and column. Built from yaml-rust2's marked
//! event parser; scalars are resolved with the YAML 1.2 core schema (so `09:30` stays a string
//! and `yes` is not a boolean).

use std::collections::HashMap;
use std::rc::Rc;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A resolved scalar value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// The resolved value and the text as written.
    Scalar(Scalar, String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// One YAML node with its position (1-based line and column). Nodes made from environment
/// variables have line 0 and name the variable in `origin`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub col: usize,
    pub origin: Option<Rc<str>>,
    pub kind: Kind,
}

/// A YAML syntax error: 1-based line and column, and the parser's explanation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Node {
    pub(crate) fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Scalar(Scalar::Null, _))
    }

    /// The text of a string or number scalar (numbers keep their written form, so `id: 123`
    /// reads as `"123"`); `None` for booleans, null and collections.
    pub(crate) fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(Scalar::Str(s), _) => Some(s),
            Kind::Scalar(Scalar::Int(_) | Scalar::Float(_), text) => Some(text),
            _ => None,
        }
    }

    /// The text of any scalar as written (for messages about keys and bad values).
    pub(crate) fn display_text(&self) -> String {
        match &self.kind {
            Kind::Scalar(Scalar::Str(s), _) => s.clone(),
            Kind::Scalar(_, text) => text.clone(),
            Kind::Seq(_) => "[...]".to_string(),
            Kind::Map(_) => "{...}".to_string(),
        }
    }

    /// A scalar node whose text came from an environment variable: resolved like a plain YAML
    /// scalar (`true`, `100`, `1.5`, `null`), anything else being a string.
    pub(crate) fn from_env(var: &str, value: &str, plain: bool) -> Node {
        let scalar = if plain {
            resolve_plain(value)
        } else {
            Scalar::Str(value.to_string())
        };
        Node {
            line: 0,
            col: 0,
            origin: Some(Rc::from(var)),
            kind: Kind::Scalar(scalar, value.to_string()),
        }
    }

    /// An empty mapping created to hold a value from an environment variable.
    pub(crate) fn env_map(var: &str) -> Node {
        Node {
            line: 0,
            col: 0,
            origin: Some(Rc::from(var)),
            kind: Kind::Map(Vec::new()),
        }
    }

    /// The node as a JSON value (for literal values in conditions and send data). Map keys use
    /// their text; `.inf` and `.nan`, which JSON cannot hold, become strings.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Scalar(s, text) => match s {
                Scalar::Null => Value::Null,
                Scalar::Bool(b) => Value::Bool(*b),
                Scalar::Int(i) => Value::from(*i),
                Scalar::Float(f) => serde_json::Number::from_f64(*f)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(text.clone())),
                Scalar::Str(s) => Value::String(s.clone()),
            },
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.display_text(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Resolves a plain (unquoted) scalar with the YAML 1.2 core schema.
pub(crate) fn resolve_plain(text: &str) -> Scalar {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Scalar::Int(i);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Scalar::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Scalar::Int(i);
        }
    }
    // Rust's float parser also takes `inf` and `nan`; only the YAML number shape counts here.
    let number_shaped = unsigned.bytes().any(|b| b.is_ascii_digit())
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.as_bytes()[0] != b'e'
        && unsigned.as_bytes()[0] != b'E';
    if number_shaped {
        if let Ok(f) = text.parse::<f64>() {
            return Scalar::Float(f);
        }
    }
    Scalar::Str(text.to_string())
}

#[derive(Default)]
struct Collector {
    events: Vec<(Event, Marker)>,
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        self.events.push((ev, mark));
    }
}

/// Problems found while building the tree that are not syntax errors (the YAML is well formed
/// but not something a journey or configuration file may contain).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StructureError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// The outcome of reading one YAML text.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The first document's root; `None` when the text holds no document.
    pub root: Option<Node>,
    /// Duplicate keys, several documents, unknown aliases.
    pub problems: Vec<StructureError>,
}

/// Parses one YAML text into a positioned tree.
pub(crate) fn parse(text: &str) -> Result<Parsed, SyntaxError> {
    let mut collector = Collector::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(err) = parser.load(&mut collector, true) {
        let mark = err.marker();
        return Err(SyntaxError {
            line: mark.line().max(1),
            col: mark.col() + 1,
            message: err.info().to_string(),
        });
    }
    let mut builder = Builder {
        events: collector.events,
        at: 0,
        anchors: HashMap::new(),
        problems: Vec::new(),
    };
    let mut root = None;
    let mut documents = 0;
    while builder.at < builder.events.len() {
        let (event, mark) = builder.events[builder.at].clone();
        builder.at += 1;
        if event == Event::DocumentStart {
            documents += 1;
            let node = builder.node();
            if documents == 1 {
                root = Some(node);
            } else if documents == 2 {
                builder.problems.push(StructureError {
                    line: mark.line(),
                    col: mark.col() + 1,
                    message: "expected a single YAML document".to_string(),
                });
            }
        }
    }
    let mut problems = builder.problems;
    if let Some(root) = &root {
        duplicate_keys(root, &mut problems);
    }
    problems.sort_by_key(|p| (p.line, p.col));
    Ok(Parsed { root, problems })
}

struct Builder {
    events: Vec<(Event, Marker)>,
    at: usize,
    anchors: HashMap<usize, Node>,
    problems: Vec<StructureError>,
}

fn position(mark: &Marker) -> (usize, usize) {
    (mark.line(), mark.col() + 1)
}

impl Builder {
    /// Builds the node starting at the current event.
    fn node(&mut self) -> Node {
        let (event, mark) = self.events[self.at].clone();
        self.at += 1;
        let (line, col) = position(&mark);
        let (anchor, node) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let scalar = match (&style, &tag) {
                    (_, Some(tag)) if tag.suffix == "str" => Scalar::Str(text.clone()),
                    (TScalarStyle::Plain, _) => resolve_plain(&text),
                    _ => Scalar::Str(text.clone()),
                };
                let node = Node {
                    line,
                    col,
                    origin: None,
                    kind: Kind::Scalar(scalar, text),
                };
                (anchor, node)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                while !matches!(self.events[self.at].0, Event::SequenceEnd) {
                    items.push(self.node());
                }
                self.at += 1;
                let node = Node {
                    line,
                    col,
                    origin: None,
                    kind: Kind::Seq(items),
                };
                (anchor, node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                // A block mapping's start event is marked after its first key; the mapping is
                // reported where it begins, at that key.
                let mut start = (mark.index(), line, col);
                while !matches!(self.events[self.at].0, Event::MappingEnd) {
                    let key_mark = self.events[self.at].1;
                    if entries.is_empty() && key_mark.index() < start.0 {
                        let (l, c) = position(&key_mark);
                        start = (key_mark.index(), l, c);
                    }
                    let key = self.node();
                    let mut value = self.node();
                    // An empty value (`trigger:` and nothing) is reported at its key.
                    if matches!(&value.kind, Kind::Scalar(Scalar::Null, t) if t.is_empty()) {
                        value.line = key.line;
                        value.col = key.col;
                    }
                    entries.push((key, value));
                }
                self.at += 1;
                let node = Node {
                    line: start.1,
                    col: start.2,
                    origin: None,
                    kind: Kind::Map(entries),
                };
                (anchor, node)
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(target) => {
                    let mut node = target.clone();
                    node.line = line;
                    node.col = col;
                    (0, node)
                }
                None => {
                    self.problems.push(StructureError {
                        line,
                        col,
                        message: "unknown alias".to_string(),
                    });
                    (0, null_at(line, col))
                }
            },
            // Document and stream markers never start a node in a well-formed event stream.
            _ => (0, null_at(line, col)),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        node
    }
}

fn null_at(line: usize, col: usize) -> Node {
    Node {
        line,
        col,
        origin: None,
        kind: Kind::Scalar(Scalar::Null, String::new()),
    }
}

fn duplicate_keys(node: &Node, problems: &mut Vec<StructureError>) {
    match &node.kind {
        Kind::Scalar(..) => {}
        Kind::Seq(items) => items.iter().for_each(|n| duplicate_keys(n, problems)),
        Kind::Map(entries) => {
            for (i, (key, value)) in entries.iter().enumerate() {
                if entries[..i].iter().any(|(k, _)| k.kind == key.kind) {
                    problems.push(StructureError {
                        line: key.line,
                        col: key.col,
                        message: format!("duplicate key `{}`", key.display_text()),
                    });
                }
                duplicate_keys(value, problems);
            }
        }
    }
}

/// A YAML text as the JSON value a JSON Schema validator sees (scalars resolved with the YAML
/// 1.2 core schema, aliases expanded); `file` names the text in diagnostics. For tooling that
/// checks journey files against [`crate::json_schema`].
pub fn yaml_to_json(
    text: &str,
    file: &std::path::Path,
) -> Result<serde_json::Value, Vec<crate::Diagnostic>> {
    use crate::Diagnostic;
    match parse(text) {
        Err(err) => Err(vec![Diagnostic::new(
            file,
            err.line,
            err.col,
            format!("invalid YAML: {}", err.message),
        )]),
        Ok(parsed) if !parsed.problems.is_empty() => Err(parsed
            .problems
            .into_iter()
            .map(|p| Diagnostic::new(file, p.line, p.col, p.message))
            .collect()),
        Ok(parsed) => Ok(parsed
            .root
            .map_or(serde_json::Value::Null, |root| root.to_json())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
    }

    #[test]
    fn positions_are_one_based_and_mappings_start_at_their_first_key() {
        let node = root("id: x\nsteps:\n  - id: a\n    wait: 1h\n  - { id: b }\n");
        let Kind::Map(entries) = &node.kind else {
            panic!()
        };
        assert_eq!((node.line, node.col), (1, 1));
        assert_eq!((entries[0].1.line, entries[0].1.col), (1, 5));
        let Kind::Seq(steps) = &entries[1].1.kind else {
            panic!()
        };
        assert_eq!((steps[0].line, steps[0].col), (3, 5));
        assert_eq!((steps[1].line, steps[1].col), (5, 5));
    }

    #[test]
    fn scalars_resolve_with_the_core_schema() {
        assert_eq!(resolve_plain("20"), Scalar::Int(20));
        assert_eq!(resolve_plain("-3"), Scalar::Int(-3));
        assert_eq!(resolve_plain("12.5"), Scalar::Float(12.5));
        assert_eq!(resolve_plain("true"), Scalar::Bool(true));
        assert_eq!(resolve_plain("yes"), Scalar::Str("yes".into()));
        assert_eq!(resolve_plain("~"), Scalar::Null);
        assert_eq!(resolve_plain("09:30"), Scalar::Str("09:30".into()));
        assert_eq!(resolve_plain("inf"), Scalar::Str("inf".into()));
        assert_eq!(resolve_plain("e5"), Scalar::Str("e5".into()));
        assert_eq!(resolve_plain("1h"), Scalar::Str("1h".into()));
        let quoted = root("a: \"20\"");
        let Kind::Map(entries) = &quoted.kind else {
            panic!()
        };
        assert_eq!(entries[0].1.scalar(), Some(&Scalar::Str("20".into())));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("id: x\n  bad: [1\n").unwrap_err();
        assert_eq!((err.line, err.col), (2, 6));
        assert_eq!(
            err.message,
            "mapping values are not allowed in this context"
        );
    }

    #[test]
    fn duplicate_keys_and_extra_documents_are_reported() {
        let parsed = parse("a: 1\nb: { c: 1, c: 2 }\na: 3\n---\nx: 1\n").unwrap();
        let messages: Vec<_> = parsed
            .problems
            .iter()
            .map(|p| format!("{}:{} {}", p.line, p.col, p.message))
            .collect();
        assert_eq!(
            messages,
            [
                "2:12 duplicate key `c`",
                "3:1 duplicate key `a`",
                "4:1 expected a single YAML document"
            ]
        );
    }

    #[test]
    fn empty_values_point_at_their_key_and_aliases_copy_anchors() {
        let node = root("trigger:\nbase: &b { x: 1 }\ncopy: *b\n");
        let Kind::Map(entries) = &node.kind else {
            panic!()
        };
        assert!(entries[0].1.is_null());
        assert_eq!((entries[0].1.line, entries[0].1.col), (1, 1));
        assert_eq!(entries[2].1.kind, entries[1].1.kind);
        assert!(parse("").unwrap().root.is_none());
    }
}
