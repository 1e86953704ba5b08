//! Black-box tests of journeyd against a secured cluster and of what it never reveals.
//!
//! - `validate` checks `kafka.client` against the linked librdkafka (unknown names with a
//!   suggestion, a SASL mechanism this build lacks), at FILE:LINE:COLUMN of the key.
//! - `journeyd run` against a broker with SCRAM-SHA-512 listeners, SASL_PLAINTEXT and SASL_SSL
//!   (`deploy/kafka/start.sh --sasl-scram --tls-keystore`, certificates made here with openssl,
//!   started on free ports, once per test binary):
//!   events in, commands out; a wrong password or an untrusted certificate stops it with a
//!   clear error.
//! - Secrets given through the environment (the SASL password, the inspection token) never
//!   appear in the logs (librdkafka's debug lines included), in `/metrics` or in
//!   `/customers/{id}`.
//!
//! Over 600 lines on purpose: the tests share one secured broker per test binary, which is
//! started (certificates, SCRAM users, listeners) at the top of this file; splitting the file
//! would start a second broker.

use journeyd_testkit::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SASL_USER: &str = "journeyd-test";
const SASL_PASSWORD: &str = "scram-Pa55-7f3c1e9a";
const INSPECT_TOKEN: &str = "inspect-T0ken-b2d84c51";

/// Runs `journeyd ARGS` in `dir` with exactly the given `JOURNEYD_*` variables.
fn journeyd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(journeyd_bin());
    command.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JOURNEYD_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("journeyd runs")
}

fn validate_config(client: &str) -> String {
    let valid = fixtures().join("../validate/valid/journeyd.yaml");
    let text = std::fs::read_to_string(&valid).expect("read the valid configuration");
    let replaced = text.replace(
        "  client: {}                         # any librdkafka property, passed through (security, tuning)\n",
        client,
    );
    assert_ne!(replaced, text, "the fixture's client line changed");
    replaced
}

#[test]
fn validate_checks_client_properties_against_librdkafka() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journeys = fixtures().join("../validate/valid/journeys");
    let journeys = journeys.to_str().expect("utf-8 path");
    // Line 10 is the first property under `client:`.
    let bad = validate_config(
        "  client:\n    security.protocol: SASL_SSL\n    sasl.usernme: journeyd\n    compression.type: zstd\n",
    );
    std::fs::write(dir.path().join("journeyd.yaml"), bad).unwrap();
    let out = journeyd(dir.path(), &["validate", journeys], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "journeyd.yaml:10:5: SASL mechanism GSSAPI (librdkafka's default when `sasl.mechanism` is \
         not set) is not supported by this build of librdkafka (builtin features: \
         gzip,snappy,ssl,sasl,regex,lz4,sasl_plain,sasl_scram,plugins,zstd,sasl_oauthbearer,\
         http,oidc); supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER\n\
         journeyd.yaml:11:5: unknown Kafka client property `sasl.usernme`; did you mean \
         `sasl.username`?\n"
    );
    assert_eq!(out.status.code(), Some(1));

    // The mechanism from the environment: the message names the variable.
    let good = validate_config(
        "  client:\n    security.protocol: SASL_SSL\n    sasl.mechanism: SCRAM-SHA-512\n    sasl.username: journeyd\n",
    );
    std::fs::write(dir.path().join("journeyd.yaml"), good).unwrap();
    let out = journeyd(
        dir.path(),
        &["validate", journeys],
        &[("JOURNEYD_KAFKA__CLIENT__SASL_MECHANISM", "SCRAM-SHA-1024")],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "journeyd.yaml: unknown SASL mechanism `SCRAM-SHA-1024`: expected one of GSSAPI, PLAIN, \
         SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (from JOURNEYD_KAFKA__CLIENT__SASL_MECHANISM)\n"
    );
    assert_eq!(out.status.code(), Some(1));

    // A secured configuration with the password from the environment is valid.
    let out = journeyd(
        dir.path(),
        &["validate", journeys],
        &[("JOURNEYD_KAFKA__CLIENT__SASL_PASSWORD", SASL_PASSWORD)],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("ok: 3 journeys valid ({journeys}/)\n")
    );
    assert_eq!(out.status.code(), Some(0));
}

/// A broker of this test binary with SASL/SCRAM listeners, without and with TLS.
struct SaslBroker {
    /// PLAINTEXT listener: the test's own producer and readers.
    plaintext: String,
    /// SASL_PLAINTEXT SCRAM-SHA-512 listener.
    sasl: String,
    /// SASL_SSL SCRAM-SHA-512 listener, its certificate for 127.0.0.1 signed by `ca`.
    sasl_ssl: String,
    /// The test CA's certificate (PEM).
    ca: PathBuf,
}

/// A throwaway CA and a broker certificate for 127.0.0.1 signed by it, with openssl; returns
/// (the broker's PEM keystore: key then chain, the CA certificate).
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=journeyd test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
    let mut keystore = std::fs::read(dir.join("broker.key")).unwrap();
    keystore.extend(std::fs::read(dir.join("broker.pem")).unwrap());
    keystore.extend(std::fs::read(dir.join("ca.pem")).unwrap());
    std::fs::write(dir.join("keystore.pem"), keystore).unwrap();
    (dir.join("keystore.pem"), dir.join("ca.pem"))
}

fn sasl_broker() -> &'static SaslBroker {
    static BROKER: OnceLock<SaslBroker> = OnceLock::new();
    BROKER.get_or_init(|| start_sasl_broker().unwrap_or_else(|e| panic!("{e}")))
}

fn distinct_free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

fn start_sasl_broker() -> Result<SaslBroker, String> {
    let ports = distinct_free_ports(4);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("kafka-sasl-{}", ports[0]));
    let (keystore, ca) = make_certificates(&dir.join("tls"));
    let start = repo_root().join("deploy/kafka/start.sh");
    let stop = repo_root().join("deploy/kafka/stop.sh");
    eprintln!(
        "starting a Kafka broker with a SASL/SCRAM listener on 127.0.0.1:{} in {}",
        ports[2],
        dir.display()
    );
    let output = Command::new("bash")
        .arg(&start)
        .args(["--port", &ports[0].to_string()])
        .args(["--controller-port", &ports[1].to_string()])
        .args(["--sasl-port", &ports[2].to_string()])
        .args(["--sasl-scram", &format!("{SASL_USER}:{SASL_PASSWORD}")])
        .arg("--tls-keystore")
        .arg(&keystore)
        .args(["--sasl-ssl-port", &ports[3].to_string()])
        .arg("--dir")
        .arg(&dir)
        .arg("--fresh")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", start.display()))?;
    // Stops the broker once this test process has exited, whatever happens.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash '{stop}' --dir '{dir}' >/dev/null 2>&1",
        pid = std::process::id(),
        stop = stop.display(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["bash", "-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the broker watchdog: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{} --sasl-scram failed:\n{}",
            start.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(SaslBroker {
        plaintext: String::from_utf8_lossy(&output.stdout).trim().to_string(),
        sasl: format!("127.0.0.1:{}", ports[2]),
        sasl_ssl: format!("127.0.0.1:{}", ports[3]),
        ca,
    })
}

/// `GET path` with a bearer token: (status, body).
fn get_with_token(port: u16, path: &str, token: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// The test configuration, pointed at the SASL listener with SCRAM-SHA-512 and the
/// inspection endpoint on; the password and the token come from the environment.
fn write_sasl_config(
    dir: &Path,
    name: &str,
    prefix: &str,
    bootstrap: &str,
    metrics_port: u16,
    protocol: &str,
    tls_ca: Option<&Path>,
) -> PathBuf {
    let template = std::fs::read_to_string(fixtures().join("journeyd.yaml.in"))
        .expect("read tests/fixtures/kafka/journeyd.yaml.in");
    let text = template
        .replace("{{bootstrap}}", bootstrap)
        .replace("{{prefix}}", prefix)
        .replace("{{instance}}", "a")
        .replace("{{metrics_port}}", &metrics_port.to_string());
    let client = "  client:\n";
    assert!(text.contains(client));
    let text = text.replacen(
        client,
        &format!(
            "  client:\n    security.protocol: {}\n    sasl.mechanism: SCRAM-SHA-512\n    \
             sasl.username: {SASL_USER}\n    # librdkafka's debug lines, configuration dump included\n    \
             debug: security,broker,conf,generic\n{}",
            protocol,
            tls_ca.map_or(String::new(), |ca| format!("    ssl.ca.location: {}\n", ca.display()))
        ),
        1,
    );
    let text = format!("{text}\ninspect:\n  enabled: true\n");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the configuration");
    path
}

fn spawn_run(dir: &Path, config: &Path, password: &str, log: &Path) -> std::process::Child {
    let file = std::fs::File::create(log).expect("create the log");
    let mut command = Command::new(journeyd_bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JOURNEYD_") {
            command.env_remove(name);
        }
    }
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .current_dir(dir)
        .env("JOURNEYD_KAFKA__CLIENT__SASL_PASSWORD", password)
        .env("JOURNEYD_INSPECT__TOKEN", INSPECT_TOKEN)
        // Everything, librdkafka's debug output included.
        .env("RUST_LOG", "debug,librdkafka=debug")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone the log handle"))
        .stderr(file)
        .spawn()
        .expect("start journeyd run")
}

/// Waits (up to 90 s) for a `journeyd run` that must stop by itself.
fn wait_exit(mut child: std::process::Child, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().expect("wait for journeyd") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("journeyd still runs after 90 s:\n{}", tail(log, 30));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A scenario directory with the welcome journey and its topics on the broker.
fn scenario(kafka: &Kafka, name: &str) -> (String, PathBuf) {
    let prefix = format!("{name}-{}", free_port());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("kafka-tests")
        .join(&prefix);
    std::fs::create_dir_all(dir.join("journeys")).unwrap();
    std::fs::copy(
        fixtures().join("journeys/welcome.yaml"),
        dir.join("journeys/welcome.yaml"),
    )
    .unwrap();
    let mut topics = vec![
        (format!("{prefix}.events"), 2, false),
        (format!("{prefix}.state"), 2, true),
    ];
    for t in [
        "dead-letter",
        "decisions",
        "actions.email",
        "actions.sms",
        "actions.push",
    ] {
        topics.push((format!("{prefix}.{t}"), 1, false));
    }
    kafka.create_topics(&topics);
    (prefix, dir)
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [SASL_PASSWORD, INSPECT_TOKEN, "wrong-Pa55-0c41"] {
        assert!(!text.contains(secret), "{what} reveals a secret ({secret})");
    }
}

#[test]
fn sasl_scram_end_to_end_and_secrets_never_leak() {
    let broker = sasl_broker();
    let kafka = Kafka::connect(&broker.plaintext);
    let (prefix, dir) = scenario(&kafka, "sasl-scram");
    let events_topic = format!("{prefix}.events");
    let email_topic = format!("{prefix}.actions.email");

    // A wrong password: journeyd stops with the broker's reason, without the password.
    let metrics_port = free_port();
    let config = write_sasl_config(
        &dir,
        "config.yaml",
        &prefix,
        &broker.sasl,
        metrics_port,
        "SASL_PLAINTEXT",
        None,
    );
    let wrong_log = dir.join("wrong-password.log");
    let wrong = spawn_run(&dir, &config, "wrong-Pa55-0c41", &wrong_log);
    let status = wait_exit(wrong, &wrong_log);
    let text = std::fs::read_to_string(&wrong_log).unwrap();
    assert_eq!(status.code(), Some(2), "{}", tail(&wrong_log, 30));
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "journeyd: cannot reach the Kafka cluster at {}:",
            broker.sasl
        )) && last.contains("invalid credentials with SASL mechanism SCRAM-SHA-512"),
        "unclear error: {last}"
    );
    assert_no_secret("the log of a failed start", &text);

    // The right password: events in, commands out.
    let log = dir.join("run.log");
    let mut child = spawn_run(&dir, &config, SASL_PASSWORD, &log);
    let start = chrono::Utc::now();
    let events: Vec<_> = (0..3)
        .flat_map(|i| {
            let customer = format!("c{i}");
            [
                event(
                    &format!("{prefix}-p{i}"),
                    &customer,
                    "profile_updated",
                    start,
                    json!({ "email": format!("{customer}@example.com") }),
                ),
                event(
                    &format!("{prefix}-s{i}"),
                    &customer,
                    "signed_up",
                    start + chrono::Duration::milliseconds(5),
                    json!({ "source": "web" }),
                ),
            ]
        })
        .collect();
    let records: Vec<Outgoing> = events.iter().map(Outgoing::event).collect();
    kafka.produce(&events_topic, &records);
    // Two emails per customer: the welcome email and, 2 s later, the tip.
    let commands = kafka.read_committed_n(
        &[email_topic.as_str()],
        6,
        Duration::from_secs(120),
        Duration::from_secs(1),
    );
    let running = child.try_wait().expect("journeyd state").is_none();
    let finish = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    if commands.len() != 6 || !running {
        finish(&mut child);
        panic!(
            "expected 6 email commands through the SASL listener, got {} (running: {running}):\n{}",
            commands.len(),
            tail(&log, 40)
        );
    }
    let mut templates: Vec<String> = commands
        .iter()
        .map(|r| {
            r.json()["template"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    templates.sort();
    assert_eq!(
        templates,
        [
            "welcome_1",
            "welcome_1",
            "welcome_1",
            "welcome_tip",
            "welcome_tip",
            "welcome_tip"
        ]
    );

    // Nothing served over HTTP reveals a secret.
    let metrics = http_get(metrics_port, "/metrics");
    let customer = get_with_token(metrics_port, "/customers/c1", INSPECT_TOKEN);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exited = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        matches!(child.try_wait(), Ok(Some(_)))
    });
    finish(&mut child);
    assert!(
        exited,
        "journeyd did not stop on SIGTERM:\n{}",
        tail(&log, 30)
    );
    let (status, metrics) = metrics.expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(metrics.contains("journeyd_"), "{metrics}");
    assert_no_secret("/metrics", &metrics);
    let (status, customer) = customer.expect("/customers/c1 answers");
    assert_eq!(status, 200, "{customer}");
    let state: serde_json::Value = serde_json::from_str(&customer).expect("JSON state");
    assert_eq!(state["customer_id"], "c1", "{customer}");
    assert_eq!(state["profile_keys"], json!(["email"]), "{customer}");
    assert_no_secret("/customers/c1", &customer);

    // The logs at debug level, librdkafka's configuration dump included.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("sasl.username") || text.contains("SCRAM"),
        "librdkafka's debug lines are not in the log, so the check below would prove nothing"
    );
    assert_no_secret("the debug log", &text);
}

#[test]
fn sasl_ssl_end_to_end_and_an_untrusted_certificate_is_a_clear_error() {
    let broker = sasl_broker();
    let kafka = Kafka::connect(&broker.plaintext);
    let (prefix, dir) = scenario(&kafka, "sasl-ssl");

    // Without the test CA the broker's certificate cannot be verified.
    let untrusted = write_sasl_config(
        &dir,
        "untrusted.yaml",
        &prefix,
        &broker.sasl_ssl,
        free_port(),
        "SASL_SSL",
        None,
    );
    let log = dir.join("untrusted.log");
    let status = wait_exit(spawn_run(&dir, &untrusted, SASL_PASSWORD, &log), &log);
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap_or_default();
    assert_eq!(status.code(), Some(2), "{}", tail(&log, 30));
    assert!(
        last.starts_with(&format!(
            "journeyd: cannot reach the Kafka cluster at {}:",
            broker.sasl_ssl
        )) && last.contains("certificate verify failed"),
        "unclear error: {last}"
    );
    assert_no_secret("the log of a failed start", &text);

    // With it: SCRAM over TLS, events in, commands out.
    let config = write_sasl_config(
        &dir,
        "config.yaml",
        &prefix,
        &broker.sasl_ssl,
        free_port(),
        "SASL_SSL",
        Some(&broker.ca),
    );
    let log = dir.join("run.log");
    let mut child = spawn_run(&dir, &config, SASL_PASSWORD, &log);
    let at = chrono::Utc::now();
    let events = [
        event(
            "p",
            "t1",
            "profile_updated",
            at,
            json!({"email": "t1@example.com"}),
        ),
        event(
            "s",
            "t1",
            "signed_up",
            at + chrono::Duration::milliseconds(5),
            json!({}),
        ),
    ];
    let records: Vec<Outgoing> = events.iter().map(Outgoing::event).collect();
    kafka.produce(&format!("{prefix}.events"), &records);
    let commands = kafka.read_committed_n(
        &[format!("{prefix}.actions.email").as_str()],
        2,
        Duration::from_secs(120),
        Duration::from_secs(1),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(commands.len(), 2, "{}", tail(&log, 40));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("sasl_ssl://"),
        "not over the SASL_SSL listener"
    );
    assert_no_secret("the debug log", &text);
}
