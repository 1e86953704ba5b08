//! The operations HTTP endpoint: `/metrics` for Prometheus, `/healthz` for liveness, `/readyz`
//! for readiness, and (when enabled) `GET /customers/{id}` to inspect one customer's state.
//!
//! Readiness is a [`Health`] value ([`crate::health`]) that the stream threads update as they
//! join the consumer group, restore partitions and lose or regain the brokers; `/readyz`
//! answers 503 with the first reason it is not ready, so `curl` tells an operator what the
//! instance is waiting for, and 200 with each worker's partitions when there are several.
//!
//! The inspection endpoint shows customer data, so it needs a bearer token (compared in
//! constant time) and never logs the customer id it was asked about.

use crate::metrics::Metrics;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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

pub use crate::health::{Health, RestoreProgress, WorkerHealth};

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
        Ok(()) => (StatusCode::OK, state.health.ready_body()).into_response(),
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
        let worker = health.worker(0);
        worker.partitions_assigned(&[0, 2]);
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
        worker.partition_ready(0);
        worker.partition_ready(2);
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
    async fn readyz_names_the_workers_and_their_partitions() {
        let health = Health::with_workers(2);
        let srv = start(Metrics::new(), health.clone(), None).await;
        health.set_running(true);
        let (w0, w1) = (health.worker(0), health.worker(1));
        w0.partitions_assigned(&[0, 2]);
        assert_eq!(
            get(&format!("{}/readyz", srv.base)).await,
            (503, "worker 1: joining consumer group\n".into())
        );
        w1.partitions_assigned(&[1, 3]);
        w0.partition_ready(0);
        w1.restore_progress(3, RestoreProgress { done: 4, target: 9 });
        assert_eq!(
            get(&format!("{}/readyz", srv.base)).await,
            (
                503,
                "worker 0: restoring partitions [2] (2: starting); worker 1: restoring partitions [1, 3] (1: starting, 3: 4/9)\n".into()
            )
        );
        for (w, p) in [(&w0, 2), (&w1, 1), (&w1, 3)] {
            w.partition_ready(p);
        }
        assert_eq!(
            get(&format!("{}/readyz", srv.base)).await,
            (
                200,
                "ready\nworker 0: partitions [0, 2]\nworker 1: partitions [1, 3]\n".into()
            )
        );
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
