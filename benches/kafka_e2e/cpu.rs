//! Where the CPU time of a phase went: the service's stream threads (`journeyd-w<i>`), the
//! librdkafka threads of this process (`rdk:*`: the service's clients and the bench's reader),
//! the rest of this process (tokio, the bench's own threads), the broker's JVM, and the whole
//! machine (`/proc/stat`). On a machine where everything shares a few cores this is what says
//! whether a phase was bound by the service, by the broker or by the cores themselves.
//!
//! Read from `/proc` (Linux): per-thread `utime + stime` of `/proc/self/task/*/stat`, the
//! process total of `/proc/self/stat` (which keeps the time of threads that have exited), the
//! broker found as the process whose command line runs `kafka.Kafka`.

use std::collections::BTreeMap;
use std::time::Instant;

/// CPU time counters at one instant, in clock ticks.
pub(super) struct Snapshot {
    at: Instant,
    /// Per thread class: stream threads, librdkafka.
    classes: BTreeMap<&'static str, u64>,
    process: u64,
    broker: Option<u64>,
    /// Busy and total ticks of all cores.
    machine: Option<(u64, u64)>,
}

const STREAM: &str = "stream threads";
const LIBRDKAFKA: &str = "librdkafka threads";

/// `utime + stime` and the command name of a `/proc/.../stat` line.
fn stat_ticks(stat: &str) -> Option<(String, u64)> {
    // The command name is in parentheses and may hold spaces; the fields after it are plain.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // After the name: state is field 3, utime field 14 and stime field 15 (1-based, `man 5 proc`).
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

fn broker_ticks() -> Option<u64> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline.split(|&b| b == 0).any(|arg| arg == b"kafka.Kafka") {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            return stat_ticks(&stat).map(|(_, t)| t);
        }
    }
    None
}

fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

impl Snapshot {
    pub(super) fn take() -> Snapshot {
        let mut classes = BTreeMap::from([(STREAM, 0), (LIBRDKAFKA, 0)]);
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                    continue;
                };
                let Some((comm, ticks)) = stat_ticks(&stat) else {
                    continue;
                };
                if comm.starts_with("journeyd-w") {
                    *classes.entry(STREAM).or_default() += ticks;
                } else if comm.starts_with("rdk:") {
                    *classes.entry(LIBRDKAFKA).or_default() += ticks;
                }
            }
        }
        let process = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| stat_ticks(&s))
            .map_or(0, |(_, t)| t);
        Snapshot {
            at: Instant::now(),
            classes,
            process,
            broker: broker_ticks(),
            machine: machine_ticks(),
        }
    }

    /// Prints the CPU seconds spent since `before`, each also as cores used on average.
    pub(super) fn print_since(&self, before: &Snapshot, phase: &str) {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let wall = (self.at - before.at).as_secs_f64().max(1e-9);
        let secs = |ticks: u64| ticks as f64 / hz;
        let part = |label: &str, ticks: u64| {
            format!(
                "{label} {:.1} s ({:.2} cores)",
                secs(ticks),
                secs(ticks) / wall
            )
        };
        let mut parts = Vec::new();
        let mut threads = 0;
        for (class, &now) in &self.classes {
            // Threads that exited took their ticks with them; the process total keeps them.
            let delta = now.saturating_sub(before.classes.get(class).copied().unwrap_or(0));
            threads += delta;
            parts.push(part(class, delta));
        }
        let process = self.process.saturating_sub(before.process);
        parts.push(part(
            "rest of the bench process",
            process.saturating_sub(threads),
        ));
        match (self.broker, before.broker) {
            (Some(now), Some(then)) => parts.push(part("broker", now.saturating_sub(then))),
            _ => parts.push("broker not found".to_owned()),
        }
        if let (Some((busy, total)), Some((busy0, total0))) = (self.machine, before.machine) {
            let (busy, total) = (busy.saturating_sub(busy0), total.saturating_sub(total0));
            parts.push(format!(
                "machine busy {:.0}% of {:.1} core-seconds",
                100.0 * busy as f64 / (total as f64).max(1.0),
                secs(total)
            ));
        }
        println!("  cpu in the {phase} ({wall:.2} s): {}", parts.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stat_line_with_spaces_in_the_name() {
        let line = "42 (rdk:broker 1) S 1 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0 9 0 1 2 3";
        assert_eq!(stat_ticks(line), Some(("rdk:broker 1".to_owned(), 280)));
    }

    #[test]
    fn this_process_has_ticks_and_a_machine() {
        let s = Snapshot::take();
        assert!(s
            .machine
            .is_some_and(|(busy, total)| busy <= total && total > 0));
        assert!(s.classes.contains_key(STREAM));
    }
}
