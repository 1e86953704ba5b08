//! The operations HTTP endpoint: `/metrics` for Prometheus, `/healthz` for liveness, `/readyz`
//! for readiness, and (when enabled) `GET /customers/{id}` to inspect one customer's state.
//!
//! Readiness is a [`Health`] value that the runtime updates as it joins the consumer group,
//! restores partitions and loses or regains the brokers; `/readyz` answers 503 with the first
//! reason it is not ready, so `curl` tells an operator what the instance is waiting for.
//!
//! The inspection endpoint shows customer data, so it needs a bearer token (compared in
//! constant time) and never logs the customer id it was asked about.

use crate::metrics::Metrics;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_util::sync::CancellationToken;

/// Why the HTTP endpoint could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound (in use, no permission, not an address).
    #[error("cannot listen on {addr}: {source} (check metrics.listen)")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What readiness depends on, kept together under one lock so a reader sees a consistent view.
#[derive(Debug)]
struct HealthState {
    running: bool,
    /// Whether the service was ever running, to tell "starting" from "stopping".
    started: bool,
    broker_reachable: bool,
    /// Why the Kafka session (group consumer + producer) is being rebuilt, until a new one
    /// started.
    session_lost: Option<String>,
    /// A transactional call failing and being retried: processing waits for it.
    transaction_stalled: Option<String>,
    group_joined: bool,
    /// Assigned partitions not yet restored, with their progress.
    restoring: BTreeMap<i32, RestoreProgress>,
}

/// How far a partition's restore got: items (checkpoint customers and changelog records)
/// applied, of `target` (0 while the target is not known yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestoreProgress {
    pub done: u64,
    pub target: u64,
}

/// The instance's readiness, updated by the runtime and read by `/readyz` (and the
/// `journeyd_ready` gauge).
///
/// Ready means: the service is running, the brokers are reachable, the consumer group was
/// joined (an assignment, possibly empty, was received) and no assigned partition is still
/// restoring from its changelog.
#[derive(Debug)]
pub struct Health {
    state: Mutex<HealthState>,
}

impl Health {
    /// Not running, brokers assumed reachable until told otherwise, group not joined.
    pub fn new() -> Arc<Health> {
        Arc::new(Health {
            state: Mutex::new(HealthState {
                running: false,
                started: false,
                broker_reachable: true,
                session_lost: None,
                transaction_stalled: None,
                group_joined: false,
                restoring: BTreeMap::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        // A panic while holding this lock cannot leave the plain flags inconsistent, so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records whether the brokers answer (set false on "all brokers down", true once they do).
    pub fn set_broker_reachable(&self, reachable: bool) {
        self.state().broker_reachable = reachable;
    }

    /// Records that the consumer group was joined (or left, with `false`). An assignment, even
    /// an empty one, means the group was joined.
    pub fn set_group_joined(&self, joined: bool) {
        self.state().group_joined = joined;
    }

    /// Partitions were assigned (possibly none): the group is joined, and each of them holds
    /// readiness back until [`Health::partition_ready`]. Both change under one lock, called from
    /// the rebalance callback itself, so no reader can ever see the group joined with an
    /// assigned partition that is not marked as restoring.
    pub fn partitions_assigned(&self, partitions: &[i32]) {
        let mut s = self.state();
        s.group_joined = true;
        for p in partitions {
            s.restoring.insert(*p, RestoreProgress::default());
        }
    }

    /// A partition (back) to restoring, e.g. after an aborted transaction.
    pub fn partition_restoring(&self, partition: i32) {
        self.state()
            .restoring
            .insert(partition, RestoreProgress::default());
    }

    /// Progress of a partition's restore (ignored for a partition not restoring).
    pub fn restore_progress(&self, partition: i32, progress: RestoreProgress) {
        if let Some(slot) = self.state().restoring.get_mut(&partition) {
            *slot = progress;
        }
    }

    /// The partitions restoring, with their progress.
    pub fn restoring(&self) -> Vec<(i32, RestoreProgress)> {
        self.state()
            .restoring
            .iter()
            .map(|(p, r)| (*p, *r))
            .collect()
    }

    /// A partition finished restoring and processes events.
    pub fn partition_ready(&self, partition: i32) {
        let mut s = self.state();
        s.group_joined = true;
        s.restoring.remove(&partition);
    }

    /// A partition was revoked: it no longer holds readiness back.
    pub fn partition_revoked(&self, partition: i32) {
        self.state().restoring.remove(&partition);
    }

    /// The Kafka session failed and is being rebuilt: readiness reports `reason` until
    /// [`Health::session_started`]; the old session's group membership and partitions are
    /// forgotten (the new session joins and restores them again).
    pub fn session_lost(&self, reason: &str) {
        let mut s = self.state();
        s.session_lost = Some(reason.to_owned());
        s.transaction_stalled = None;
        s.group_joined = false;
        s.restoring.clear();
    }

    /// A new Kafka session started: it waits for its assignment ("joining consumer group").
    pub fn session_started(&self) {
        let mut s = self.state();
        s.session_lost = None;
        s.transaction_stalled = None;
        s.group_joined = false;
    }

    /// A transactional call keeps failing and is made again (`Some(why)`): processing waits,
    /// so the instance is not ready. `None` once a commit went through again or the failed
    /// transaction was recovered from (its partitions then restore, which readiness reports).
    pub fn set_transaction_stalled(&self, why: Option<&str>) {
        self.state().transaction_stalled = why.map(str::to_owned);
    }

    /// Marks the service as running (after start-up) or not (during shutdown).
    pub fn set_running(&self, running: bool) {
        let mut s = self.state();
        s.running = running;
        s.started |= running;
    }

    /// `Ok` when ready, else the first reason it is not, as `/readyz` reports it.
    pub fn readiness(&self) -> Result<(), String> {
        let s = self.state();
        if !s.running {
            return Err(if s.started {
                "shutting down"
            } else {
                "starting"
            }
            .to_string());
        }
        if !s.broker_reachable {
            return Err("broker unreachable".to_string());
        }
        if let Some(reason) = &s.session_lost {
            return Err(format!("restarting the kafka session: {reason}"));
        }
        if let Some(why) = &s.transaction_stalled {
            return Err(format!("transaction stalled: {why}"));
        }
        if !s.group_joined {
            return Err("joining consumer group".to_string());
        }
        if !s.restoring.is_empty() {
            let list: Vec<String> = s.restoring.keys().map(i32::to_string).collect();
            let progress: Vec<String> = s
                .restoring
                .iter()
                .map(|(p, r)| match r.target {
                    0 => format!("{p}: starting"),
                    t => format!("{p}: {}/{t}", r.done),
                })
                .collect();
            return Err(format!(
                "restoring partitions [{}] ({})",
                list.join(", "),
                progress.join(", ")
            ));
        }
        Ok(())
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }
}

/// Looks up one customer's state for `GET /customers/{id}`; `None` when the customer is not
/// held by this instance.
pub trait Inspector: Send + Sync + 'static {
    /// The JSON view of the customer (see `Engine::inspect`).
    fn inspect(
        &self,
        customer_id: String,
    ) -> Pin<Box<dyn Future<Output = Option<serde_json::Value>> + Send>>;
}

/// Shared state of the handlers.
#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    inspect: Option<(Arc<dyn Inspector>, Arc<str>)>,
}

/// A bound, not yet serving, HTTP endpoint. Binding first lets the caller fail fast on a bad
/// address and learn the port when it asked for port 0.
pub struct HttpServer {
    listener: TcpListener,
}

impl HttpServer {
    /// Binds the listen address (`host:port`).
    pub async fn bind<A: ToSocketAddrs + std::fmt::Display>(
        listen: A,
    ) -> Result<HttpServer, HttpError> {
        let addr = listen.to_string();
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        Ok(HttpServer { listener })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, HttpError> {
        self.listener.local_addr().map_err(HttpError::Serve)
    }

    /// Serves until `shutdown` is cancelled, then finishes the requests in flight.
    pub async fn serve(
        self,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        inspect: Option<(Arc<dyn Inspector>, String)>,
        shutdown: CancellationToken,
    ) -> Result<(), HttpError> {
        let app = router(AppState {
            metrics,
            health,
            inspect: inspect.map(|(i, token)| (i, Arc::from(token))),
        });
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
        }
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(HttpError::Serve)
    }
}

/// Binds `listen` and serves until `shutdown` is cancelled.
pub async fn serve<A: ToSocketAddrs + std::fmt::Display>(
    listen: A,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    inspect: Option<(Arc<dyn Inspector>, String)>,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    HttpServer::bind(listen)
        .await?
        .serve(metrics, health, inspect, shutdown)
        .await
}

fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.inspect.is_some() {
        app = app.route("/customers/{id}", get(customer));
    }
    app.with_state(state)
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    state.metrics.set_ready(state.health.is_ready());
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.encode_text(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((inspector, token)) = state.inspect else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !authorized(&headers, &token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized\n",
        )
            .into_response();
    }
    match inspector.inspect(id).await {
        Some(view) => axum::Json(view).into_response(),
        None => (StatusCode::NOT_FOUND, "unknown customer\n").into_response(),
    }
}

/// Whether the request carries `Authorization: Bearer <token>`. An empty configured token
/// never authorizes.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let Some(given) = value.as_bytes().strip_prefix(b"Bearer ") else {
        return false;
    };
    !token.is_empty() & constant_time_eq(given, token.as_bytes())
}

/// Compares two byte strings in time that depends only on their lengths (`subtle`), so that
/// response timing does not reveal how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An inspector over a fixed map, standing in for the partition workers.
    struct MapInspector(HashMap<String, serde_json::Value>);

    impl Inspector for MapInspector {
        fn inspect(
            &self,
            customer_id: String,
        ) -> Pin<Box<dyn Future<Output = Option<serde_json::Value>> + Send>> {
            let found = self.0.get(&customer_id).cloned();
            Box::pin(async move { found })
        }
    }

    struct Running {
        base: String,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<Result<(), HttpError>>,
    }

    async fn start(
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        inspect: Option<(Arc<dyn Inspector>, String)>,
    ) -> Running {
        let server = HttpServer::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.serve(metrics, health, inspect, shutdown.clone()));
        Running {
            base: format!("http://{addr}"),
            shutdown,
            task,
        }
    }

    async fn get(url: &str) -> (u16, String) {
        let resp = reqwest::get(url).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    #[test]
    fn readiness_reports_the_first_reason() {
        let h = Health::new();
        assert_eq!(h.readiness(), Err("starting".to_string()));
        h.set_running(true);
        assert_eq!(h.readiness(), Err("joining consumer group".to_string()));
        h.partitions_assigned(&[2, 0]);
        assert_eq!(
            h.readiness(),
            Err("restoring partitions [0, 2] (0: starting, 2: starting)".to_string())
        );
        h.restore_progress(
            2,
            RestoreProgress {
                done: 10,
                target: 40,
            },
        );
        h.set_broker_reachable(false);
        assert_eq!(h.readiness(), Err("broker unreachable".to_string()));
        h.set_broker_reachable(true);
        h.partition_ready(0);
        assert_eq!(
            h.readiness(),
            Err("restoring partitions [2] (2: 10/40)".to_string())
        );
        h.partition_revoked(2);
        assert!(h.is_ready());
        h.set_running(false);
        assert_eq!(h.readiness(), Err("shutting down".to_string()));
    }

    #[test]
    fn a_lost_session_is_not_ready_until_the_new_one_joined_and_restored() {
        let h = Health::new();
        h.set_running(true);
        h.partitions_assigned(&[0, 1]);
        h.partition_ready(0);
        h.partition_ready(1);
        assert!(h.is_ready());
        h.session_lost("fatal consumer error: fenced");
        assert_eq!(
            h.readiness(),
            Err("restarting the kafka session: fatal consumer error: fenced".to_string())
        );
        // The broker's absence is named first.
        h.set_broker_reachable(false);
        assert_eq!(h.readiness(), Err("broker unreachable".to_string()));
        h.set_broker_reachable(true);
        h.session_started();
        assert_eq!(h.readiness(), Err("joining consumer group".to_string()));
        h.partitions_assigned(&[]);
        h.set_transaction_stalled(Some("commit retrying after: timed out"));
        assert_eq!(
            h.readiness(),
            Err("transaction stalled: commit retrying after: timed out".to_string())
        );
        h.set_transaction_stalled(None);
        assert!(h.is_ready());
        h.session_lost("again");
        h.session_started();
        assert_eq!(h.readiness(), Err("joining consumer group".to_string()));
        h.partitions_assigned(&[1]);
        assert_eq!(
            h.readiness(),
            Err("restoring partitions [1] (1: starting)".to_string())
        );
        h.partition_ready(1);
        assert!(h.is_ready());
    }

    #[test]
    fn an_empty_assignment_is_ready_once_the_group_is_joined() {
        let h = Health::new();
        h.set_running(true);
        assert!(!h.is_ready());
        h.partitions_assigned(&[]);
        assert!(h.is_ready());
    }

    /// The race of a readiness probe between "assigned" and "restoring": the assignment itself
    /// marks the partitions as not restored, so there is no moment in between to observe.
    #[test]
    fn an_assignment_is_never_ready_before_its_partitions_are_restored() {
        let h = Health::new();
        h.set_running(true);
        h.partitions_assigned(&[]);
        assert!(h.is_ready());
        // A second assignment while ready: unready at once, in the same call.
        h.partitions_assigned(&[3]);
        assert!(!h.is_ready());
        h.restore_progress(3, RestoreProgress { done: 5, target: 5 });
        assert!(
            !h.is_ready(),
            "progress alone never makes a partition ready"
        );
        h.partition_ready(3);
        assert!(h.is_ready());
        // Restoring again after an abort.
        h.partition_restoring(3);
        assert!(!h.is_ready());
        h.partition_revoked(3);
        assert!(h.is_ready());
    }

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[tokio::test]
    async fn healthz_readyz_and_metrics_over_a_real_socket() {
        let metrics = Metrics::new();
        let health = Health::new();
        let srv = start(metrics.clone(), health.clone(), None).await;

        assert_eq!(
            get(&format!("{}/healthz", srv.base)).await,
            (200, "ok\n".into())
        );
        assert_eq!(
            get(&format!("{}/readyz", srv.base)).await,
            (503, "starting\n".into())
        );
        health.set_running(true);
        health.partitions_assigned(&[0, 2]);
        assert_eq!(
            get(&format!("{}/readyz", srv.base)).await,
            (
                503,
                "restoring partitions [0, 2] (0: starting, 2: starting)\n".into()
            )
        );
        health.set_broker_reachable(false);
        assert_eq!(
            get(&format!("{}/readyz", srv.base)).await,
            (503, "broker unreachable\n".into())
        );
        health.set_broker_reachable(true);
        health.partition_ready(0);
        health.partition_ready(2);
        assert_eq!(
            get(&format!("{}/readyz", srv.base)).await,
            (200, "ready\n".into())
        );

        metrics.dead_lettered("not_json");
        let resp = reqwest::get(format!("{}/metrics", srv.base)).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers()[reqwest::header::CONTENT_TYPE],
            "text/plain; version=0.0.4"
        );
        let body = resp.text().await.unwrap();
        assert!(
            body.contains("journeyd_dead_letters_total{reason=\"not_json\"} 1\n"),
            "{body}"
        );
        assert!(body.contains("journeyd_ready 1\n"), "{body}");

        // Without inspection the route does not exist.
        assert_eq!(get(&format!("{}/customers/c-1", srv.base)).await.0, 404);

        srv.shutdown.cancel();
        srv.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn inspection_requires_the_bearer_token() {
        let mut customers = HashMap::new();
        customers.insert(
            "c 42/x".to_string(),
            serde_json::json!({"journeys": [{"journey_id": "cart", "step_id": "wait_1h"}]}),
        );
        let inspector: Arc<dyn Inspector> = Arc::new(MapInspector(customers));
        let srv = start(
            Metrics::new(),
            Health::new(),
            Some((inspector, "s3cret".to_string())),
        )
        .await;
        let client = reqwest::Client::new();
        let url = format!("{}/customers/c%2042%2Fx", srv.base);

        let none = client.get(&url).send().await.unwrap();
        assert_eq!(none.status().as_u16(), 401);
        let wrong = client
            .get(&url)
            .header("Authorization", "Bearer s3cret-not")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
        let basic = client
            .get(&url)
            .header("Authorization", "Basic s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status().as_u16(), 401);

        let unknown = client
            .get(format!("{}/customers/c-43", srv.base))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status().as_u16(), 404);

        let ok = client.get(&url).bearer_auth("s3cret").send().await.unwrap();
        assert_eq!(ok.status().as_u16(), 200);
        assert_eq!(
            ok.headers()[reqwest::header::CONTENT_TYPE],
            "application/json"
        );
        let body: serde_json::Value = ok.json().await.unwrap();
        assert_eq!(body["journeys"][0]["step_id"], "wait_1h");

        srv.shutdown.cancel();
        srv.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_empty_token_never_authorizes() {
        let inspector: Arc<dyn Inspector> = Arc::new(MapInspector(HashMap::from([(
            "c-1".to_string(),
            serde_json::json!({}),
        )])));
        let srv = start(
            Metrics::new(),
            Health::new(),
            Some((inspector, String::new())),
        )
        .await;
        let resp = reqwest::Client::new()
            .get(format!("{}/customers/c-1", srv.base))
            .header("Authorization", "Bearer ")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        srv.shutdown.cancel();
        srv.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn binding_a_used_port_is_a_typed_error() {
        let first = HttpServer::bind("127.0.0.1:0").await.unwrap();
        let addr = first.local_addr().unwrap();
        match HttpServer::bind(addr).await {
            Err(HttpError::Bind { addr: a, .. }) => assert_eq!(a, addr.to_string()),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("second bind on {addr} succeeded"),
        }
        let err = serve(
            "not an address",
            Metrics::new(),
            Health::new(),
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot listen on not an address: "),
            "{err}"
        );
    }
}
