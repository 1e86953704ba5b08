//! The HTML page: styles and script inlined, one section per subject (input, overview, sends,
//! skips, each journey with its flow, the baseline comparison).

use super::chart::sends_chart;
use super::{Args, Comparison, JourneyStats, Run, DIFFERING_SHOWN};
use crate::cmd_test::describe_decision;
use crate::flow::{self, group_digits, xml_escape, FlowCounts};
use journey_engine::format_time;
use journey_engine::DecisionKind as K;
use journey_spec::Config;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const STYLE: &str = r#"
body { font-family: Helvetica, Arial, sans-serif; color: #1f2430; margin: 0; background: #f6f7f9; }
header { background: #1f2a44; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: #c9d3e6; font-size: 13px; }
header code { background: #2c3a5c; color: #fff; }
main { padding: 16px 32px 48px; max-width: 1280px; }
section { background: #fff; border: 1px solid #e3e6ec; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #eceef2; padding: 4px 10px; text-align: left; }
td.num, th.num { text-align: right; }
th { background: #f1f3f7; font-weight: 600; }
td.num, th.num { font-variant-numeric: tabular-nums; }
.note { color: #5b6170; font-size: 12px; }
.warn { color: #9a3412; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.card { background: #f6f8fc; border: 1px solid #e3e8f3; border-radius: 6px; padding: 8px 12px; min-width: 110px; }
.card b { display: block; font-size: 20px; }
.card span { font-size: 12px; color: #5b6170; }
.flow { overflow-x: auto; border: 1px solid #eceef2; border-radius: 6px; padding: 8px; background: #fcfcfd; }
.lift-pos { color: #15803d; font-weight: 600; } .lift-neg { color: #b91c1c; font-weight: 600; }
code { background: #f1f3f7; padding: 1px 4px; border-radius: 3px; }
pre { font-size: 12px; background: #f6f7f9; padding: 8px; overflow-x: auto; }
nav a { margin-right: 12px; font-size: 13px; }
"#;

/// A small check run by the browser: it counts what was drawn and says so on the page
/// (`#render-check`), so a headless browser can tell the page rendered.
const SCRIPT: &str = r#"
(function () {
  var flows = document.querySelectorAll('svg.journey-flow').length;
  var charts = document.querySelectorAll('svg.chart').length;
  var check = document.getElementById('render-check');
  check.textContent = 'rendered: ' + flows + ' flow diagrams, ' + charts + ' charts';
  check.setAttribute('data-flows', flows);
  check.setAttribute('data-charts', charts);
})();
"#;

pub(super) fn render(
    args: &Args,
    config: &Config,
    run: &Run,
    comparison: Option<&Comparison>,
) -> String {
    let mut o = String::with_capacity(256 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str("<title>journeyd backtest report</title>\n<style>");
    o.push_str(STYLE);
    o.push_str("</style></head><body>\n<header><h1>Backtest report</h1>\n");
    let range = match (run.first, run.last) {
        (Some(a), Some(b)) => format!("{} → {}", format_time(a), format_time(b)),
        _ => "no events".into(),
    };
    let _ = writeln!(
        o,
        "<p>Events <code>{}</code> · configuration <code>{}</code> · journeys <code>{}</code></p>\
         <p>{range} · {} events · {} customers · {} journeys</p></header>\n<main>",
        xml_escape(&args.events.display().to_string()),
        xml_escape(&args.config.display().to_string()),
        xml_escape(&config.journeys_dir.display().to_string()),
        group_digits(run.events),
        group_digits(run.customers.len() as u64),
        run.journeys.len()
    );
    o.push_str("<p id=\"render-check\" class=\"note\">not rendered by a browser</p>\n<nav>");
    o.push_str("<a href=\"#overview\">Overview</a><a href=\"#sends\">Sends</a>");
    o.push_str("<a href=\"#skips\">Skips and caps</a>");
    for j in &run.journeys {
        let _ = write!(o, "<a href=\"#j-{0}\">{0}</a>", xml_escape(&j.id));
    }
    if comparison.is_some() {
        o.push_str("<a href=\"#baseline\">Baseline</a>");
    }
    o.push_str("</nav>\n");
    input_section(&mut o, run);
    overview(&mut o, run);
    sends_section(&mut o, run);
    skips_section(&mut o, run);
    for j in &run.journeys {
        journey_section(&mut o, j);
    }
    if let Some(c) = comparison {
        baseline_section(&mut o, run, c);
    }
    o.push_str("</main>\n<script>");
    o.push_str(SCRIPT);
    o.push_str("</script>\n</body></html>\n");
    o
}

fn input_section(o: &mut String, run: &Run) {
    if run.bad_lines == 0 && run.backwards == 0 {
        return;
    }
    o.push_str("<section id=\"input\"><h2>Input problems</h2>\n");
    if run.bad_lines > 0 {
        let _ = writeln!(
            o,
            "<p class=\"warn\">{} event lines were not valid events and were skipped{}:</p><pre>",
            group_digits(run.bad_lines),
            if run.bad_lines as usize > run.bad_listed.len() {
                format!(" (the first {} below)", run.bad_listed.len())
            } else {
                String::new()
            }
        );
        for (_, line) in &run.bad_listed {
            let _ = writeln!(o, "{}", xml_escape(line));
        }
        o.push_str("</pre>\n");
    }
    if run.backwards > 0 {
        let _ = writeln!(
            o,
            "<p class=\"warn\">{} events have a timestamp before an earlier line's; they were \
             handled at the time reached (see <code>journeyd simulate --sort</code>).</p>",
            group_digits(run.backwards)
        );
    }
    o.push_str("</section>\n");
}

fn reasons(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "—".into();
    }
    m.iter()
        .map(|(k, v)| format!("{} {}", xml_escape(k), group_digits(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn overview(o: &mut String, run: &Run) {
    o.push_str(
        "<section id=\"overview\"><h2>Overview</h2>\n<table><tr><th>journey</th>\
                <th class=\"num\">entered</th><th class=\"num\">held out</th>\
                <th>suppressed at entry</th><th class=\"num\">exited</th>\
                <th class=\"num\">goal</th><th class=\"num\">completed</th>\
                <th class=\"num\">sends</th><th>goal rate: treatment vs holdout</th></tr>\n",
    );
    for j in &run.journeys {
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#j-{id}\">{id}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            group_digits(j.entered),
            group_digits(j.entered_holdout),
            reasons(&j.suppressed),
            group_digits(j.exited),
            group_digits(j.goals + j.goals_holdout),
            group_digits(j.completed),
            group_digits(j.sends),
            lift_text(j),
            id = xml_escape(&j.id),
        );
    }
    o.push_str(
        "</table>\n<p class=\"note\">Goal rate = goals / customers entered, per group; the \
                interval is the 95% confidence interval of the difference (normal \
                approximation).</p></section>\n",
    );
}

/// Goal rates and the difference with its 95% confidence interval.
pub(super) fn lift(goals_t: u64, n_t: u64, goals_h: u64, n_h: u64) -> Option<(f64, f64, f64, f64)> {
    if n_t == 0 || n_h == 0 {
        return None;
    }
    let p1 = goals_t as f64 / n_t as f64;
    let p0 = goals_h as f64 / n_h as f64;
    let se = (p1 * (1.0 - p1) / n_t as f64 + p0 * (1.0 - p0) / n_h as f64).sqrt();
    let diff = p1 - p0;
    // A difference of rates lies in [-1, 1].
    Some((
        p1,
        p0,
        (diff - 1.96 * se).max(-1.0),
        (diff + 1.96 * se).min(1.0),
    ))
}

fn lift_text(j: &JourneyStats) -> String {
    let treated = j.entered - j.entered_holdout;
    match lift(j.goals, treated, j.goals_holdout, j.entered_holdout) {
        None if j.entered_holdout == 0 => "no holdout".into(),
        None => "—".into(),
        Some((p1, p0, lo, hi)) => {
            let class = if lo > 0.0 {
                "lift-pos"
            } else if hi < 0.0 {
                "lift-neg"
            } else {
                ""
            };
            format!(
                "{:.1}% vs {:.1}%: <span class=\"{class}\">{:+.1} pts [{:+.1}, {:+.1}]</span>",
                p1 * 100.0,
                p0 * 100.0,
                (p1 - p0) * 100.0,
                lo * 100.0,
                hi * 100.0
            )
        }
    }
}

fn sends_section(o: &mut String, run: &Run) {
    o.push_str("<section id=\"sends\"><h2>Sends over time</h2>\n");
    o.push_str(&sends_chart(run));
    o.push_str(
        "<h3>Per template</h3><table><tr><th>journey</th><th>template</th><th>channel</th>\
                <th class=\"num\">sends</th></tr>\n",
    );
    for ((j, t, c), n) in &run.templates {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(j),
            xml_escape(t),
            xml_escape(c),
            group_digits(*n)
        );
    }
    o.push_str("</table></section>\n");
}

fn skips_section(o: &mut String, run: &Run) {
    o.push_str("<section id=\"skips\"><h2>Skips, deferrals and caps</h2>\n<div class=\"cards\">");
    let total_skips: u64 = run.skips.values().sum();
    for (n, label) in [
        (total_skips, "channels skipped"),
        (run.deferred, "deferred for quiet hours"),
        (run.no_channel, "sends with no channel left"),
    ] {
        let _ = write!(
            o,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            group_digits(n)
        );
    }
    o.push_str(
        "</div>\n<h3>Channel skips by reason</h3><table><tr><th>reason</th>\
                <th class=\"num\">skips</th></tr>\n",
    );
    for (r, n) in &run.skips {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(r),
            group_digits(*n)
        );
    }
    o.push_str(
        "</table>\n<h3>Customers held back by each frequency cap</h3><table><tr>\
                <th>cap</th><th class=\"num\">customers</th></tr>\n",
    );
    if run.capped.is_empty() {
        o.push_str("<tr><td>none</td><td class=\"num\">0</td></tr>\n");
    }
    for (cap, set) in &run.capped {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(cap),
            group_digits(set.len() as u64)
        );
    }
    o.push_str("</table></section>\n");
}

fn journey_section(o: &mut String, j: &JourneyStats) {
    let _ = writeln!(
        o,
        "<section id=\"j-{0}\"><h2>{0} v{1}{2}</h2>\n<div class=\"cards\">",
        xml_escape(&j.id),
        j.version,
        j.name
            .as_ref()
            .map(|n| format!(": {}", xml_escape(n)))
            .unwrap_or_default()
    );
    for (n, label) in [
        (j.entered, "entered"),
        (j.entered_holdout, "held out"),
        (j.suppressed.values().sum(), "suppressed at entry"),
        (j.exited, "exited"),
        (j.goals + j.goals_holdout, "reached the goal"),
        (j.completed, "completed"),
        (j.sends, "sends"),
    ] {
        let _ = write!(
            o,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            group_digits(n)
        );
    }
    let _ = writeln!(
        o,
        "</div>\n<p>Suppressed at entry: {}. Goal rate, treatment vs holdout: {}.</p>",
        reasons(&j.suppressed),
        lift_text(j)
    );
    let counts = FlowCounts {
        nodes: j
            .node_counts
            .iter()
            .zip(&j.flow.nodes)
            .map(|(c, n)| (n.key != "goal" && n.key != "exit_when" || *c > 0).then_some(*c))
            .collect(),
        edges: j.edge_counts.iter().map(|c| Some(*c)).collect(),
    };
    o.push_str("<div class=\"flow\">");
    o.push_str(&flow::to_svg(&j.flow, Some(&counts)));
    o.push_str(
        "</div>\n<p class=\"note\">Customers per step and edge, counted from the decision \
                records; waits and branches record nothing and are counted along the only path \
                between recorded steps.</p></section>\n",
    );
}

fn baseline_section(o: &mut String, run: &Run, c: &Comparison) {
    let _ = writeln!(
        o,
        "<section id=\"baseline\"><h2>Compared with <code>{}</code></h2>\n<table><tr>\
         <th>journey</th><th class=\"num\">entered</th><th class=\"num\">entered (baseline)</th>\
         <th class=\"num\">sends</th><th class=\"num\">sends (baseline)</th>\
         <th class=\"num\">goals</th><th class=\"num\">goals (baseline)</th>\
         <th class=\"num\">exited</th><th class=\"num\">exited (baseline)</th></tr>",
        xml_escape(&c.dir.display().to_string())
    );
    let mut ids: Vec<&String> = run.journeys.iter().map(|j| &j.id).collect();
    for j in &c.base.journeys {
        if !ids.contains(&&j.id) {
            ids.push(&j.id);
        }
    }
    fn get<'r>(r: &'r Run, id: &str) -> Option<&'r JourneyStats> {
        r.by_id.get(id).map(|&i| &r.journeys[i])
    }
    let cell = |j: Option<&JourneyStats>, f: fn(&JourneyStats) -> u64| {
        j.map_or("—".to_string(), |j| group_digits(f(j)))
    };
    for id in ids {
        let (a, b) = (get(run, id), get(&c.base, id));
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            xml_escape(id),
            cell(a, |j| j.entered),
            cell(b, |j| j.entered),
            cell(a, |j| j.sends),
            cell(b, |j| j.sends),
            cell(a, |j| j.goals + j.goals_holdout),
            cell(b, |j| j.goals + j.goals_holdout),
            cell(a, |j| j.exited),
            cell(b, |j| j.exited),
        );
    }
    let _ = writeln!(
        o,
        "</table>\n<p><b>{}</b> customers get different sends (journey, step, template, channel \
         or time){}.</p>",
        group_digits(c.differing as u64),
        if c.differing > DIFFERING_SHOWN {
            format!("; the first {DIFFERING_SHOWN} by customer id")
        } else {
            String::new()
        }
    );
    let mut customers: Vec<&str> = c
        .current_records
        .iter()
        .chain(&c.base_records)
        .map(|k| k.decision.customer_id.as_str())
        .collect();
    customers.sort();
    customers.dedup();
    for customer in customers {
        let _ = writeln!(
            o,
            "<h3>{}</h3><table><tr><th>current journeys</th><th>baseline</th></tr><tr>",
            xml_escape(customer)
        );
        for records in [&c.current_records, &c.base_records] {
            o.push_str("<td style=\"text-align:left;vertical-align:top\"><pre>");
            for k in records
                .iter()
                .filter(|k| k.decision.customer_id == customer)
            {
                let d = &k.decision;
                let what = match (&k.template, d.kind) {
                    (Some(t), K::Sent) => {
                        format!("sent {} {t}", d.channel.as_deref().unwrap_or(""))
                    }
                    _ => describe_decision(d),
                };
                let _ = writeln!(
                    o,
                    "{}  {}  {}",
                    format_time(d.at),
                    xml_escape(&match (&d.journey_id, &d.step_id) {
                        (Some(j), Some(s)) => format!("{j}/{s}"),
                        (Some(j), None) => j.clone(),
                        _ => "-".into(),
                    }),
                    xml_escape(&what)
                );
            }
            o.push_str("</pre></td>");
        }
        o.push_str("</tr></table>\n");
    }
    o.push_str("</section>\n");
}
