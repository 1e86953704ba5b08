//! The inline SVG chart of sends per channel over time.

use super::Run;
use crate::flow::{group_digits, xml_escape};
use chrono::DateTime;
use std::fmt::Write as _;

const CHANNEL_COLOURS: [&str; 8] = [
    "#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563",
];

/// Stacked bars of sends per channel, per day (per hour when the run spans under three days).
pub(super) fn sends_chart(run: &Run) -> String {
    let channels: Vec<String> = {
        let mut v: Vec<String> = run.sends_per_hour.keys().map(|(c, _)| c.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let (Some(first), Some(last)) = (
        run.sends_per_hour.keys().map(|(_, h)| *h).min(),
        run.sends_per_hour.keys().map(|(_, h)| *h).max(),
    ) else {
        return "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"8\" y=\"24\" font-size=\"13\">No sends.</text></svg>\n".into();
    };
    let per_day = last - first >= 72;
    let bucket = |h: i64| if per_day { h.div_euclid(24) } else { h };
    let (b0, b1) = (bucket(first), bucket(last));
    let n = (b1 - b0 + 1) as usize;
    let mut stacks = vec![vec![0u64; channels.len()]; n];
    for ((c, h), v) in &run.sends_per_hour {
        let ci = channels.iter().position(|x| x == c).unwrap_or(0);
        stacks[(bucket(*h) - b0) as usize][ci] += v;
    }
    let max = stacks
        .iter()
        .map(|s| s.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, left, bottom, top) = (960.0, 300.0, 56.0, 48.0, 16.0);
    let plot_w = w - left - 16.0;
    let plot_h = h - bottom - top;
    let bar_w = plot_w / n as f64;
    let mut s = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" \
         viewBox=\"0 0 {w} {}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n",
        h + 24.0,
        h + 24.0
    );
    // Grid and y axis, up to the first round figure at or above the highest bar.
    let step = nice_step(max);
    let max = max.div_ceil(step) * step;
    let mut y = 0;
    while y <= max {
        let py = top + plot_h - plot_h * y as f64 / max as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5b6170\">{}</text>",
            left + plot_w,
            left - 6.0,
            py + 4.0,
            group_digits(y)
        );
        y += step;
    }
    for (i, stack) in stacks.iter().enumerate() {
        let x = left + i as f64 * bar_w;
        let mut base = top + plot_h;
        for (ci, v) in stack.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let bh = plot_h * *v as f64 / max as f64;
            base -= bh;
            let label = bucket_label(b0 + i as i64, per_day);
            let _ = writeln!(
                s,
                "<rect class=\"bar\" x=\"{:.1}\" y=\"{base:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" \
                 fill=\"{}\"><title>{label} {}: {}</title></rect>",
                x + bar_w * 0.1,
                (bar_w * 0.8).max(1.0),
                CHANNEL_COLOURS[ci % CHANNEL_COLOURS.len()],
                xml_escape(&channels[ci]),
                group_digits(*v)
            );
        }
    }
    // x labels: at most ~12.
    let every = n.div_ceil(12).max(1);
    for i in (0..n).step_by(every) {
        let x = left + i as f64 * bar_w + bar_w / 2.0;
        let _ = writeln!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#5b6170\">{}</text>",
            top + plot_h + 16.0,
            bucket_label(b0 + i as i64, per_day)
        );
    }
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9ca3af\"/>",
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    // Legend.
    let mut lx = left;
    for (ci, c) in channels.iter().enumerate() {
        let total: u64 = stacks.iter().map(|st| st[ci]).sum();
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{} ({})</text>",
            h + 2.0,
            CHANNEL_COLOURS[ci % CHANNEL_COLOURS.len()],
            lx + 16.0,
            h + 12.0,
            xml_escape(c),
            group_digits(total)
        );
        lx += 40.0 + 8.0 * (c.len() + group_digits(total).len()) as f64;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5b6170\">sends per {} (UTC)</text>",
        left + plot_w,
        h + 12.0,
        if per_day { "day" } else { "hour" }
    );
    s.push_str("</svg>\n");
    s
}

pub(super) fn nice_step(max: u64) -> u64 {
    let raw = (max as f64 / 5.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    step.max(1.0) as u64
}

fn bucket_label(b: i64, per_day: bool) -> String {
    let secs = if per_day { b * 86_400 } else { b * 3_600 };
    match DateTime::from_timestamp(secs, 0) {
        Some(t) if per_day => t.format("%b %d").to_string(),
        Some(t) => t.format("%d %H:00").to_string(),
        None => b.to_string(),
    }
}
