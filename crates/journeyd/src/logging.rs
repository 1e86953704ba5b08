//! Logging setup for `journeyd run`: a `tracing` subscriber writing to stderr, as readable text
//! or as one JSON object a line (for log shippers), filtered by the configured level.
//!
//! The level is a `tracing` filter directive (`log.level` in the configuration, default `info`;
//! e.g. `info,journey_kafka=debug`). When the `RUST_LOG` environment variable is set it wins over
//! the configuration, so an operator can raise verbosity for one run without editing files.
//!
//! Privacy rule for everyone who logs in journeyd: at `info` level and above, never log customer
//! properties, profile values or addresses (email, phone, push token), and not customer ids
//! either. Those belong to the decisions topic and the authenticated inspection endpoint. Log
//! partitions, offsets, topics, journey ids, counts and error kinds instead. Customer ids may
//! appear at `debug`/`trace`, which are off in production.

use journey_spec::{LogConfig, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Installs the process-wide subscriber described by `config`.
///
/// An invalid level directive is reported on stderr and `info` is used instead, so a typo in
/// the level never keeps the service from starting; a subscriber already installed (a second
/// call) is left in place.
pub fn init(config: &LogConfig) {
    let filter = match filter(std::env::var("RUST_LOG").ok(), config) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("journeyd: {err}; logging at level info");
            EnvFilter::new("info")
        }
    };
    let ansi = std::io::stderr().is_terminal();
    // Ignoring the error is deliberate: it only says that a subscriber was already set.
    let _ = match config.format {
        LogFormat::Text => {
            tracing::subscriber::set_global_default(text(filter, ansi, std::io::stderr))
        }
        LogFormat::Json => tracing::subscriber::set_global_default(json(filter, std::io::stderr)),
    };
}

/// The filter: `rust_log` (the `RUST_LOG` variable) when set and not blank, else the configured
/// level.
fn filter(rust_log: Option<String>, config: &LogConfig) -> Result<EnvFilter, String> {
    let (source, directive) = match rust_log {
        Some(value) if !value.trim().is_empty() => ("RUST_LOG", value),
        _ => ("log.level", config.level.clone()),
    };
    EnvFilter::try_new(&directive)
        .map_err(|err| format!("invalid {source} directive {directive:?}: {err}"))
}

/// Human-readable lines: time, level, target, message and fields.
fn text<W>(filter: EnvFilter, ansi: bool, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .finish()
}

/// One JSON object a line, fields flattened to the top level for easy querying.
fn json<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer collecting everything logged, shared with the test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn config(format: LogFormat, level: &str) -> LogConfig {
        LogConfig {
            format,
            level: level.to_string(),
        }
    }

    #[test]
    fn json_lines_carry_level_message_and_fields_and_respect_the_level() {
        let buf = Buffer::default();
        let subscriber = json(EnvFilter::new("info"), buf.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(partition = 3, records = 120, "partition restored");
            tracing::debug!("not shown at info");
        });
        let out = buf.text();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "partition restored");
        assert_eq!(v["partition"], 3);
        assert_eq!(v["records"], 120);
    }

    #[test]
    fn text_lines_are_plain_without_ansi() {
        let buf = Buffer::default();
        let subscriber = text(EnvFilter::new("warn"), false, buf.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not shown at warn");
            tracing::warn!(topic = "events", "broker unreachable");
        });
        let out = buf.text();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("WARN"), "{out}");
        assert!(out.contains("broker unreachable topic=\"events\""), "{out}");
        assert!(!out.contains('\u{1b}'), "no escape codes: {out:?}");
    }

    #[test]
    fn the_directive_comes_from_rust_log_or_the_configuration_and_is_validated() {
        let cfg = config(LogFormat::Text, "info,journey_kafka=debug");
        assert_eq!(
            filter(None, &cfg).unwrap().to_string(),
            "journey_kafka=debug,info"
        );
        assert_eq!(
            filter(Some(" ".into()), &cfg).unwrap().to_string(),
            "journey_kafka=debug,info"
        );
        assert_eq!(
            filter(Some("warn".into()), &cfg).unwrap().to_string(),
            "warn"
        );
        let bad = config(LogFormat::Json, "info,journey_kafka=loud");
        let err = filter(None, &bad).unwrap_err();
        assert!(
            err.starts_with("invalid log.level directive \"info,journey_kafka=loud\""),
            "{err}"
        );
        let err = filter(Some("=x=".into()), &cfg).unwrap_err();
        assert!(err.starts_with("invalid RUST_LOG directive"), "{err}");
    }
}
