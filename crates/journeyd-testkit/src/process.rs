//! `journeyd run` as a child process: crash it (SIGKILL), stop it (SIGTERM), wait for
//! readiness, read its metrics.

use crate::http::http_get;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    out.push('\n');
    out
}

/// Starts a shell that kills `journeyd` (SIGKILL) if this test process dies without dropping
/// its [`Journeyd`] (killed by a timeout, for example), so no instance is left running. It
/// ends as soon as either process has exited, and kills only a process whose command line
/// still names `config`.
fn watch_for_orphan(child: u32, config: &Path) {
    let script = r#"while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
if kill -0 "$2" 2>/dev/null && tr '\0' ' ' <"/proc/$2/cmdline" | grep -qF -- "$3"; then
  kill -KILL "$2"
fi"#;
    let spawned = Command::new("setsid")
        .args(["bash", "-c", script, "journeyd-watchdog"])
        .arg(std::process::id().to_string())
        .arg(child.to_string())
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("cannot start the watchdog of journeyd (pid {child}): {e}");
    }
}

/// A running `journeyd run` process. Killed (SIGKILL) when dropped, so a failing test never
/// leaves one behind.
pub struct Journeyd {
    child: Child,
    pub log: PathBuf,
    pub metrics_port: u16,
}

impl Journeyd {
    /// Starts `journeyd run --config <config>` in `cwd`; stdout and stderr are appended to
    /// `log`.
    pub fn spawn_run(config: &Path, cwd: &Path, log: PathBuf, metrics_port: u16) -> Journeyd {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the journeyd log");
        let err = file.try_clone().expect("clone the log handle");
        let child = Command::new(crate::journeyd_bin())
            .arg("run")
            .arg("--config")
            .arg(config)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("start journeyd run");
        watch_for_orphan(child.id(), config);
        Journeyd {
            child,
            log,
            metrics_port,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: a crash at an arbitrary moment.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a graceful exit; SIGKILL after `timeout`. Returns the exit status
    /// text and whether the process stopped by itself.
    pub fn terminate(&mut self, timeout: Duration) -> (String, bool) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status.to_string(), true);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill9();
        ("killed after timeout".to_string(), false)
    }

    /// `GET path` on the metrics listener: (status, body), `None` if nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics_port, path)
    }

    /// The `/metrics` text, `None` if nothing answers.
    pub fn metrics(&self) -> Option<String> {
        match self.get("/metrics") {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    /// Waits until `/readyz` answers 200 (panics with the log after `timeout`, or if the
    /// process exits).
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.get("/readyz") {
                return;
            }
            assert!(
                self.is_running(),
                "journeyd exited before it was ready:\n{}",
                tail(&self.log, 40)
            );
            assert!(
                Instant::now() < deadline,
                "journeyd not ready within {timeout:?} (last /readyz: {:?}):\n{}",
                self.get("/readyz"),
                tail(&self.log, 40)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls `/metrics` until `pred` holds for the text (`None` after `timeout`).
    pub fn wait_metrics(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(text) = self.metrics() {
                if pred(&text) {
                    return Some(text);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Journeyd {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill9();
        }
    }
}
