//! Journey files: conversion of the YAML tree into [`Journey`], every check of the journey
//! language (docs/journeys.md)
//! (references, reachability, loops without a wait, split totals, declared channels), and the
//! loading of a whole journeys directory with cross-file checks.
//!
//! This module holds the entry points; [`load`] reads a directory, [`convert`] turns one
//! file's YAML into the model with every per-field check, and [`graph`] checks the step graph
//! (reachability, loops that never wait).

mod convert;
mod graph;
mod load;

use crate::check::Cx;
use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::yaml;
use convert::Converter;
use indexmap::IndexMap;
use std::path::Path as FsPath;

pub use load::load_journeys_dir;

/// What checking one file produced: the journey when there was no error, the id (and where it
/// is written) for cross-file checks, and every diagnostic.
pub(crate) struct Checked {
    pub journey: Option<Journey>,
    pub id: Option<(String, usize, usize)>,
    pub diagnostics: Vec<Diagnostic>,
}

/// One journey file's text.
pub fn parse_journey(
    text: &str,
    file: &FsPath,
    config: &Config,
) -> Result<Journey, Vec<Diagnostic>> {
    let checked = check_journey(
        text,
        file,
        Some(&config.channels),
        config.event_catalog.as_ref(),
    );
    match checked.journey {
        Some(journey) if checked.diagnostics.is_empty() => Ok(journey),
        _ => Err(checked.diagnostics),
    }
}

/// Whether a file name is a journey test (`*.test.yaml` / `*.test.yml`, see docs/journeys.md,
/// "Testing journeys"): such files live next to the journeys but are not journeys.
pub fn is_test_file(name: &str) -> bool {
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

/// One journey file's text, checked leniently: every rule of the journey language applies
/// except that the channels of `send` steps need not be declared in a configuration (none is
/// given), and no event catalogue is checked. For tools that look at one journey on its own,
/// such as `journeyd graph`.
pub fn parse_journey_lenient(text: &str, file: &FsPath) -> Result<Journey, Vec<Diagnostic>> {
    let checked = check_journey(text, file, None, None);
    match checked.journey {
        Some(journey) if checked.diagnostics.is_empty() => Ok(journey),
        _ => Err(checked.diagnostics),
    }
}

/// Checks one journey text. `channels` is `None` when the configuration is unknown, which skips
/// the declared-channel check; `catalog`, when given, checks event types and properties.
pub(crate) fn check_journey(
    text: &str,
    file: &FsPath,
    channels: Option<&IndexMap<String, ChannelConfig>>,
    catalog: Option<&EventCatalog>,
) -> Checked {
    let mut cx = Cx::new(file);
    let parsed = match yaml::parse(text) {
        Ok(parsed) => parsed,
        Err(err) => {
            cx.at(err.line, err.col, format!("invalid YAML: {}", err.message));
            return Checked {
                journey: None,
                id: None,
                diagnostics: cx.finish(),
            };
        }
    };
    for problem in &parsed.problems {
        cx.at(problem.line, problem.col, problem.message.clone());
    }
    let mut id = None;
    let journey = match &parsed.root {
        None => {
            cx.at(1, 1, "empty journey file");
            None
        }
        Some(root) => {
            let mut conv = Converter {
                cx: &mut cx,
                channels,
            };
            let journey = conv.journey(root, file, &mut id);
            if let Some(catalog) = catalog {
                crate::catalog_check::check(&mut cx, root, catalog);
            }
            journey
        }
    };
    Checked {
        journey,
        id,
        diagnostics: cx.finish(),
    }
}

#[cfg(test)]
mod tests;
