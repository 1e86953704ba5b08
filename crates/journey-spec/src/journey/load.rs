//! Loading a whole journeys directory: every journey file in name order, each checked against
//! the configuration, plus the cross-file check of duplicate journey ids.

use super::{check_journey, is_test_file};
use crate::diagnostic::Diagnostic;
use crate::model::*;
use std::collections::HashMap;
use std::path::Path as FsPath;

/// Every `*.yaml` / `*.yml` file directly in `dir` (hidden files and `*.test.yaml` test files
/// excepted), sorted by file name, each parsed and validated against `config`, plus cross-file checks (duplicate journey ids).
/// Returns all errors of all files, file by file in name order, by position within a file.
pub fn load_journeys_dir(dir: &FsPath, config: &Config) -> Result<Vec<Journey>, Vec<Diagnostic>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            return Err(vec![Diagnostic::whole_file(
                dir,
                format!("cannot read journeys directory: {err}"),
            )])
        }
    };
    let mut names: Vec<String> = Vec::new();
    let mut diagnostics = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                diagnostics.push(Diagnostic::whole_file(
                    dir,
                    format!("cannot read journeys directory: {err}"),
                ));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if is_yaml && !is_test_file(&name) && !name.starts_with('.') && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut journeys = Vec::new();
    let mut seen: HashMap<String, std::path::PathBuf> = HashMap::new();
    for name in names {
        let file = dir.join(&name);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) => {
                diagnostics.push(Diagnostic::whole_file(
                    &file,
                    format!("cannot read file: {err}"),
                ));
                continue;
            }
        };
        let mut checked = check_journey(
            &text,
            &file,
            Some(&config.channels),
            config.event_catalog.as_ref(),
        );
        if let Some((id, line, col)) = &checked.id {
            match seen.get(id) {
                Some(first) => {
                    checked.diagnostics.push(Diagnostic::new(
                        &file,
                        *line,
                        *col,
                        format!(
                            "duplicate journey id `{id}` (first defined in {})",
                            first.display()
                        ),
                    ));
                    checked.diagnostics.sort_by_key(|d| (d.line, d.column));
                }
                None => {
                    seen.insert(id.clone(), file.clone());
                }
            }
        }
        if checked.diagnostics.is_empty() {
            journeys.extend(checked.journey);
        }
        diagnostics.append(&mut checked.diagnostics);
    }
    if diagnostics.is_empty() {
        Ok(journeys)
    } else {
        Err(diagnostics)
    }
}
