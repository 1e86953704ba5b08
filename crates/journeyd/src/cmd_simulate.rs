//! `journeyd simulate`: runs the engine over a JSON-lines file of events with a virtual clock
//! and no Kafka, so marketers can see what a journey set would do before launch and tests can
//! compare runs byte for byte. The clock rules are those of [`crate::virtual_clock`].
//!
//! Events are handled in file order. An event older than one before it is handled at the
//! current clock (re-timed); each such line is reported on stderr with its line number, and
//! `--sort` sorts the events by timestamp (stable) before the run instead. At the end a summary
//! of the decisions goes to stderr unless `--quiet`.

use crate::summary::Summary;
use crate::virtual_clock::VirtualClock;
use anyhow::Context;
use chrono::{DateTime, Utc};
use journey_engine::formats::Format;
use journey_engine::{decode_event, Catalog, Effects, Engine, SendCommand};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Most "timestamp goes backwards" lines reported one by one; the rest are counted.
const MAX_BACKWARDS_REPORTED: usize = 10;

/// Arguments of `journeyd simulate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Engine configuration file (its `journeys_dir` is loaded).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Events, one JSON object a line; `-` reads standard input.
    #[arg(long, value_name = "FILE.jsonl")]
    pub events: PathBuf,
    /// After the last event, fire the timers due up to this instant (default: the last event's
    /// timestamp, so nothing beyond it).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub until: Option<DateTime<Utc>>,
    /// Write the decision records here, one JSON object a line.
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<PathBuf>,
    /// Format of the event lines (docs/reference/events.md). `cloudevents` reads structured
    /// mode; the customer id is `subject`, or the `customer_id_attribute` of the configuration's
    /// first cloudevents input topic.
    #[arg(long, value_enum, default_value_t = EventFormat::Native)]
    pub format: EventFormat,
    /// Sort the events by timestamp (stable) before running them, for files whose timestamps
    /// go backwards (several exports concatenated).
    #[arg(long)]
    pub sort: bool,
    /// Print no summary on stderr at the end.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFormat {
    Native,
    Segment,
    Cloudevents,
}

pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("not an RFC 3339 timestamp with offset ({e}), e.g. 2026-11-30T00:00:00Z")
        })
}

/// Entry point of `journeyd simulate`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let config = match journey_spec::load_config(&args.config) {
        Ok(config) => config,
        Err(diagnostics) => return Ok(report(&diagnostics)),
    };
    let journeys = match journey_spec::load_journeys_dir(&config.journeys_dir, &config) {
        Ok(journeys) => journeys,
        Err(diagnostics) => return Ok(report(&diagnostics)),
    };
    let max_event_bytes = config.kafka.max_event_bytes;
    let customer_id_attribute = config
        .kafka
        .input_formats
        .values()
        .find_map(|f| match f {
            journey_spec::InputFormat::CloudEvents {
                customer_id_attribute,
            } => Some(customer_id_attribute.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "subject".to_string());
    let format = match args.format {
        EventFormat::Native => Format::Native,
        EventFormat::Segment => Format::Segment,
        EventFormat::Cloudevents => Format::CloudEvents {
            customer_id_attribute: &customer_id_attribute,
        },
    };
    let engine = Engine::new(Arc::new(Catalog::new(&config, journeys)));

    let (input, source_name): (Box<dyn BufRead>, String) = if args.events.as_os_str() == "-" {
        (
            Box::new(BufReader::new(io::stdin().lock())),
            "<stdin>".to_string(),
        )
    } else {
        let file = File::open(&args.events)
            .with_context(|| format!("cannot open events file {}", args.events.display()))?;
        (
            Box::new(BufReader::new(file)),
            args.events.display().to_string(),
        )
    };
    let decisions: Option<Box<dyn Write>> = match &args.decisions {
        Some(path) => Some(Box::new(BufWriter::new(File::create(path).with_context(
            || format!("cannot create decisions file {}", path.display()),
        )?))),
        None => None,
    };
    let stdout = io::stdout();
    let mut sim = Simulation {
        clock: VirtualClock::new(engine),
        commands: BufWriter::new(stdout.lock()),
        decisions,
        summary: Summary::default(),
    };
    let mut stderr = io::stderr().lock();

    let mut last_timestamp: Option<DateTime<Utc>> = None;
    // The latest timestamp so far and its line, to report events that go backwards.
    let mut latest: Option<(DateTime<Utc>, usize)> = None;
    let mut backwards = 0usize;
    let mut events_read = 0u64;
    let mut bad_lines = 0u64;
    let mut held: Vec<(usize, journey_engine::Event)> = Vec::new();
    for_each_line(input, |line_number, line| {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match decode_event(format, line, &[], max_event_bytes) {
            Ok(event) => {
                events_read += 1;
                if args.sort {
                    held.push((line_number, event));
                    return Ok(());
                }
                match latest {
                    Some((t, at_line)) if event.timestamp < t => {
                        backwards += 1;
                        if backwards <= MAX_BACKWARDS_REPORTED {
                            writeln!(
                                stderr,
                                "{source_name}:{line_number}: warning: timestamp {} is before \
                                 {} on line {at_line}; handled at {} (use --sort to sort the \
                                 events first)",
                                journey_engine::format_time(event.timestamp),
                                journey_engine::format_time(t),
                                journey_engine::format_time(t),
                            )?;
                        }
                    }
                    _ => latest = Some((event.timestamp, line_number)),
                }
                last_timestamp =
                    Some(last_timestamp.map_or(event.timestamp, |l| l.max(event.timestamp)));
                sim.handle(&event)
            }
            Err(error) => {
                // A bad line is reported and skipped; the run goes on, as the service would.
                bad_lines += 1;
                writeln!(stderr, "{source_name}:{line_number}: {error}")?;
                Ok(())
            }
        }
    })
    .with_context(|| format!("cannot read events from {source_name}"))?;
    if backwards > MAX_BACKWARDS_REPORTED {
        writeln!(
            stderr,
            "{source_name}: warning: {backwards} events in all have a timestamp before an \
             earlier line's (use --sort to sort the events first)"
        )?;
    }
    if args.sort {
        held.sort_by_key(|(_, e)| e.timestamp);
        for (_, event) in &held {
            last_timestamp = Some(event.timestamp);
            sim.handle(event)?;
        }
    }

    if let Some(until) = args.until.or(last_timestamp) {
        sim.advance_to(until)?;
    }
    let summary = sim.finish()?;
    if !args.quiet {
        write!(stderr, "{}", summary.render(events_read, bad_lines))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every diagnostic as `FILE:LINE:COLUMN: message`; the exit code for invalid input.
fn report(diagnostics: &[journey_spec::Diagnostic]) -> ExitCode {
    let mut stderr = io::stderr().lock();
    for diagnostic in diagnostics {
        let _ = writeln!(stderr, "{diagnostic}");
    }
    ExitCode::from(1)
}

/// Calls `f(line_number, bytes)` for every line (1-based), without its line terminator. Lines
/// are read as bytes so that a line that is not UTF-8 is reported by the event parser like any
/// other bad line instead of stopping the run.
pub(crate) fn for_each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(usize, &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut buffer = Vec::with_capacity(1024);
    let mut line_number = 0;
    loop {
        buffer.clear();
        if input.read_until(b'\n', &mut buffer)? == 0 {
            return Ok(());
        }
        line_number += 1;
        let mut line = buffer.as_slice();
        if let Some(rest) = line.strip_suffix(b"\n") {
            line = rest;
        }
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        f(line_number, line)?;
    }
}

/// The engine under a virtual clock, writing its effects as they come.
struct Simulation<W: Write> {
    clock: VirtualClock,
    commands: W,
    decisions: Option<Box<dyn Write>>,
    summary: Summary,
}

impl<W: Write> Simulation<W> {
    fn handle(&mut self, event: &journey_engine::Event) -> anyhow::Result<()> {
        let (commands, decisions, summary) =
            (&mut self.commands, &mut self.decisions, &mut self.summary);
        self.clock.handle(event, &mut |effects| {
            write_effects(effects, commands, decisions, summary)
        })
    }

    fn advance_to(&mut self, target: DateTime<Utc>) -> anyhow::Result<()> {
        let (commands, decisions, summary) =
            (&mut self.commands, &mut self.decisions, &mut self.summary);
        self.clock.advance_to(target, &mut |effects| {
            write_effects(effects, commands, decisions, summary)
        })
    }

    fn finish(mut self) -> anyhow::Result<Summary> {
        self.commands.flush().context("cannot write commands")?;
        if let Some(out) = self.decisions.as_mut() {
            out.flush().context("cannot write decisions")?;
        }
        Ok(self.summary)
    }
}

fn write_effects(
    effects: &Effects,
    commands: &mut impl Write,
    decisions: &mut Option<Box<dyn Write>>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    for command in &effects.commands {
        commands.write_all(command_line(command).as_bytes())?;
        commands.write_all(b"\n")?;
    }
    for decision in &effects.decisions {
        summary.add(decision);
        if let Some(out) = decisions.as_mut() {
            out.write_all(decision.to_json().as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// The command's JSON body with the channel topic appended as a last field `"topic"`.
fn command_line(command: &SendCommand) -> String {
    let body = command.to_json();
    let topic = serde_json::to_string(&command.topic).expect("a string always serializes");
    with_topic(&body, &topic)
}

/// Inserts `,"topic":TOPIC` before the closing brace of a JSON object (`TOPIC` already encoded).
fn with_topic(body: &str, encoded_topic: &str) -> String {
    let trimmed = body.trim_end();
    let inner = trimmed.strip_suffix('}').unwrap_or(trimmed);
    let separator = if inner.trim_end().ends_with('{') {
        ""
    } else {
        ","
    };
    format!("{inner}{separator}\"topic\":{encoded_topic}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_is_appended_as_last_field() {
        assert_eq!(
            with_topic(r#"{"a":1}"#, r#""actions.email""#),
            r#"{"a":1,"topic":"actions.email"}"#
        );
        assert_eq!(with_topic("{}", r#""t""#), r#"{"topic":"t"}"#);
    }

    #[test]
    fn topic_is_json_escaped() {
        let topic = serde_json::to_string("we\"ird\\topic").unwrap();
        let line = with_topic(r#"{"a":1}"#, &topic);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["topic"], "we\"ird\\topic");
    }

    #[test]
    fn lines_are_numbered_and_stripped() {
        let input: &[u8] = b"one\r\n\ntwo\nthree";
        let mut seen = Vec::new();
        for_each_line(input, |n, line| {
            seen.push((n, String::from_utf8(line.to_vec()).unwrap()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (1, "one".to_string()),
                (2, String::new()),
                (3, "two".to_string()),
                (4, "three".to_string())
            ]
        );
    }

    #[test]
    fn until_must_be_rfc3339() {
        assert_eq!(
            parse_instant("2026-11-23T12:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T11:00:00+00:00"
        );
        assert!(parse_instant("2026-11-23 12:00").is_err());
    }
}
