//! The admin HTTP port every service has: `/healthz` (the process answers), `/readyz`
//! (the service is ready for traffic) and `/metrics` (Prometheus text).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

/// Produces the `/metrics` body; may refresh gauges first.
pub trait MetricsSource: Send + Sync + 'static {
    /// The metrics, Prometheus text.
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>>;
}

/// A registry renders itself as it is; services whose gauges need refreshing before a
/// scrape implement [`MetricsSource`] themselves.
impl MetricsSource for crate::metrics::Registry {
    fn render(&self) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move { crate::metrics::Registry::render(self) })
    }
}

/// Whether the service is ready; flipped by the service once it can answer.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the service ready (or not).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// Whether the service is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    metrics: Arc<dyn MetricsSource>,
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    readiness: Readiness,
    metrics: Arc<dyn MetricsSource>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, readiness, metrics, Router::new(), shutdown).await
}

/// Serves the admin endpoints and a service's own admin `routes` (e.g. the audit
/// dashboard) on `listener` until `shutdown` resolves.
pub async fn serve_with(
    listener: TcpListener,
    readiness: Readiness,
    metrics: Arc<dyn MetricsSource>,
    routes: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { readiness, metrics })
        .merge(routes);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    let body = state.metrics.render().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
