//! `journeyd run`: the Kafka service.
//!
//! Validates the configuration and the journeys first (printing every error as
//! `FILE:LINE:COLUMN: message` and exiting 1, like `validate`), then sets up logging, metrics and
//! health, and runs the runtime on a multi-threaded tokio runtime until SIGTERM or SIGINT, which
//! trigger a graceful shutdown (open transaction committed, group left, exit 0).

use journey_kafka::http::Health;
use journey_kafka::metrics::Metrics;
use journey_kafka::{run_service, CancellationToken, ServiceOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value_os_t = crate::default_config_path())]
    config: PathBuf,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let config = match journey_spec::load_config(&args.config) {
        Ok(config) => config,
        Err(diagnostics) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    // Checked here too, so that a broken journey set never reaches Kafka and reads like
    // `validate`'s output.
    if let Err(diagnostics) = journey_spec::load_journeys_dir(&config.journeys_dir, &config) {
        for d in diagnostics {
            eprintln!("{d}");
        }
        return Ok(ExitCode::from(1));
    }
    crate::logging::init(&config.log);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("journeyd")
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        spawn_signal_handler(shutdown.clone())?;
        let opts = ServiceOptions {
            config,
            config_path: Some(args.config),
            metrics: Metrics::new(),
            health: Health::new(),
        };
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "journeyd starting");
        run_service(opts, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT.
fn spawn_signal_handler(shutdown: CancellationToken) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
            shutdown.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("shutting down");
                shutdown.cancel();
            }
        });
    }
    Ok(())
}
