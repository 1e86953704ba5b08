//! journeyd's Kafka runtime: exactly-once processing of behavioural events into send commands,
//! decisions and per-customer state, shaped like Kafka Streams.
//!
//! The parts, each with one job:
//!
//! 1. **Topics** ([`topics`]): every topic read or written exists before the group is joined;
//!    the compacted state changelog has the input's partition count because changelog
//!    partition `p` holds the customers of input partition `p`.
//! 2. **Clients** ([`clients`]): per stream thread, one group consumer (`read_committed`, no
//!    auto-commit, cooperative-sticky, a static member by default) and one transactional
//!    producer whose `transactional.id` is stable per instance and worker.
//! 3. **Stream threads** ([`stream_thread`], Kafka Streams' `StreamThread`; [`workers`]): the
//!    poll loop, `workers` of them (default: one per core), each owning a disjoint set of
//!    partitions and their engines; no locks around customer state. Readiness ([`health`])
//!    waits for every one.
//! 4. **Consumer context** ([`context`]): the rebalance callbacks. Revocation commits the open
//!    transaction before the partitions are handed over; assignment pauses the new partitions
//!    and marks them not restored (readiness) in the same step.
//! 5. **Task manager** ([`task_manager`], `TaskManager`): assignment, revocation, restore and
//!    checkpoints of the partition tasks. A restore loads the local checkpoint
//!    ([`checkpoint`]) and replays the changelog after it ([`restore`]) a bounded batch per turn
//!    of the poll loop, so the group consumer keeps polling and the other partitions keep
//!    processing.
//! 6. **Partition task** ([`task`], `StreamTask`): one partition's engine and the single path
//!    through which its records and timers reach it; every input record is decoded in one
//!    place ([`task::decode_event`]); a bad one goes to the dead-letter topic with its source in
//!    headers ([`records`]).
//! 7. **Transactions** ([`txn`], `StreamsProducer`): outputs, changelog entries (once per
//!    changed customer, at commit) and input offsets (`send_offsets_to_transaction` with the
//!    group metadata, KIP-447) commit together every `commit_interval_ms` (or
//!    [`stream_thread::MAX_RECORDS_PER_TRANSACTION`] records), so a crash at any point neither
//!    loses nor duplicates a command. Failures are typed ([`txn::TxnFailure`]).
//! 8. **Recovery policy** ([`recovery`]): after a failed transaction the producer is rebuilt
//!    when fenced, fatal or aborting repeatedly; every partition is rewound to its committed
//!    offset and restored.
//! 9. **Reload**: SIGHUP or a change under `journeys_dir` (debounced) reloads the journeys; a
//!    valid set is swapped into every engine of every worker between two records; an invalid
//!    one is reported and the running set kept.
//! 10. **Shutdown**: on cancellation every worker's loop stops, its open transaction is
//!     committed, its partitions are checkpointed, and its consumer is closed: a static member stays in the
//!     group (its restart takes its partitions back without a rebalance), a dynamic one leaves.
//!     [`leave`] hands a removed static member's partitions over at once.
//!
//! The HTTP endpoints (`/metrics`, `/healthz`, `/readyz`, optionally `/customers/{id}`) are
//! served alongside ([`http`], [`metrics`]). docs/operations.md ("Recovery") describes the
//! behaviour operators see.

pub mod checkpoint;
pub mod clients;
pub mod context;
pub mod health;
pub mod http;
pub mod leave;
pub mod metrics;
pub mod offsets;
pub mod records;
pub mod recovery;
pub mod restore;
pub mod stream_thread;
pub mod task;
pub mod task_manager;
pub mod topics;
pub mod txn;
pub mod workers;

#[cfg(test)]
mod mock_tests;

use crate::checkpoint::{CheckpointStore, StateDirError};
use crate::http::{Health, HttpError, HttpServer, Inspector};
use crate::metrics::Metrics;
use crate::stream_thread::StreamThreadSetup;
use crate::workers::{WorkerControls, Workers};
use journey_engine::Catalog;
use journey_spec::{Config, Diagnostic, Diagnostics};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
pub use tokio_util::sync::CancellationToken;

/// Everything the service needs.
pub struct ServiceOptions {
    /// The loaded, valid configuration.
    pub config: Config,
    /// The configuration file, for reload (SIGHUP and file watching of `journeys_dir`).
    pub config_path: Option<PathBuf>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// Why the service stopped (other than a requested shutdown).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The journeys could not be loaded at start.
    #[error("invalid journeys:\n{0}")]
    Journeys(Diagnostics),
    /// Topic setup failed (missing rights, inconsistent partition counts).
    #[error(transparent)]
    Topics(#[from] topics::TopicError),
    /// A Kafka client call failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The transactional producer could not be initialised.
    #[error("transactional producer: {0}")]
    Producer(#[from] txn::ProducerError),
    /// `state_dir` cannot hold checkpoints.
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    /// Seeking back to the committed offsets failed after an abort.
    #[error("rewinding to the committed offsets: {0}")]
    Rewind(String),
    /// Restoring from the changelog failed.
    #[error(transparent)]
    Restore(#[from] restore::RestoreError),
    /// The HTTP endpoint failed (e.g. the listen address is taken).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The group consumer hit a fatal error (e.g. its static membership was fenced) and is
    /// unusable; a new session (consumer and producer) is built.
    #[error("fatal consumer error: {0}")]
    ConsumerFatal(String),
    /// The processing thread failed.
    #[error("processing thread: {0}")]
    Worker(String),
}

impl RuntimeError {
    /// The `reason` label of `journeyd_kafka_sessions_restarted_total`.
    pub fn label(&self) -> &'static str {
        match self {
            RuntimeError::Journeys(_) => "journeys",
            RuntimeError::Topics(_) => "topics",
            RuntimeError::Kafka(_) => "kafka",
            RuntimeError::Producer(_) => "producer",
            RuntimeError::StateDir(_) => "state_dir",
            RuntimeError::Rewind(_) => "rewind",
            RuntimeError::Restore(_) => "restore",
            RuntimeError::Http(_) => "http",
            RuntimeError::ConsumerFatal(_) => "consumer_fatal",
            RuntimeError::Worker(_) => "worker",
        }
    }

    /// Whether starting a new Kafka session may help (broker trouble), as opposed to a
    /// configuration problem that would fail again the same way.
    pub fn is_retriable(&self) -> bool {
        use rdkafka::error::KafkaError as K;
        match self {
            RuntimeError::Kafka(K::ClientConfig(..))
            | RuntimeError::Kafka(K::ClientCreation(_)) => false,
            RuntimeError::Kafka(_)
            | RuntimeError::Producer(_)
            | RuntimeError::Rewind(_)
            | RuntimeError::Restore(_)
            | RuntimeError::ConsumerFatal(_)
            | RuntimeError::Worker(_) => true,
            RuntimeError::Journeys(_)
            | RuntimeError::Topics(_)
            | RuntimeError::Http(_)
            | RuntimeError::StateDir(_) => false,
        }
    }
}

/// Runs the service until `shutdown` is cancelled; returns after a graceful shutdown (open
/// transaction committed, partitions checkpointed, consumer closed).
pub async fn run_service(
    opts: ServiceOptions,
    shutdown: CancellationToken,
) -> Result<(), RuntimeError> {
    let ServiceOptions {
        config,
        config_path,
        metrics,
        health,
    } = opts;
    let config = Arc::new(config);
    let n_workers = config.workers();
    health.set_workers(n_workers);

    let catalog = match load_catalog(&config) {
        Ok((catalog, n)) => {
            metrics.journeys_loaded(n);
            tracing::info!(journeys = n, dir = %config.journeys_dir.display(), "journeys loaded");
            catalog
        }
        Err(diagnostics) => return Err(RuntimeError::Journeys(diagnostics.into())),
    };

    // A state_dir that cannot hold checkpoints fails the start, naming the path.
    let store = CheckpointStore::open(
        &config.state_dir,
        &config.kafka.group_id,
        &config.kafka.state_topic,
    )?;
    // Bind first so that a taken port fails the start rather than a background task.
    let server = HttpServer::bind(config.metrics.listen.as_str()).await?;
    // A broker that is down or slow at start is waited for (not ready, with the reason), as it
    // is once running; credentials, TLS and configuration problems end the start at once.
    let mut backoff = Duration::from_millis(500);
    let partitions = loop {
        match topics::ensure_topics(&config).await {
            Ok(partitions) => break partitions,
            Err(e) if e.is_transient() => {
                health.set_broker_reachable(false);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "the Kafka cluster does not answer; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e.into()),
        }
    };
    health.set_broker_reachable(true);
    tracing::info!(partitions, "topics ready");

    let stop_workers = shutdown.child_token();
    tracing::info!(workers = n_workers, "starting stream threads");
    let (mut workers, controls) =
        Workers::spawn(n_workers, stop_workers.clone(), |worker, control| {
            StreamThreadSetup {
                worker,
                config: Arc::clone(&config),
                metrics: metrics.worker(worker),
                health: health.worker(worker),
                catalog: Arc::clone(&catalog),
                store: store.clone(),
                control,
                cancel: stop_workers.clone(),
            }
        })?;
    let inspect: Option<(Arc<dyn Inspector>, String)> = if config.inspect.enabled {
        let inspector: Arc<dyn Inspector> = Arc::new(WorkerInspector {
            controls: controls.clone(),
        });
        Some((inspector, config.inspect.token.clone().unwrap_or_default()))
    } else {
        None
    };
    let http_stop = CancellationToken::new();
    let mut http = tokio::spawn(server.serve(
        Arc::clone(&metrics),
        Arc::clone(&health),
        inspect,
        http_stop.clone(),
    ));
    let reload_stop = CancellationToken::new();
    let reloader = tokio::spawn(reload_loop(
        Arc::clone(&config),
        config_path,
        Arc::clone(&metrics),
        controls,
        reload_stop.clone(),
    ));

    // The first worker to end (a requested shutdown, or an error it cannot recover from)
    // ends the others.
    let result = tokio::select! {
        first = workers.next_exit() => workers.stop_all(first).await,
        served = &mut http => {
            // The HTTP endpoint ended on its own: stop processing as well.
            let worker_result = workers.stop_all(None).await;
            match served {
                Ok(Err(e)) => Err(RuntimeError::Http(e)),
                _ => worker_result,
            }
        }
    };
    reload_stop.cancel();
    let _ = reloader.await;
    http_stop.cancel();
    if !http.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(5), http).await;
    }
    match &result {
        Ok(()) => tracing::info!("stopped"),
        Err(e) => tracing::error!(error = %e, "stopped on error"),
    }
    result
}

/// Loads `journeys_dir` and compiles it into a catalog.
fn load_catalog(config: &Config) -> Result<(Arc<Catalog>, usize), Vec<Diagnostic>> {
    let journeys = journey_spec::load_journeys_dir(&config.journeys_dir, config)?;
    let n = journeys.len();
    Ok((Arc::new(Catalog::new(config, journeys)), n))
}

/// Debounce window for file changes under `journeys_dir` (editors write in several steps).
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(500);

/// Waits for SIGHUP or changes under `journeys_dir`, reloads the journeys and hands a valid set
/// to every worker; the reload counts as done once every worker applied it
/// ([`WorkerControls::reload`]).
async fn reload_loop(
    config: Arc<Config>,
    config_path: Option<PathBuf>,
    metrics: Arc<Metrics>,
    controls: WorkerControls,
    stop: CancellationToken,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let watcher = {
        let tx = tx.clone();
        let watched = config.journeys_dir.clone();
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                if !event.kind.is_access() {
                    let _ = tx.send("journeys directory changed");
                }
            }
        })
        .and_then(|mut w| {
            use notify::Watcher;
            w.watch(&watched, notify::RecursiveMode::Recursive)
                .map(|()| w)
        })
    };
    let _watcher = match watcher {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, dir = %config.journeys_dir.display(), "cannot watch the journeys directory; reload with SIGHUP");
            None
        }
    };
    #[cfg(unix)]
    {
        let tx = tx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP");
                return;
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    got = hup.recv() => {
                        if got.is_none() { return; }
                        let _ = tx.send("SIGHUP");
                    }
                }
            }
        });
    }
    loop {
        let cause = tokio::select! {
            _ = stop.cancelled() => return,
            cause = rx.recv() => match cause { Some(c) => c, None => return },
        };
        // Debounce: wait until the changes stop for a moment.
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                more = rx.recv() => if more.is_none() { return },
                _ = tokio::time::sleep(RELOAD_DEBOUNCE) => break,
            }
        }
        tracing::info!(cause, "reloading journeys");
        let config = Arc::clone(&config);
        let config_path = config_path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            warn_if_config_changed(&config, config_path.as_deref());
            load_catalog(&config)
        })
        .await;
        match loaded {
            Ok(Ok((catalog, n))) => {
                let applied = tokio::select! {
                    _ = stop.cancelled() => return,
                    applied = controls.reload(catalog) => applied,
                };
                match applied {
                    Ok(()) => {
                        metrics.reload(true);
                        metrics.journeys_loaded(n);
                        tracing::info!(journeys = n, workers = controls.len(), "journeys reloaded");
                    }
                    Err(e) => {
                        metrics.reload(false);
                        tracing::error!(error = %e, "journeys not reloaded everywhere");
                        return;
                    }
                }
            }
            Ok(Err(diagnostics)) => {
                metrics.reload(false);
                for d in &diagnostics {
                    tracing::error!("{d}");
                }
                tracing::error!(
                    errors = diagnostics.len(),
                    "journeys not reloaded; the running set is kept"
                );
            }
            Err(e) => {
                metrics.reload(false);
                tracing::error!(error = %e, "journeys not reloaded; the running set is kept");
            }
        }
    }
}

/// Only journeys are reloaded at run time; a changed configuration file is reported so that
/// nobody believes it applied.
fn warn_if_config_changed(running: &Config, path: Option<&std::path::Path>) {
    let Some(path) = path else { return };
    match journey_spec::load_config(path) {
        Ok(new) if new != *running => tracing::warn!(
            file = %path.display(),
            "the configuration file changed; only journeys are reloaded, restart to apply it"
        ),
        Ok(_) => {}
        Err(diagnostics) => {
            for d in &diagnostics {
                tracing::warn!("{d}");
            }
        }
    }
}

/// Answers `GET /customers/{id}` by asking every stream thread, each of which owns its
/// partitions' engines ([`WorkerControls::inspect`]).
struct WorkerInspector {
    controls: WorkerControls,
}

impl Inspector for WorkerInspector {
    fn inspect(
        &self,
        customer_id: String,
    ) -> Pin<Box<dyn Future<Output = Option<serde_json::Value>> + Send>> {
        let controls = self.controls.clone();
        Box::pin(async move { controls.inspect(customer_id).await })
    }
}
