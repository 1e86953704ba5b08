//! What governs sending: channels, frequency caps, quiet hours.

use super::string_or;
use crate::check::Cx;
use crate::model::*;
use crate::values::did_you_mean;
use crate::yaml::{Kind, Node};
use indexmap::IndexMap;

pub(super) fn channels(cx: &mut Cx, node: &Node) -> Option<IndexMap<String, ChannelConfig>> {
    let Kind::Map(entries) = &node.kind else {
        if node.is_null() {
            cx.err(node, "`channels` must declare at least one channel");
        } else {
            cx.err(node, "`channels` must be a mapping");
        }
        return None;
    };
    if entries.is_empty() {
        cx.err(node, "`channels` must declare at least one channel");
        return None;
    }
    let mut channels = IndexMap::new();
    let mut ok = true;
    for (key, value) in entries {
        let name = cx.identifier(key, "channel name");
        let channel = name.as_ref().and_then(|name| channel(cx, name, value));
        match (name, channel) {
            (Some(name), Some(channel)) => {
                channels.insert(name, channel);
            }
            _ => ok = false,
        }
    }
    ok.then_some(channels)
}

fn channel(cx: &mut Cx, name: &str, node: &Node) -> Option<ChannelConfig> {
    let f = cx.fields(
        node,
        &format!("channel `{name}`"),
        &format!("channel `{name}`"),
        &["topic", "address", "consent", "quiet_hours"],
    )?;
    let topic = string_or(cx, &f, "topic", &format!("actions.{name}"));
    let address = f
        .require(cx, "address")
        .and_then(|n| cx.nonempty_string(n, "address"));
    let consent = f.require(cx, "consent").and_then(|n| {
        cx.choice(
            n,
            "consent",
            &[
                ("opt_in", ConsentMode::OptIn),
                ("opt_out", ConsentMode::OptOut),
            ],
        )
    });
    let quiet_hours = match f.get("quiet_hours") {
        Some(n) => cx.bool(n, "quiet_hours"),
        None => Some(false),
    };
    Some(ChannelConfig {
        topic: topic?,
        address: address?,
        consent: consent?,
        quiet_hours: quiet_hours?,
    })
}

/// `declared`: the channel names of the file; empty when `channels` is missing or malformed,
/// which skips the declared-channel check (that problem is reported on its own).
pub(super) fn caps(cx: &mut Cx, node: &Node, declared: &[String]) -> Option<Vec<FrequencyCap>> {
    if node.is_null() {
        return Some(Vec::new());
    }
    let items = cx.list(node, "`frequency_caps`")?;
    let mut caps: Vec<FrequencyCap> = Vec::new();
    // Names of every cap seen, including caps with other errors, to report duplicates.
    let mut names: Vec<String> = Vec::new();
    let mut ok = true;
    for item in items {
        match cap(cx, item, declared, &mut names) {
            Some(cap) => caps.push(cap),
            None => ok = false,
        }
    }
    ok.then_some(caps)
}

fn cap(
    cx: &mut Cx,
    node: &Node,
    declared: &[String],
    names: &mut Vec<String>,
) -> Option<FrequencyCap> {
    let f = cx.fields(
        node,
        "each frequency cap",
        "frequency cap",
        &["name", "channels", "max", "per"],
    )?;
    let name = f.require(cx, "name").and_then(|n| {
        let name = cx.nonempty_string(n, "name")?;
        if names.contains(&name) {
            cx.err(n, format!("duplicate frequency cap name `{name}`"));
            return None;
        }
        names.push(name.clone());
        Some(name)
    });
    let channels = f
        .require(cx, "channels")
        .and_then(|n| cap_channels(cx, n, declared));
    let max = f
        .require(cx, "max")
        .and_then(|n| cx.positive_int(n, "max", u32::MAX as u64));
    let per = f.require(cx, "per").and_then(|n| cx.duration(n));
    Some(FrequencyCap {
        name: name?,
        channels: channels?,
        max: max? as u32,
        per: per?,
    })
}

fn cap_channels(cx: &mut Cx, node: &Node, declared: &[String]) -> Option<CapChannels> {
    if node.text() == Some("all") {
        return Some(CapChannels::All);
    }
    let Kind::Seq(items) = &node.kind else {
        cx.err(node, "`channels` must be `all` or a list of channels");
        return None;
    };
    if items.is_empty() {
        cx.err(node, "`channels` must list at least one channel");
        return None;
    }
    let mut list: Vec<String> = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(name) = cx.nonempty_string(item, "channel") else {
            ok = false;
            continue;
        };
        if list.contains(&name) {
            cx.err(item, format!("channel `{name}` is listed twice"));
            ok = false;
        } else if !declared.is_empty() && !declared.contains(&name) {
            let hint = did_you_mean(&name, declared.iter().map(String::as_str));
            cx.err(
                item,
                format!("channel `{name}` is not declared in `channels`{hint}"),
            );
            ok = false;
        }
        list.push(name);
    }
    ok.then_some(CapChannels::List(list))
}

pub(super) fn quiet_hours(cx: &mut Cx, node: &Node) -> Option<QuietHours> {
    let f = cx.fields(
        node,
        "`quiet_hours`",
        "quiet_hours",
        &["start", "end", "default_timezone"],
    )?;
    let time = |cx: &mut Cx, key: &str, default: TimeOfDay| match f.get(key) {
        Some(n) => cx.time_of_day(n),
        None => Some(default),
    };
    let start = time(
        cx,
        "start",
        TimeOfDay {
            hour: 21,
            minute: 0,
        },
    );
    let end = time(cx, "end", TimeOfDay { hour: 8, minute: 0 });
    let default_timezone = match f.get("default_timezone") {
        Some(n) => timezone(cx, n),
        None => Some(chrono_tz::UTC),
    };
    Some(QuietHours {
        start: start?,
        end: end?,
        default_timezone: default_timezone?,
    })
}

fn timezone(cx: &mut Cx, node: &Node) -> Option<chrono_tz::Tz> {
    let text = cx.nonempty_string(node, "default_timezone")?;
    match text.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let hint = did_you_mean(&text, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()));
            cx.err(
                node,
                format!("bad time zone `{text}`: expected an IANA name like `Europe/London`{hint}"),
            );
            None
        }
    }
}
