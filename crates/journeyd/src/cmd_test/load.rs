//! Loading what a test file names: its configuration and journeys, and checking that its
//! expectations refer to journeys, steps, channels and templates that exist.

use super::Loaded;
use journey_engine::Catalog;
use journey_spec::testfile::{self, Expectation, TestFile};
use journey_spec::{Action, Diagnostic, Journey};
use std::path::Path;
use std::sync::Arc;

pub(super) fn load(file: &TestFile, default_config: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let config_path = match &file.config {
        Some(c) => {
            if !c.value.is_file() {
                return Err(vec![Diagnostic::new(
                    &file.path,
                    c.pos.line,
                    c.pos.column,
                    format!("configuration file {} not found", c.value.display()),
                )]);
            }
            c.value.clone()
        }
        None => default_config.to_path_buf(),
    };
    let config = journey_spec::load_config(&config_path)?;
    let journeys = match &file.journeys {
        None => journey_spec::load_journeys_dir(&config.journeys_dir, &config)?,
        Some(list) => {
            let mut journeys = Vec::new();
            let mut diagnostics = Vec::new();
            for j in list {
                match std::fs::read_to_string(&j.value) {
                    Ok(text) => match journey_spec::parse_journey(&text, &j.value, &config) {
                        Ok(journey) => journeys.push(journey),
                        Err(ds) => diagnostics.extend(ds),
                    },
                    Err(e) => diagnostics.push(Diagnostic::new(
                        &file.path,
                        j.pos.line,
                        j.pos.column,
                        format!("cannot read journey file {}: {e}", j.value.display()),
                    )),
                }
            }
            if !diagnostics.is_empty() {
                return Err(diagnostics);
            }
            journeys
        }
    };
    Ok(Loaded {
        catalog: Arc::new(Catalog::new(&config, journeys.clone())),
        journeys,
        config,
    })
}

/// Unknown journeys, steps, channels and templates in expectations (and channels in consents)
/// are errors at their position, never silent non-matches.
pub(super) fn check_references(file: &TestFile, loaded: &Loaded) -> Result<(), Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let mut err = |pos: testfile::Pos, message: String| {
        diagnostics.push(Diagnostic::new(&file.path, pos.line, pos.column, message));
    };
    let channels: Vec<&str> = loaded.config.channels.keys().map(String::as_str).collect();
    let journey_ids: Vec<&str> = loaded.journeys.iter().map(|j| j.id.as_str()).collect();
    let journey = |id: &str| loaded.journeys.iter().find(|j| j.id == id);
    let templates_of = |j: &Journey| -> Vec<String> {
        j.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Send(send) => Some(send.template.clone()),
                _ => None,
            })
            .collect()
    };
    let hint = |word: &str, options: &[&str]| match journey_spec::values::suggest(
        word,
        options.iter().copied(),
    ) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    for test in &file.tests {
        for c in &test.customers {
            for (channel, _) in &c.consent {
                if !channels.contains(&channel.value.as_str()) {
                    err(
                        channel.pos,
                        format!(
                            "channel `{}` is not declared in the configuration{}",
                            channel.value,
                            hint(&channel.value, &channels)
                        ),
                    );
                }
            }
        }
        for e in &test.expect {
            let (j, step, channel, template) = match e {
                Expectation::Send(s) => (&s.journey, &s.step, &s.channel, &s.template),
                Expectation::Decision(d) => (&d.journey, &d.step, &d.channel, &None),
                Expectation::NoSend(n) => (&n.journey, &None, &n.channel, &n.template),
            };
            let mut scope: Vec<&Journey> = loaded.journeys.iter().collect();
            if let Some(j) = j {
                match journey(&j.value) {
                    Some(found) => scope = vec![found],
                    None => {
                        err(
                            j.pos,
                            format!(
                                "journey `{}` is not loaded by this test file{}",
                                j.value,
                                hint(&j.value, &journey_ids)
                            ),
                        );
                        continue;
                    }
                }
            }
            if let Some(c) = channel {
                if !channels.contains(&c.value.as_str()) {
                    err(
                        c.pos,
                        format!(
                            "channel `{}` is not declared in the configuration{}",
                            c.value,
                            hint(&c.value, &channels)
                        ),
                    );
                }
            }
            if let Some(s) = step {
                let steps: Vec<&str> = scope
                    .iter()
                    .flat_map(|j| j.steps.iter().map(|s| s.id.as_str()))
                    .collect();
                if !steps.contains(&s.value.as_str()) {
                    err(
                        s.pos,
                        format!(
                            "step `{}` is in no loaded journey{}",
                            s.value,
                            hint(&s.value, &steps)
                        ),
                    );
                }
            }
            if let Some(t) = template {
                let templates: Vec<String> = scope.iter().flat_map(|j| templates_of(j)).collect();
                let refs: Vec<&str> = templates.iter().map(String::as_str).collect();
                if !refs.contains(&t.value.as_str()) {
                    err(
                        t.pos,
                        format!(
                            "template `{}` is sent by no loaded journey{}",
                            t.value,
                            hint(&t.value, &refs)
                        ),
                    );
                }
            }
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(diagnostics)
    }
}
