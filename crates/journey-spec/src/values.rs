//! The small value languages inside journey and configuration files: durations, percentages,
//! times of day, identifiers and paths, plus "did you mean" suggestions. Each parser takes the
//! text as written and returns the value or the exact message to report.

use crate::model::{Duration, Path, PathRoot, Percent, TimeOfDay};

/// `30s`, `15m`, `2h`, `7d`, `2w`: a whole positive number and a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "bad duration `{text}`: expected a whole positive number and a unit (s, m, h, d, w), \
             like `30s`, `2h` or `7d`"
        )
    };
    let unit_at = text.len().checked_sub(1).ok_or_else(bad)?;
    if !text.is_char_boundary(unit_at) {
        return Err(bad());
    }
    let (number, unit) = text.split_at(unit_at);
    let factor: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let count: u64 = number.parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(bad());
    }
    // Anything beyond a few centuries is a typo, and it must stay representable as chrono time.
    const LIMIT: u64 = 100 * 366 * 86_400;
    match count.checked_mul(factor) {
        Some(seconds) if seconds <= LIMIT => Ok(Duration::from_secs(seconds)),
        _ => Err(format!("bad duration `{text}`: longer than 100 years")),
    }
}

/// `10%`, `12.5%`, `0.25%` (also written without `%`, as a number): 0 to 100 with at most two
/// decimals, in basis points.
pub fn parse_percent(text: &str) -> Result<Percent, String> {
    let bad = || {
        format!(
            "bad percentage `{text}`: expected 0% to 100% with at most two decimals, like `10%` \
             or `12.5%`"
        )
    };
    let number = text.strip_suffix('%').unwrap_or(text);
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 3
        || !digits(whole)
        || fraction.len() > 2
        || !digits(fraction)
        || (number.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let mut hundredths: u32 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    if fraction.len() == 1 {
        hundredths *= 10;
    }
    let basis_points = whole * 100 + hundredths;
    if basis_points > 10_000 {
        return Err(bad());
    }
    Ok(Percent { basis_points })
}

/// Like [`parse_percent`], but the `%` sign is required: a bare number where a share of
/// customers is meant (`holdout: 0.1`) is ambiguous (a tenth, or 0.1%?), so it is an error that
/// suggests both readings. Only a key literally named `percent` (split arms) accepts a bare
/// number, because its name already says what the number is.
pub fn parse_percent_with_sign(text: &str) -> Result<Percent, String> {
    if text.ends_with('%') {
        return parse_percent(text);
    }
    let number: Option<f64> = text.parse().ok().filter(|n: &f64| n.is_finite());
    match number {
        Some(n) if n > 0.0 && n < 1.0 => Err(format!(
            "percentage `{text}` needs a `%` sign: write `{}%` for a share of {text} of \
             customers, or `{text}%` if you mean {text} percent",
            trim_number(n * 100.0)
        )),
        Some(_) => Err(format!(
            "percentage `{text}` needs a `%` sign: write `{text}%`"
        )),
        None => parse_percent(text).and(Err(format!(
            "percentage `{text}` needs a `%` sign, like `10%`"
        ))),
    }
}

/// `10` for 10.0, `12.5` for 12.5 (at most two decimals).
fn trim_number(n: f64) -> String {
    let text = format!("{n:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Formats basis points as a percentage the way it is written (`12.5%`, `100%`).
pub fn format_percent(p: Percent) -> String {
    let whole = p.basis_points / 100;
    let fraction = p.basis_points % 100;
    if fraction == 0 {
        format!("{whole}%")
    } else {
        let decimals = format!("{fraction:02}");
        format!("{whole}.{}%", decimals.trim_end_matches('0'))
    }
}

/// `"HH:MM"`, 24-hour.
pub fn parse_time_of_day(text: &str) -> Result<TimeOfDay, String> {
    let bad = || format!("bad time of day `{text}`: expected HH:MM (24-hour), like `09:30`");
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return Err(bad());
    }
    let (h, m) = (&text[..2], &text[3..]);
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hour: u8 = h.parse().map_err(|_| bad())?;
    let minute: u8 = m.parse().map_err(|_| bad())?;
    if hour > 23 || minute > 59 {
        return Err(bad());
    }
    Ok(TimeOfDay { hour, minute })
}

/// Journey, step and channel identifiers: `[a-z0-9_]+`.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Parses a path (`event.type`, `event.properties.x.y`, `trigger.properties.x`, `profile.x`).
/// Whether an `event.` path is allowed where it is written is the caller's business.
pub fn parse_path(text: &str) -> Result<Path, String> {
    let segments: Vec<&str> = text.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("bad path `{text}`: empty name between dots"));
    }
    let root = match segments[0] {
        "event" => PathRoot::Event,
        "trigger" => PathRoot::Trigger,
        "profile" => PathRoot::Profile,
        _ => {
            return Err(format!(
                "bad path `{text}`: must start with `event.`, `trigger.` or `profile.`"
            ))
        }
    };
    let rest = &segments[1..];
    let ok = match root {
        PathRoot::Profile => !rest.is_empty(),
        PathRoot::Event | PathRoot::Trigger => {
            rest == ["type"] || (rest.len() >= 2 && rest[0] == "properties")
        }
    };
    if !ok {
        return Err(match root {
            PathRoot::Profile => {
                format!("bad path `{text}`: expected `profile.<name>`")
            }
            _ => format!(
                "bad path `{text}`: expected `{0}.type` or `{0}.properties.<name>`",
                segments[0]
            ),
        });
    }
    Ok(Path {
        root,
        segments: rest.iter().map(|s| s.to_string()).collect(),
        text: text.to_string(),
    })
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| {
            // A third of the longer word may be wrong: `sned` is `send`, `a` is not `s`.
            let longest = word.chars().count().max(c.chars().count());
            *distance > 0 && *distance <= (longest / 3).min(3)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` when a suggestion exists, else nothing.
pub(crate) fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match suggest(word, candidates) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap().seconds, 30);
        assert_eq!(parse_duration("15m").unwrap().seconds, 900);
        assert_eq!(parse_duration("2h").unwrap().seconds, 7_200);
        assert_eq!(parse_duration("7d").unwrap().seconds, 604_800);
        assert_eq!(parse_duration("2w").unwrap().seconds, 1_209_600);
        assert_eq!(parse_duration("010m").unwrap().seconds, 600);
        let msg = "bad duration `1.5h`: expected a whole positive number and a unit (s, m, h, d, \
                   w), like `30s`, `2h` or `7d`";
        assert_eq!(parse_duration("1.5h").unwrap_err(), msg);
        for bad in ["0s", "h", "", "10", "10y", "-1h", "1 h", "1H", "1hh", "é"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("99999w").unwrap_err(),
            "bad duration `99999w`: longer than 100 years"
        );
    }

    #[test]
    fn percents() {
        let bp = |t: &str| parse_percent(t).unwrap().basis_points;
        assert_eq!(bp("10%"), 1_000);
        assert_eq!(bp("12.5%"), 1_250);
        assert_eq!(bp("0.25%"), 25);
        assert_eq!(bp("0%"), 0);
        assert_eq!(bp("100%"), 10_000);
        assert_eq!(bp("100.00%"), 10_000);
        assert_eq!(bp("50"), 5_000);
        assert_eq!(
            parse_percent("12.345%").unwrap_err(),
            "bad percentage `12.345%`: expected 0% to 100% with at most two decimals, like \
             `10%` or `12.5%`"
        );
        for bad in [
            "100.01%", "101%", "-1%", "%", "1.%", ".5%", "ten%", "1e2%", "1000%",
        ] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
        for text in ["12.5%", "100%", "0.05%", "33.33%", "0%"] {
            assert_eq!(format_percent(parse_percent(text).unwrap()), text);
        }
    }

    #[test]
    fn percents_with_sign() {
        assert_eq!(parse_percent_with_sign("10%").unwrap().basis_points, 1_000);
        assert_eq!(
            parse_percent_with_sign("0.1").unwrap_err(),
            "percentage `0.1` needs a `%` sign: write `10%` for a share of 0.1 of customers, or \
             `0.1%` if you mean 0.1 percent"
        );
        assert_eq!(
            parse_percent_with_sign("15").unwrap_err(),
            "percentage `15` needs a `%` sign: write `15%`"
        );
        assert!(parse_percent_with_sign("0").is_err());
        assert!(parse_percent_with_sign("ten")
            .unwrap_err()
            .contains("bad percentage"));
        assert!(parse_percent_with_sign("101%").is_err());
    }

    #[test]
    fn times_of_day() {
        assert_eq!(
            parse_time_of_day("09:30").unwrap(),
            TimeOfDay {
                hour: 9,
                minute: 30
            }
        );
        assert_eq!(
            parse_time_of_day("23:59").unwrap(),
            TimeOfDay {
                hour: 23,
                minute: 59
            }
        );
        assert_eq!(
            parse_time_of_day("24:00").unwrap_err(),
            "bad time of day `24:00`: expected HH:MM (24-hour), like `09:30`"
        );
        for bad in ["9:30", "09:60", "0930", "09:3a", "09:30:00", "+9:30"] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("cart_abandonment_2"));
        for bad in ["", "Cart", "cart-x", "cart x", "é"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn paths() {
        let p = parse_path("event.properties.cart.value").unwrap();
        assert_eq!(p.root, PathRoot::Event);
        assert_eq!(p.segments, ["properties", "cart", "value"]);
        assert_eq!(parse_path("trigger.type").unwrap().segments, ["type"]);
        assert_eq!(parse_path("profile.tier").unwrap().segments, ["tier"]);
        assert_eq!(
            parse_path("customer.tier").unwrap_err(),
            "bad path `customer.tier`: must start with `event.`, `trigger.` or `profile.`"
        );
        assert_eq!(
            parse_path("event.cart_value").unwrap_err(),
            "bad path `event.cart_value`: expected `event.type` or `event.properties.<name>`"
        );
        assert_eq!(
            parse_path("trigger.properties").unwrap_err(),
            "bad path `trigger.properties`: expected `trigger.type` or \
             `trigger.properties.<name>`"
        );
        assert_eq!(
            parse_path("profile").unwrap_err(),
            "bad path `profile`: expected `profile.<name>`"
        );
        assert_eq!(
            parse_path("profile..tier").unwrap_err(),
            "bad path `profile..tier`: empty name between dots"
        );
        assert!(parse_path("event.type.x").is_err());
        assert!(parse_path("").is_err());
    }

    #[test]
    fn suggestions() {
        let keys = ["channels", "template", "data", "if_no_channel"];
        assert_eq!(suggest("tempalte", keys), Some("template"));
        assert_eq!(suggest("chanels", keys), Some("channels"));
        assert_eq!(suggest("colour", keys), None);
        assert_eq!(suggest("dat", keys), Some("data"));
        assert_eq!(did_you_mean("x", keys), "");
        assert_eq!(suggest("a", ["s", "b"]), None);
        assert_eq!(suggest("inn", ["in", "eq"]), Some("in"));
        assert_eq!(did_you_mean("sned", ["send"]), "; did you mean `send`?");
    }
}
