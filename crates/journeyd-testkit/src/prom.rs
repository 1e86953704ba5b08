//! Reading Prometheus' text exposition format as journeyd's `/metrics` serves it.

/// The sum of every series of metric `name` whose labels include all of `labels` (0 when none
/// matches).
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if matches {
            sum += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    sum
}

/// A histogram as read at one moment: cumulative buckets (upper bound, count), over every
/// series of the family summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

impl Histogram {
    /// The observations made between `before` and `self` (bucket by bucket).
    pub fn since(&self, before: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, c)| {
                let prev = before
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0.0, |(_, p)| *p);
                (*le, c - prev)
            })
            .collect();
        Histogram {
            buckets,
            count: self.count - before.count,
            sum: self.sum - before.sum,
        }
    }

    /// See [`histogram_quantile`].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        histogram_quantile(q, &self.buckets)
    }
}

/// Histogram `name` in a text exposition (the series of every label set added up).
pub fn histogram(text: &str, name: &str) -> Histogram {
    let bucket = format!("{name}_bucket");
    let mut h = Histogram::default();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.trim().parse().unwrap_or(0.0);
        let (metric, labels) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric == bucket {
            let Some(le) = labels
                .split(',')
                .find_map(|l| l.trim().strip_prefix("le=\""))
                .map(|l| l.trim_end_matches('"'))
            else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            match h.buckets.iter_mut().find(|(l, _)| *l == le) {
                Some((_, c)) => *c += value,
                None => h.buckets.push((le, value)),
            }
        } else if metric == format!("{name}_count") {
            h.count += value;
        } else if metric == format!("{name}_sum") {
            h.sum += value;
        }
    }
    h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    h
}

/// The quantile of cumulative buckets, interpolated inside the bucket as Prometheus'
/// `histogram_quantile` does.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev_le);
            }
            let in_bucket = count - prev_count;
            let frac = if in_bucket > 0.0 {
                (rank - prev_count) / in_bucket
            } else {
                0.0
            };
            return Some(prev_le + (le - prev_le) * frac);
        }
        prev_le = le;
        prev_count = count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP journeyd_commands_total Commands.
# TYPE journeyd_commands_total counter
journeyd_commands_total{channel=\"email\",journey=\"a\"} 3
journeyd_commands_total{channel=\"sms\",journey=\"a\"} 2
journeyd_commands_total{channel=\"email\",journey=\"b\"} 4
journeyd_up 1
# TYPE journeyd_commit_seconds histogram
journeyd_commit_seconds_bucket{le=\"0.1\"} 5
journeyd_commit_seconds_bucket{le=\"1\"} 9
journeyd_commit_seconds_bucket{le=\"+Inf\"} 10
journeyd_commit_seconds_sum 4.5
journeyd_commit_seconds_count 10
";

    #[test]
    fn sums_the_series_that_carry_the_labels() {
        assert_eq!(metric_sum(TEXT, "journeyd_commands_total", &[]), 9.0);
        let email = [("channel", "email")];
        assert_eq!(metric_sum(TEXT, "journeyd_commands_total", &email), 7.0);
        assert_eq!(metric_sum(TEXT, "journeyd_up", &[]), 1.0);
        assert_eq!(metric_sum(TEXT, "journeyd_missing", &[]), 0.0);
    }

    #[test]
    fn reads_a_histogram_and_its_quantiles() {
        let h = histogram(TEXT, "journeyd_commit_seconds");
        assert_eq!(
            h.buckets,
            vec![(0.1, 5.0), (1.0, 9.0), (f64::INFINITY, 10.0)]
        );
        assert_eq!((h.count, h.sum), (10.0, 4.5));
        assert_eq!(h.quantile(0.5), Some(0.1));
        assert_eq!(h.quantile(1.0), Some(1.0));
        let none = h.since(&h);
        assert_eq!(none.count, 0.0);
        assert_eq!(none.quantile(0.5), None);
    }
}
