//! The Apache Kafka broker of the real-broker tests and benchmarks.
//!
//! [`broker`]: `JOURNEYD_TEST_BOOTSTRAP` when set (it must answer, nothing is started then),
//! else `127.0.0.1:9092` when a broker answers there, else a [`PrivateBroker`] started on free
//! ports under `target/tmp`, once per process. If none can be found or started the caller
//! fails: real-broker tests are never skipped.
//!
//! A [`PrivateBroker`] is started with `deploy/kafka/start.sh` and stopped with
//! `deploy/kafka/stop.sh` by a watchdog shell once the process that started it has exited, so
//! a failing or interrupted test never leaves one behind. A test that takes the broker away
//! (the broker-outage fault test) starts one of its own and kills, stops and restarts it; the
//! shared broker is never touched.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A reachable Kafka broker.
#[derive(Debug)]
pub struct Broker {
    /// `host:port` for `bootstrap.servers`.
    pub bootstrap: String,
    /// Set when this process started it.
    pub private: Option<PrivateBroker>,
}

static BROKER: OnceLock<Broker> = OnceLock::new();

/// The broker every test of this process uses (found or started on first use; panics with the
/// reason when there is none).
pub fn broker() -> &'static Broker {
    BROKER.get_or_init(|| match find_or_start_broker() {
        Ok(broker) => broker,
        Err(message) => panic!("no Kafka broker for the real-broker tests: {message}"),
    })
}

/// [`broker`] without panicking: the broker, or why there is none.
pub fn find_or_start_broker() -> Result<Broker, String> {
    if let Ok(bootstrap) = std::env::var("JOURNEYD_TEST_BOOTSTRAP") {
        let bootstrap = bootstrap.trim().to_string();
        return if broker_answers(&bootstrap, Duration::from_secs(30)) {
            Ok(Broker {
                bootstrap,
                private: None,
            })
        } else {
            Err(format!(
                "JOURNEYD_TEST_BOOTSTRAP={bootstrap} does not answer a metadata request"
            ))
        };
    }
    let default = "127.0.0.1:9092";
    if broker_answers(default, Duration::from_secs(10)) {
        return Ok(Broker {
            bootstrap: default.to_string(),
            private: None,
        });
    }
    let private = PrivateBroker::start_new("shared")?;
    Ok(Broker {
        bootstrap: private.bootstrap.clone(),
        private: Some(private),
    })
}

/// True when something accepts TCP on `bootstrap` and answers a metadata request in `timeout`.
pub fn broker_answers(bootstrap: &str, timeout: Duration) -> bool {
    let Some(addr) = bootstrap.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        return false;
    }
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    consumer.fetch_metadata(None, timeout).is_ok()
}

/// A broker this process started with `deploy/kafka/start.sh`, on its own ports and directory.
#[derive(Debug, Clone)]
pub struct PrivateBroker {
    /// `127.0.0.1:port`.
    pub bootstrap: String,
    pub port: u16,
    pub controller_port: u16,
    /// The broker's directory (`server.properties`, `data/`, `server.log`, `kafka.pid`).
    pub dir: PathBuf,
}

impl PrivateBroker {
    /// Starts a new, empty broker on free ports in `target/tmp/kafka-broker-<label>-<port>`,
    /// with a watchdog that stops it once this process has exited. Waits until it serves.
    pub fn start_new(label: &str) -> Result<PrivateBroker, String> {
        let (port, controller_port) = free_port_pair();
        let dir = crate::target_tmp().join(format!("kafka-broker-{label}-{port}"));
        let broker = PrivateBroker {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            controller_port,
            dir,
        };
        eprintln!(
            "starting a private Kafka broker on {} in {}",
            broker.bootstrap,
            broker.dir.display()
        );
        // The watchdog is started before the broker, so a broker is never left running
        // behind the tests even when start.sh fails half-way.
        broker.spawn_watchdog()?;
        broker.run_start(true)?;
        Ok(broker)
    }

    fn script(name: &str) -> PathBuf {
        crate::repo_root().join("deploy/kafka").join(name)
    }

    fn spawn_watchdog(&self) -> Result<(), String> {
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash '{stop}' --dir '{dir}' >/dev/null 2>&1",
            pid = std::process::id(),
            stop = Self::script("stop.sh").display(),
            dir = self.dir.display()
        );
        Command::new("setsid")
            .args(["bash", "-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|_| ())
            .map_err(|e| format!("cannot start the broker watchdog: {e}"))
    }

    fn run_start(&self, fresh: bool) -> Result<(), String> {
        let start = Self::script("start.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&start)
            .args(["--port", &self.port.to_string()])
            .args(["--controller-port", &self.controller_port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null());
        if fresh {
            cmd.arg("--fresh");
        }
        let output = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", start.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed:\n{}",
                start.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        if !broker_answers(&self.bootstrap, Duration::from_secs(30)) {
            return Err(format!(
                "the broker started at {} does not answer",
                self.bootstrap
            ));
        }
        Ok(())
    }

    /// The broker's process id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.join("kafka.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        alive.then_some(pid)
    }

    /// SIGKILL: the broker crashes (its data stays; [`PrivateBroker::start`] brings it back).
    /// Returns once the process is gone.
    pub fn kill9(&self) {
        let Some(pid) = self.pid() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        while self.pid().is_some() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A controlled shutdown with `deploy/kafka/stop.sh` (SIGTERM, SIGKILL after its timeout).
    pub fn stop(&self) -> Result<(), String> {
        let status = Command::new("bash")
            .arg(Self::script("stop.sh"))
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run stop.sh: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("stop.sh failed: {status}"))
        }
    }

    /// Starts the broker again on the same ports and data; returns once it serves.
    pub fn start(&self) -> Result<(), String> {
        self.run_start(false)
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port on 127.0.0.1")
}

/// Two consecutive free ports (the broker's client and controller ports).
pub fn free_port_pair() -> (u16, u16) {
    for _ in 0..100 {
        let port = free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
    panic!("no two consecutive free ports on 127.0.0.1");
}
