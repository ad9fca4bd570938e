//! Rate, errors and duration of every request a service answers: per gRPC method and
//! status code, per HTTP route and status class, with bounded label sets. The same
//! layers mark the request's span as failed, so [`crate::sampling`] exports it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use crate::metrics::{CounterVec, HistogramVec, Registry, OVERFLOW_LABEL};

/// Latency buckets from a cache hit to a slow argon2id sign-in.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// At most this many distinct methods or routes per service; a service has a few dozen.
const MAX_SERIES: usize = 64;

/// Marks the current span failed, so it is exported whatever the sampling ratio.
fn mark_span_failed(reason: &str) {
    let span = tracing::Span::current();
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", reason);
}

/// Wall time of one request or call, for a duration histogram. Durations are the point
/// here, so this is the one place the monotonic clock is read directly.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts timing.
    #[allow(clippy::disallowed_methods)] // measuring latency is wall time by nature
    pub fn start() -> Self {
        Stopwatch(std::time::Instant::now())
    }

    /// The time since [`Stopwatch::start`].
    pub fn elapsed(self) -> Duration {
        self.0.elapsed()
    }
}

/// gRPC requests by method and status code, and their durations by method.
#[derive(Debug, Clone)]
pub struct GrpcRed {
    requests: Arc<CounterVec>,
    durations: Arc<HistogramVec>,
}

impl GrpcRed {
    /// Registers the gRPC request metrics in `registry`.
    pub fn register(registry: &Registry) -> Self {
        GrpcRed {
            requests: registry.register(CounterVec::new(
                "tessera_grpc_requests_total",
                "gRPC requests answered, by method and status code.",
                &["rpc", "code"],
                MAX_SERIES * 4,
            )),
            durations: registry.register(HistogramVec::new(
                "tessera_grpc_request_duration_seconds",
                "Time to answer a gRPC request (to its response headers), by method.",
                "rpc",
                DURATION_BUCKETS,
                MAX_SERIES,
            )),
        }
    }

    /// The tower layer that records these metrics around a tonic server.
    pub fn layer(&self) -> GrpcRedLayer {
        GrpcRedLayer(self.clone())
    }

    fn record(&self, path: &str, code: &str, elapsed: Duration) {
        // Only a peer with a valid certificate gets this far; the cap bounds the rest.
        let rpc = if path.starts_with("/tessera.") {
            path
        } else {
            OVERFLOW_LABEL
        };
        self.requests.inc(&[rpc, code]);
        self.durations.observe(rpc, elapsed);
    }
}

/// See [`GrpcRed::layer`].
#[derive(Debug, Clone)]
pub struct GrpcRedLayer(GrpcRed);

impl<S> tower::Layer<S> for GrpcRedLayer {
    type Service = GrpcRedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcRedService {
            inner,
            red: self.0.clone(),
        }
    }
}

/// See [`GrpcRed::layer`].
#[derive(Debug, Clone)]
pub struct GrpcRedService<S> {
    inner: S,
    red: GrpcRed,
}

/// The status code's name, from the response headers: a handler's error is sent as a
/// trailers-only response, whose headers carry `grpc-status`. A stream that fails later
/// reports its status in trailers, after this layer has seen the response.
fn grpc_code(headers: &http::HeaderMap) -> &'static str {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    match code {
        0 => "OK",
        1 => "Cancelled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcRedService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let red = self.red.clone();
        let started = Stopwatch::start();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answered = answer.await;
            let code = match &answered {
                Ok(response) => grpc_code(response.headers()),
                Err(_) => "Unavailable",
            };
            red.record(&path, code, started.elapsed());
            if code != "OK" {
                mark_span_failed(code);
            }
            answered
        })
    }
}

/// Finds the trace a request continues when it carries no `traceparent` of its own.
pub type ParentHint = Arc<dyn Fn(&http::HeaderMap) -> Option<String> + Send + Sync>;

/// HTTP requests by route and status class, and their durations by route. Routes are the
/// service's own, named up front; any other path counts as `other`.
#[derive(Clone)]
pub struct HttpRed {
    routes: &'static [&'static str],
    requests: Arc<CounterVec>,
    durations: Arc<HistogramVec>,
    parent_hint: Option<ParentHint>,
}

impl std::fmt::Debug for HttpRed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRed")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl HttpRed {
    /// Registers the HTTP request metrics in `registry` for a service serving `routes`.
    pub fn register(registry: &Registry, routes: &'static [&'static str]) -> Self {
        HttpRed {
            routes,
            requests: registry.register(CounterVec::new(
                "tessera_http_requests_total",
                "HTTP requests answered, by route and status class.",
                &["route", "status"],
                MAX_SERIES * 5,
            )),
            durations: registry.register(HistogramVec::new(
                "tessera_http_request_duration_seconds",
                "Time to answer an HTTP request (to its response headers), by route.",
                "route",
                DURATION_BUCKETS,
                MAX_SERIES,
            )),
            parent_hint: None,
        }
    }

    /// Continues, for requests that carry no trace context, the trace `hint` finds (e.g. in
    /// a cookie the service set when the trace began).
    pub fn with_parent_hint(mut self, hint: ParentHint) -> Self {
        self.parent_hint = Some(hint);
        self
    }

    fn route(&self, path: &str) -> &'static str {
        self.routes
            .iter()
            .find(|route| **route == path)
            .copied()
            .unwrap_or(OVERFLOW_LABEL)
    }
}

/// Axum middleware (`from_fn_with_state(red, red::observe_http)`): runs each request in a
/// span joined to the caller's trace, counts it, times it, and marks server errors failed.
pub async fn observe_http(State(red): State<HttpRed>, request: Request, next: Next) -> Response {
    let route = red.route(request.uri().path());
    let hinted = red
        .parent_hint
        .as_ref()
        .and_then(|hint| hint(request.headers()));
    let span = crate::trace_context::http_server_span(
        request.method(),
        request.uri(),
        request.headers(),
        hinted.as_deref(),
    );
    let started = Stopwatch::start();
    async move {
        let response = next.run(request).await;
        let status = response.status();
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        red.requests.inc(&[route, class]);
        red.durations.observe(route, started.elapsed());
        tracing::Span::current().record("http.status_code", status.as_u16());
        if status.is_server_error() {
            mark_span_failed(class);
        }
        response
    }
    .instrument(span)
    .await
}
