//! Shared machinery for turning a positioned YAML tree into the typed model: a collector of
//! diagnostics and typed accessors that report exactly what is wrong and where. Accessors return
//! `None` after reporting, so a caller can go on checking the rest of the file.

use crate::diagnostic::Diagnostic;
use crate::model::{Duration, Percent, TimeOfDay};
use crate::values::{self, did_you_mean};
use crate::yaml::{Kind, Node, Scalar};
use std::path::Path;

/// Collects the diagnostics of one file.
pub(crate) struct Cx<'f> {
    pub file: &'f Path,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'f> Cx<'f> {
    pub fn new(file: &'f Path) -> Self {
        Cx {
            file,
            diagnostics: Vec::new(),
        }
    }

    /// Reports a problem with `node`. A node that came from an environment variable has no
    /// place in the file, so the message names the variable instead.
    pub fn err(&mut self, node: &Node, message: impl Into<String>) {
        let message = message.into();
        match &node.origin {
            Some(var) => self.diagnostics.push(Diagnostic::whole_file(
                self.file,
                format!("{message} (from {var})"),
            )),
            None => self.at(node.line, node.col, message),
        }
    }

    pub fn at(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(self.file, line, col, message));
    }

    /// The diagnostics sorted by position (stable: same-position messages keep their order).
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        self.diagnostics
    }

    /// Opens `node` as a mapping whose keys must be among `allowed`; reports every other key
    /// (with a suggestion) and, when `node` is not a mapping, `{subject} must be a mapping`.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        subject: &str,
        context: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Kind::Map(entries) = &node.kind else {
            self.err(node, format!("{subject} must be a mapping"));
            return None;
        };
        for (key, _) in entries {
            let name = key.display_text();
            if !allowed.contains(&name.as_str()) {
                let hint = did_you_mean(&name, allowed.iter().copied());
                self.err(key, format!("unknown key `{name}` in {context}{hint}"));
            }
        }
        Some(Fields {
            node,
            entries,
            context: context.to_string(),
        })
    }

    /// `node` as a list, or `{subject} must be a list`.
    pub fn list<'n>(&mut self, node: &'n Node, subject: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Seq(items) => Some(items),
            _ => {
                self.err(node, format!("{subject} must be a list"));
                None
            }
        }
    }

    /// A string or number scalar as text (`name` is the key, for the message).
    pub fn string(&mut self, node: &Node, name: &str) -> Option<String> {
        match node.text() {
            Some(text) => Some(text.to_string()),
            None => {
                self.err(node, format!("`{name}` must be a string"));
                None
            }
        }
    }

    /// Like [`Cx::string`], and not empty (an absent value, `key:`, counts as empty).
    pub fn nonempty_string(&mut self, node: &Node, name: &str) -> Option<String> {
        if node.is_null() {
            self.err(node, format!("`{name}` must not be empty"));
            return None;
        }
        let text = self.string(node, name)?;
        if text.trim().is_empty() {
            self.err(node, format!("`{name}` must not be empty"));
            return None;
        }
        Some(text)
    }

    /// An identifier (`[a-z0-9_]+`).
    pub fn identifier(&mut self, node: &Node, name: &str) -> Option<String> {
        let text = self.nonempty_string(node, name)?;
        if values::is_identifier(&text) {
            Some(text)
        } else {
            self.err(
                node,
                format!("bad {name} `{text}`: use only lowercase letters, digits and `_`"),
            );
            None
        }
    }

    pub fn bool(&mut self, node: &Node, name: &str) -> Option<bool> {
        match node.scalar() {
            Some(Scalar::Bool(b)) => Some(*b),
            _ => {
                self.err(node, format!("`{name}` must be true or false"));
                None
            }
        }
    }

    pub fn int(&mut self, node: &Node, name: &str) -> Option<i64> {
        match node.scalar() {
            Some(Scalar::Int(i)) => Some(*i),
            _ => {
                self.err(node, format!("`{name}` must be an integer"));
                None
            }
        }
    }

    /// An integer from 1 to `max`.
    pub fn positive_int(&mut self, node: &Node, name: &str, max: u64) -> Option<u64> {
        match node.scalar() {
            Some(Scalar::Int(i)) if *i >= 1 && (*i as u64) <= max => Some(*i as u64),
            _ => {
                self.err(node, format!("`{name}` must be a positive integer"));
                None
            }
        }
    }

    pub fn duration(&mut self, node: &Node) -> Option<Duration> {
        self.parsed(node, values::parse_duration)
    }

    pub fn percent(&mut self, node: &Node) -> Option<Percent> {
        self.parsed(node, values::parse_percent)
    }

    /// A percentage that must carry its `%` sign (see [`values::parse_percent_with_sign`]).
    pub fn percent_with_sign(&mut self, node: &Node) -> Option<Percent> {
        self.parsed(node, values::parse_percent_with_sign)
    }

    pub fn time_of_day(&mut self, node: &Node) -> Option<TimeOfDay> {
        self.parsed(node, values::parse_time_of_day)
    }

    fn parsed<T>(&mut self, node: &Node, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        match parse(&node.display_text()) {
            Ok(value) => Some(value),
            Err(message) => {
                self.err(node, message);
                None
            }
        }
    }

    /// One of a fixed set of words: `bad {name} `x`: expected `a`, `b` or `c``.
    pub fn choice<T: Copy>(&mut self, node: &Node, name: &str, options: &[(&str, T)]) -> Option<T> {
        let text = node.display_text();
        if let Some(text) = node.text() {
            if let Some((_, value)) = options.iter().find(|(word, _)| *word == text) {
                return Some(*value);
            }
        }
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        let hint = did_you_mean(&text, words.iter().copied());
        self.err(
            node,
            format!("bad {name} `{text}`: expected {}{hint}", one_of(&words)),
        );
        None
    }
}

/// "`a`, `b` or `c`".
pub(crate) fn one_of(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The entries of a mapping being converted.
pub(crate) struct Fields<'n> {
    pub node: &'n Node,
    pub entries: &'n [(Node, Node)],
    context: String,
}

impl<'n> Fields<'n> {
    /// The value of `key` (the first one, duplicates being reported by the YAML reader).
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.text() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value of a required key; reports `missing required key` at the mapping otherwise.
    pub fn require(&self, cx: &mut Cx, key: &str) -> Option<&'n Node> {
        let value = self.get(key);
        if value.is_none() {
            cx.err(
                self.node,
                format!("missing required key `{key}` in {}", self.context),
            );
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::one_of;

    #[test]
    fn word_lists() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b"]), "`a` or `b`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
