//! What journeyd's black-box tests (`tests/`) and the end-to-end benchmark
//! (`benches/kafka_e2e/`) share, so that each exists once:
//!
//! - [`broker`]: a reachable Apache Kafka broker, found or started with `deploy/kafka/start.sh`
//!   (stopped by a watchdog when the test process exits), and a private broker a test can stop,
//!   kill and start again;
//! - [`kafka`]: topics, producing, `read_committed` reads;
//! - [`process`]: `journeyd run` as a child process (SIGKILL, SIGTERM, readiness, metrics);
//! - [`prom`]: reading the Prometheus text exposition (sums of series, histograms, quantiles);
//! - [`http`]: GET on 127.0.0.1;
//! - [`scenario`]: one test's world (unique topic names, configuration, journeys, logs,
//!   `journeyd simulate` over the same events);
//! - [`stories`]: customer stories for the fixture journeys, trickled in and read back;
//! - [`compare`]: commands read from Kafka against the simulated ones;
//! - [`tail`]: a timestamped `read_committed` reader on its own thread, committed offsets;
//! - [`eventgen`]: the seeded event stream `journeyd demo` shows, and [`seed_from_env`].
//!
//! Real-broker tests never skip: without a broker they fail with the reason. Everything binds
//! and connects to 127.0.0.1 only.

pub mod broker;
pub mod compare;
pub mod http;
pub mod kafka;
pub mod process;
pub mod prom;
pub mod scenario;
pub mod stories;
pub mod tail;

pub use broker::{broker, free_port, free_port_pair, Broker, PrivateBroker};
pub use compare::{
    assert_same_commands, by_command_id, canonical, command_with_topic, multiset, parse_json_lines,
    without_clock,
};
pub use http::http_get;
pub use journey_eventgen as eventgen;
pub use journey_eventgen::SplitMix as Rng;
pub use kafka::{client_config, Delivered, Kafka, Outgoing, Record};
pub use process::{tail, Journeyd};
pub use prom::{histogram, histogram_quantile, metric_sum, Histogram};
pub use scenario::{event, ConfigExtra, Scenario, CHANNELS};
pub use stories::{far_enough, flatten, interleave, read_commands, story, trickle};
pub use tail::{committed_total, input_end, Seen, TailReader};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The repository root (this crate lives in `crates/journeyd-testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/fixtures/kafka/`.
pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/kafka")
}

/// The build's profile directory (`target/debug`): the directory of the running test binary
/// is `<profile>/deps`, the benchmark binary's is `<profile>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running executable");
    let dir = exe.parent().expect("an executable lives in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The `journeyd` binary of this build: `JOURNEYD_BIN` when set, else `journeyd` in the build's
/// profile directory (cargo builds it before the integration tests of its package).
pub fn journeyd_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("JOURNEYD_BIN") {
        return PathBuf::from(bin);
    }
    let bin = profile_dir().join(format!("journeyd{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} not found: build it (cargo build -p journeyd) or set JOURNEYD_BIN",
        bin.display()
    );
    bin
}

/// A directory for the files of the tests' runs (`target/tmp`, as cargo's
/// `CARGO_TARGET_TMPDIR`), kept after the run for diagnosis.
pub fn target_tmp() -> PathBuf {
    let dir = profile_dir()
        .parent()
        .map(|target| target.join("tmp"))
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).expect("create target/tmp");
    dir
}

/// A seed from `JOURNEYD_TEST_SEED`, else from the clock; the tests that use one print it, so a
/// failure can be replayed.
pub fn seed_from_env() -> u64 {
    std::env::var("JOURNEYD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(clock_nanos)
}

fn clock_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Eight hex digits, different for every call (clock, process id and a counter mixed).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::new(clock_nanos() ^ (u64::from(std::process::id()) << 32) ^ n);
    format!("{:08x}", rng.next_u64() as u32)
}

/// The tokio runtime of the test clients' futures (one worker thread, made on first use).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime for the Kafka clients of the tests")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_suffixes_differ() {
        let a: std::collections::BTreeSet<String> = (0..100).map(|_| unique_suffix()).collect();
        assert_eq!(a.len(), 100);
        assert!(a.iter().all(|s| s.len() == 8));
    }

    #[test]
    fn the_repository_root_holds_the_fixtures() {
        assert!(fixtures().join("journeyd.yaml.in").is_file());
    }
}
