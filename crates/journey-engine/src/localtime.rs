//! Local wall-clock arithmetic for `wait_until` and quiet hours.
//!
//! A local time that does not exist on a day (a DST gap) resolves to the first valid instant
//! after it (the transition itself); a local time that happens twice (a DST fold) resolves to
//! the earlier instant.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use journey_spec::TimeOfDay;

fn naive(t: TimeOfDay) -> NaiveTime {
    NaiveTime::from_hms_opt(t.hour as u32, t.minute as u32, 0).unwrap_or(NaiveTime::MIN)
}

/// The instant of local time `t` on local date `date` in `tz`.
pub fn local_on(tz: Tz, date: NaiveDate, t: TimeOfDay) -> DateTime<Utc> {
    let local = date.and_time(naive(t));
    match tz.from_local_datetime(&local) {
        LocalResult::Single(x) => x.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // Gaps are whole minutes in every zone in use; walk forward to the first minute that
            // exists, which is the transition instant.
            let mut n = local;
            for _ in 0..(48 * 60) {
                n += Duration::minutes(1);
                if let Some(x) = tz.from_local_datetime(&n).earliest() {
                    return x.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

/// The next occurrence of local time `t` in `tz`, strictly after `now`.
pub fn next_local(tz: Tz, now: DateTime<Utc>, t: TimeOfDay) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    for k in -1..=3 {
        let c = local_on(tz, today + Duration::days(k), t);
        if c > now {
            return c;
        }
    }
    now + Duration::days(1)
}

/// Whether `now` falls in the daily window `[start, end)` of local time in `tz` (the window may
/// cross midnight; `start == end` is an empty window).
pub fn in_window(tz: Tz, now: DateTime<Utc>, start: TimeOfDay, end: TimeOfDay) -> bool {
    let lt = now.with_timezone(&tz).time();
    let (s, e) = (naive(start), naive(end));
    match s.cmp(&e) {
        std::cmp::Ordering::Equal => false,
        std::cmp::Ordering::Less => s <= lt && lt < e,
        std::cmp::Ordering::Greater => lt >= s || lt < e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn tod(h: u8, m: u8) -> TimeOfDay {
        TimeOfDay { hour: h, minute: m }
    }

    #[test]
    fn next_local_is_strictly_after() {
        let tz: Tz = "Europe/London".parse().unwrap();
        assert_eq!(
            next_local(tz, t("2026-11-23T08:00:00Z"), tod(9, 30)),
            t("2026-11-23T09:30:00Z")
        );
        assert_eq!(
            next_local(tz, t("2026-11-23T09:30:00Z"), tod(9, 30)),
            t("2026-11-24T09:30:00Z")
        );
        // Summer: 09:30 BST is 08:30 UTC.
        assert_eq!(
            next_local(tz, t("2026-07-01T10:00:00Z"), tod(9, 30)),
            t("2026-07-02T08:30:00Z")
        );
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            next_local(ny, t("2026-01-10T03:00:00Z"), tod(9, 0)),
            t("2026-01-10T14:00:00Z")
        );
    }

    #[test]
    fn dst_gap_and_fold() {
        let tz: Tz = "Europe/London".parse().unwrap();
        // 2026-03-29 01:30 does not exist in London: first valid instant is 01:00 UTC.
        assert_eq!(
            next_local(tz, t("2026-03-28T12:00:00Z"), tod(1, 30)),
            t("2026-03-29T01:00:00Z")
        );
        // 2026-10-25 01:30 happens twice: earlier is 00:30 UTC (BST).
        assert_eq!(
            next_local(tz, t("2026-10-24T12:00:00Z"), tod(1, 30)),
            t("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn window_crossing_midnight() {
        let utc: Tz = "UTC".parse().unwrap();
        let (s, e) = (tod(21, 0), tod(8, 0));
        assert!(in_window(utc, t("2026-01-01T21:00:00Z"), s, e));
        assert!(in_window(utc, t("2026-01-01T23:59:59Z"), s, e));
        assert!(in_window(utc, t("2026-01-01T07:59:59Z"), s, e));
        assert!(!in_window(utc, t("2026-01-01T08:00:00Z"), s, e));
        assert!(!in_window(utc, t("2026-01-01T20:59:59Z"), s, e));
        assert!(in_window(
            utc,
            t("2026-01-01T12:00:00Z"),
            tod(9, 0),
            tod(17, 0)
        ));
        assert!(!in_window(
            utc,
            t("2026-01-01T17:00:00Z"),
            tod(9, 0),
            tod(17, 0)
        ));
        assert!(!in_window(
            utc,
            t("2026-01-01T17:00:00Z"),
            tod(9, 0),
            tod(9, 0)
        ));
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        // 05:00 UTC is 21:00 PST the evening before.
        assert!(in_window(la, t("2026-01-02T05:00:00Z"), s, e));
        assert!(!in_window(la, t("2026-01-02T04:59:00Z"), s, e));
    }
}
