//! `journeyd graph`: prints one journey as a Mermaid flowchart, so a marketer (or a reviewer of
//! the pull request that changes a journey) can see its paths at a glance: the trigger and entry
//! rules, every step with its parameters, where each step leads, branch conditions, split arms,
//! `wait_for` outcomes, and the exit and goal rules that can end it anywhere.
//!
//! `--format dot` prints Graphviz DOT and `--format svg` an SVG drawing laid out and drawn by
//! journeyd itself (see [`crate::flow`]).
//!
//! The journey is validated first, against `--config`, else `./journeyd.yaml` when present,
//! else leniently (every rule of the language but the declared channels, so any journey file
//! can be drawn on its own).

use anyhow::Context;
use journey_spec::{
    Action, Condition, Duration, EventMatch, Journey, Next, Op, Percent, Reentry, Status, TimeOfDay,
};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `journeyd graph`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The journey file to draw.
    #[arg(value_name = "JOURNEY_FILE")]
    pub journey: PathBuf,
    /// Engine configuration to validate against (default: ./journeyd.yaml if present, else
    /// every channel the journey uses is accepted).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output format: a Mermaid flowchart, Graphviz DOT, or an SVG drawing laid out by journeyd.
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: Format,
}

/// What `journeyd graph` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Mermaid,
    Dot,
    Svg,
}

/// Entry point of `journeyd graph`.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.journey)
        .with_context(|| format!("cannot read journey file {}", args.journey.display()))?;
    let config_path = args.config.clone().or_else(|| {
        let default = crate::default_config_path();
        default.is_file().then_some(default)
    });
    let parsed = match config_path {
        Some(path) => match journey_spec::load_config(&path) {
            Ok(config) => journey_spec::parse_journey(&text, &args.journey, &config),
            Err(diagnostics) => return Ok(report(&diagnostics)),
        },
        None => journey_spec::parse_journey_lenient(&text, &args.journey),
    };
    let journey = match parsed {
        Ok(journey) => journey,
        Err(diagnostics) => return Ok(report(&diagnostics)),
    };
    let output = match args.format {
        Format::Mermaid => render(&journey),
        Format::Dot => crate::flow::to_dot(&crate::flow::flow(&journey), &journey.id),
        Format::Svg => crate::flow::to_svg(&crate::flow::flow(&journey), None),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn report(diagnostics: &[journey_spec::Diagnostic]) -> ExitCode {
    let mut stderr = std::io::stderr().lock();
    for diagnostic in diagnostics {
        let _ = writeln!(stderr, "{diagnostic}");
    }
    ExitCode::from(1)
}

/// Node id of the end of the journey (`end` itself is a Mermaid keyword).
const END_NODE: &str = "journey_end";

/// The journey as a Mermaid flowchart.
pub fn render(journey: &Journey) -> String {
    let mut out = String::from("flowchart TD\n");
    let title = match &journey.name {
        Some(name) => format!("{} v{}: {}", journey.id, journey.version, name),
        None => format!("{} v{}", journey.id, journey.version),
    };
    let category = match journey.category {
        journey_spec::Category::Marketing => "marketing",
        journey_spec::Category::Transactional => "transactional",
    };
    let status = match journey.status {
        Status::Active => "active",
        Status::Paused => "paused",
        Status::Draining => "draining",
    };
    let _ = writeln!(
        out,
        "  %% {title} ({category}, {status}, priority {})",
        journey.priority
    );

    // Trigger and entry rules.
    let _ = writeln!(
        out,
        "  trigger([\"{}\"])",
        escape(&format!(
            "{title}<br/>trigger: {}",
            event_match(&journey.trigger)
        ))
    );
    let mut entry = vec![format!("reentry: {}", reentry(journey.entry.reentry))];
    if let Some(unless) = &journey.entry.unless {
        entry.push(format!("unless {}", condition(unless)));
    }
    if journey.entry.holdout.basis_points > 0 {
        entry.push(format!("holdout {}", percent(journey.entry.holdout)));
    }
    if journey.status != Status::Active {
        entry.push(format!("status {status}: nobody new enters"));
    }
    let _ = writeln!(out, "  entry[/\"{}\"/]", escape(&entry.join("<br/>")));
    out.push_str("  trigger --> entry\n");
    match journey.steps.first() {
        Some(first) => {
            let _ = writeln!(out, "  entry --> {}", step_node(&first.id));
        }
        None => {
            let _ = writeln!(out, "  entry --> {END_NODE}");
        }
    }

    // Steps and their edges.
    for (index, step) in journey.steps.iter().enumerate() {
        let node = step_node(&step.id);
        let following = journey
            .steps
            .get(index + 1)
            .map_or(Next::End, |s| Next::Step(s.id.clone()));
        // Where "the following step" leads for this step: its own `next`, else the next in order.
        let fallthrough = step.next.clone().unwrap_or(following);
        match &step.action {
            Action::Wait(duration) => {
                let label = format!("{}<br/>wait {}", step.id, duration_text(*duration));
                let _ = writeln!(out, "  {node}([\"{}\"])", escape(&label));
                edge(&mut out, &node, &fallthrough, None);
            }
            Action::WaitUntil(time) => {
                let label = format!("{}<br/>wait_until {}", step.id, time_text(*time));
                let _ = writeln!(out, "  {node}([\"{}\"])", escape(&label));
                edge(&mut out, &node, &fallthrough, None);
            }
            Action::WaitFor(wait_for) => {
                let mut awaited = wait_for.event.clone();
                if let Some(c) = &wait_for.condition {
                    awaited = format!("{awaited} where {}", condition(c));
                }
                if let Some(send) = &wait_for.for_send {
                    awaited = format!("{awaited} for_send {send}");
                }
                let label = format!(
                    "{}<br/>wait_for {}<br/>timeout {}",
                    step.id,
                    awaited,
                    duration_text(wait_for.timeout)
                );
                let _ = writeln!(out, "  {node}{{{{\"{}\"}}}}", escape(&label));
                let on_event = wait_for.on_event.clone().unwrap_or(fallthrough.clone());
                let on_timeout = wait_for.on_timeout.clone().unwrap_or(fallthrough);
                edge(&mut out, &node, &on_event, Some(&awaited));
                let timeout = format!("timeout {}", duration_text(wait_for.timeout));
                edge(&mut out, &node, &on_timeout, Some(&timeout));
            }
            Action::Send(send) => {
                let mut label = format!(
                    "{}<br/>send {}<br/>channels: {}",
                    step.id,
                    send.template,
                    send.channels.join(" › ")
                );
                if !send.data.is_empty() {
                    let keys: Vec<&str> = send.data.keys().map(String::as_str).collect();
                    let _ = write!(label, "<br/>data: {}", keys.join(", "));
                }
                let _ = writeln!(out, "  {node}[\"{}\"]", escape(&label));
                edge(&mut out, &node, &fallthrough, None);
                if send.if_no_channel == journey_spec::IfNoChannel::Exit {
                    let _ = writeln!(out, "  {node} -.->|\"no channel: exit\"| {END_NODE}");
                }
            }
            Action::Branch(cases) => {
                let label = format!("{}<br/>branch", step.id);
                let _ = writeln!(out, "  {node}{{\"{}\"}}", escape(&label));
                for case in cases {
                    let text = case.when.as_ref().map_or("else".to_string(), condition);
                    edge(&mut out, &node, &case.next, Some(&text));
                }
                if cases.last().is_some_and(|case| case.when.is_some()) {
                    edge(&mut out, &node, &fallthrough, Some("no case matched"));
                }
            }
            Action::Split(arms) => {
                let label = format!("{}<br/>split", step.id);
                let _ = writeln!(out, "  {node}{{\"{}\"}}", escape(&label));
                for arm in arms {
                    let text = format!("{} {}", arm.name, percent(arm.percent));
                    edge(&mut out, &node, &arm.next, Some(&text));
                }
            }
        }
    }
    let _ = writeln!(out, "  {END_NODE}(((end)))");

    // Rules that can end the journey from anywhere.
    if !journey.exit_when.is_empty() {
        let rules: Vec<String> = journey.exit_when.iter().map(event_match).collect();
        let label = format!("exit when (anywhere):<br/>{}", rules.join("<br/>or "));
        let _ = writeln!(out, "  exit_when[/\"{}\"/]", escape(&label));
        let _ = writeln!(out, "  exit_when -.->|\"exited\"| {END_NODE}");
    }
    if let Some(goal) = &journey.goal {
        let mut label = format!("goal: {}", goal.event);
        if let Some(c) = &goal.condition {
            let _ = write!(label, " where {}", condition(c));
        }
        if let Some(within) = goal.within {
            let _ = write!(label, "<br/>within {} of entry", duration_text(within));
        }
        label.push_str(if goal.exit {
            "<br/>reaching it ends the journey"
        } else {
            "<br/>recorded; the journey goes on"
        });
        let _ = writeln!(out, "  goal[/\"{}\"/]", escape(&label));
        if goal.exit {
            let _ = writeln!(out, "  goal -.->|\"goal\"| {END_NODE}");
        }
    }
    out
}

/// The phrases of the Mermaid labels, shared with the DOT and SVG renderings (`crate::flow`).
pub(crate) mod text {
    use journey_spec::{Condition, Duration, EventMatch, Percent, Reentry, TimeOfDay};

    pub(crate) fn event_match(m: &EventMatch) -> String {
        super::event_match(m)
    }
    pub(crate) fn reentry(r: Reentry) -> String {
        super::reentry(r)
    }
    pub(crate) fn condition(c: &Condition) -> String {
        super::condition(c)
    }
    pub(crate) fn percent(p: Percent) -> String {
        super::percent(p)
    }
    pub(crate) fn duration(d: Duration) -> String {
        super::duration_text(d)
    }
    pub(crate) fn time(t: TimeOfDay) -> String {
        super::time_text(t)
    }
}

fn step_node(id: &str) -> String {
    format!("step_{id}")
}

fn edge(out: &mut String, from: &str, to: &Next, label: Option<&str>) {
    let target = match to {
        Next::Step(id) => step_node(id),
        Next::End => END_NODE.to_string(),
    };
    match label {
        Some(text) => {
            let _ = writeln!(out, "  {from} -->|\"{}\"| {target}", escape(text));
        }
        None => {
            let _ = writeln!(out, "  {from} --> {target}");
        }
    }
}

/// Escapes text for a quoted Mermaid label. `<br/>` line breaks written by this module are kept;
/// every other character Mermaid or its HTML rendering would interpret is an entity code.
fn escape(text: &str) -> String {
    const BREAK: &str = "<br/>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(BREAK) {
            out.push_str(BREAK);
            rest = after;
            continue;
        }
        let c = rest.chars().next().expect("rest is not empty");
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '|' => out.push_str("#124;"),
            '#' => out.push_str("#35;"),
            '\n' => out.push_str(BREAK),
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn event_match(m: &EventMatch) -> String {
    match &m.condition {
        Some(c) => format!("{} where {}", m.event, condition(c)),
        None => m.event.clone(),
    }
}

fn reentry(r: Reentry) -> String {
    match r {
        Reentry::Once => "once".into(),
        Reentry::Always => "always".into(),
        Reentry::After(d) => format!("after {}", duration_text(d)),
    }
}

/// A condition in words, close to how it is written.
fn condition(c: &Condition) -> String {
    match c {
        Condition::Compare { path, comparisons } => comparisons
            .iter()
            .map(|(op, value)| comparison(&path.text, *op, value))
            .collect::<Vec<_>>()
            .join(" and "),
        Condition::Did { event, within } => match within {
            Some(d) => format!("did {event} within {}", duration_text(*d)),
            None => format!("did {event}"),
        },
        Condition::All(items) => group(items, " and "),
        Condition::Any(items) => group(items, " or "),
        Condition::Not(inner) => format!("not ({})", condition(inner)),
    }
}

fn group(items: &[Condition], separator: &str) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|item| match item {
            Condition::All(_) | Condition::Any(_) => format!("({})", condition(item)),
            _ => condition(item),
        })
        .collect();
    parts.join(separator)
}

fn comparison(path: &str, op: Op, value: &serde_json::Value) -> String {
    let v = value_text(value);
    match op {
        Op::Eq => format!("{path} = {v}"),
        Op::Ne => format!("{path} != {v}"),
        Op::Gt => format!("{path} > {v}"),
        Op::Gte => format!("{path} >= {v}"),
        Op::Lt => format!("{path} < {v}"),
        Op::Lte => format!("{path} <= {v}"),
        Op::In => format!("{path} in {v}"),
        Op::NotIn => format!("{path} not in {v}"),
        Op::Contains => format!("{path} contains {v}"),
        Op::StartsWith => format!("{path} starts with {v}"),
        Op::Exists => {
            if value.as_bool() == Some(false) {
                format!("{path} missing")
            } else {
                format!("{path} exists")
            }
        }
    }
}

/// Values as a marketer wrote them: strings bare, lists in brackets.
fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_text).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// A duration in the largest whole unit among days, hours, minutes, seconds.
fn duration_text(d: Duration) -> String {
    let s = d.seconds;
    if s != 0 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s != 0 && s.is_multiple_of(3_600) {
        format!("{}h", s / 3_600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

fn time_text(t: TimeOfDay) -> String {
    format!("{:02}:{:02}", t.hour, t.minute)
}

fn percent(p: Percent) -> String {
    let whole = p.basis_points / 100;
    let fraction = p.basis_points % 100;
    if fraction == 0 {
        format!("{whole}%")
    } else if fraction.is_multiple_of(10) {
        format!("{whole}.{}%", fraction / 10)
    } else {
        format!("{whole}.{fraction:02}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_escape_quotes_and_markup() {
        assert_eq!(escape(r#"say "hi" <b>"#), "say #quot;hi#quot; #lt;b#gt;");
        assert_eq!(escape("a<br/>b|c"), "a<br/>b#124;c");
        assert_eq!(escape("#1"), "#35;1");
    }

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(duration_text(Duration::from_secs(3_600)), "1h");
        assert_eq!(duration_text(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(duration_text(Duration::from_secs(90)), "90s");
        assert_eq!(duration_text(Duration::from_secs(15 * 60)), "15m");
    }

    #[test]
    fn percentages_keep_their_decimals() {
        assert_eq!(percent(Percent { basis_points: 1000 }), "10%");
        assert_eq!(percent(Percent { basis_points: 1250 }), "12.5%");
        assert_eq!(percent(Percent { basis_points: 1205 }), "12.05%");
    }
}
