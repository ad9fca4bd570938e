use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tessera_telemetry::admin::{self, MetricsSource, Readiness};
use tessera_telemetry::metrics::Registry;
use tessera_telemetry::red::{GrpcRed, GrpcRedLayer};
use tonic::transport::server::TcpIncoming;
use tower::layer::util::{Identity, Stack};

use crate::{Listeners, Started, Tasks};

/// Why a service could not bind or serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound or read.
    #[error("{0}")]
    Bind(String),
    /// The server failed while serving.
    #[error("{surface} server failed: {detail}")]
    Serve {
        surface: &'static str,
        detail: String,
    },
}

impl ServeError {
    /// A stable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ServeError::Bind(_) => "bind",
            ServeError::Serve { .. } => "serve",
        }
    }
}

/// The serving half every service shares: the admin port, readiness, shutdown and the
/// service's background tasks, around the service's own gRPC router or HTTP app.
///
/// Readiness turns on just before the main surface serves and off the moment shutdown
/// begins, so a load balancer stops sending while requests in flight finish. Then the
/// background tasks are stopped and awaited, the admin port closes, and last the
/// service's own closing step runs.
pub struct Scaffold {
    listeners: Listeners,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    metrics: Arc<dyn MetricsSource>,
    admin_routes: axum::Router,
    tasks: Tasks,
    readiness: Readiness,
}

/// How every Tessera gRPC service serves: see [`grpc_server`].
pub type GrpcServer = tonic::transport::Server<Stack<GrpcRedLayer, Identity>>;

/// A gRPC server demanding client certificates from the CA of `tls`, continuing each
/// caller's trace and counting every request in `registry` (rate, errors, duration per
/// method): how every Tessera gRPC service serves.
pub fn grpc_server(
    tls: &tessera_mtls::TlsFiles,
    registry: &Registry,
) -> Result<GrpcServer, ServeError> {
    let server_tls = tls
        .server_config()
        .map_err(|e| ServeError::Bind(format!("tls: {e}")))?;
    Ok(tonic::transport::Server::builder()
        .tls_config(server_tls)
        .map_err(|e| ServeError::Bind(format!("tls: {e}")))?
        .trace_fn(tessera_telemetry::trace_context::grpc_server_span)
        .layer(GrpcRed::register(registry).layer()))
}

impl std::fmt::Debug for Scaffold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaffold")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// The future that ends serving: the service's shutdown, then readiness off.
type Stopping = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long requests in flight may finish once shutdown begins. Streams never finish by
/// themselves (a revocation subscriber's stays open for as long as it is served): after
/// this they are dropped, and their clients reconnect elsewhere.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Scaffold {
    /// A scaffold serving `metrics` on the admin port of `listeners`.
    pub fn new(listeners: Listeners, metrics: Arc<dyn MetricsSource>) -> Result<Self, ServeError> {
        let (addr, admin_addr) = listeners.addrs()?;
        Ok(Scaffold {
            listeners,
            addr,
            admin_addr,
            metrics,
            admin_routes: axum::Router::new(),
            tasks: Tasks::default(),
            readiness: Readiness::default(),
        })
    }

    /// Also serves `routes` on the admin port (e.g. the audit dashboard).
    pub fn admin_routes(mut self, routes: axum::Router) -> Self {
        self.admin_routes = routes;
        self
    }

    /// The service's background tasks, stopped with it.
    pub fn tasks(&mut self) -> &mut Tasks {
        &mut self.tasks
    }

    /// A started gRPC service: `router` (already carrying its TLS settings) on the main
    /// listener, with `TCP_NODELAY`, until `shutdown` resolves; then `after` runs (e.g.
    /// closing a store) once nothing serves any more and every task has stopped.
    pub fn grpc<H, A>(
        self,
        handle: H,
        router: tonic::transport::server::Router<Stack<GrpcRedLayer, Identity>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
        after: A,
    ) -> Started<H>
    where
        A: Future<Output = ()> + Send + 'static,
    {
        let (addr, admin_addr, readiness) = (self.addr, self.admin_addr, self.readiness.clone());
        let serve = self.run(shutdown, after, "gRPC", |main, stopping| async move {
            // Small RPCs must not wait for Nagle's algorithm and delayed ACKs (~40 ms).
            let incoming = TcpIncoming::from(main).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, stopping)
                .await
                .map_err(|e| e.to_string())
        });
        Started::new(addr, admin_addr, handle, readiness, serve)
    }

    /// A started HTTP service: `app` on the main listener (with the peer address as
    /// connect info) until `shutdown` resolves.
    pub fn http<H>(
        self,
        handle: H,
        app: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Started<H> {
        let (addr, admin_addr, readiness) = (self.addr, self.admin_addr, self.readiness.clone());
        let serve = self.run(shutdown, async {}, "HTTP", |main, stopping| async move {
            axum::serve(
                main,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stopping)
            .await
            .map_err(|e| e.to_string())
        });
        Started::new(addr, admin_addr, handle, readiness, serve)
    }

    async fn run<M, F, A>(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        after: A,
        surface: &'static str,
        main: M,
    ) -> Result<(), ServeError>
    where
        M: FnOnce(tokio::net::TcpListener, Stopping) -> F,
        F: Future<Output = Result<(), String>>,
        A: Future<Output = ()>,
    {
        let Scaffold {
            listeners,
            metrics,
            admin_routes,
            tasks,
            readiness,
            ..
        } = self;
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = tokio::spawn(admin::serve_with(
            listeners.admin,
            readiness.clone(),
            metrics,
            admin_routes,
            async move {
                let _ = admin_stopped.await;
            },
        ));
        let stopping_readiness = readiness.clone();
        let (began, has_begun) = tokio::sync::oneshot::channel::<()>();
        let stopping: Stopping = Box::pin(async move {
            shutdown.await;
            stopping_readiness.set(false);
            tracing::info!("shutting down: finishing requests in flight");
            let _ = began.send(());
        });
        readiness.set(true);
        let served = tokio::select! {
            served = main(listeners.main, stopping) => served,
            () = async {
                if has_begun.await.is_err() {
                    // Serving ended without a shutdown: the branch above answers.
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the shutdown grace (open streams); dropping them");
                Ok(())
            }
        };
        readiness.set(false);
        tasks.stop().await;
        let _ = admin_stop.send(());
        let _ = admin.await;
        // Last, with nothing serving any more and every task stopped: only now may the
        // service close what they shared (the stash its store).
        after.await;
        served.map_err(|detail| ServeError::Serve { surface, detail })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::{Listeners, ShutdownSwitch};

    async fn scaffold() -> Scaffold {
        let listeners = Listeners::loopback().await.expect("bind");
        Scaffold::new(
            listeners,
            Arc::new(tessera_telemetry::metrics::Registry::default()),
        )
        .expect("scaffold")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ready_while_serving_and_tasks_stopped_and_awaited_before_serving_ends() {
        let mut scaffold = scaffold().await;
        let task_saw_stop = Arc::new(AtomicBool::new(false));
        let saw = task_saw_stop.clone();
        scaffold.tasks().spawn("watcher", |mut stop| async move {
            stop.stopped().await;
            // Still awaited: serving must not end before this task does.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            saw.store(true, Ordering::SeqCst);
        });
        let (mut switch, shutdown) = ShutdownSwitch::new();
        let started = scaffold.http((), axum::Router::new(), shutdown);
        let readiness = started.readiness.clone();
        assert!(!readiness.is_ready(), "not ready before serving");
        let serving = tokio::spawn(started.serve());
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !readiness.is_ready() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("ready once serving");
        switch.fire();
        serving.await.expect("joined").expect("served");
        assert!(!readiness.is_ready(), "not ready after shutdown");
        assert!(
            task_saw_stop.load(Ordering::SeqCst),
            "the task finished before serving ended"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_never_finishes_does_not_hold_shutdown_past_the_grace() {
        let scaffold = scaffold().await;
        let started_handling = Arc::new(tokio::sync::Notify::new());
        let signal = started_handling.clone();
        let endless = axum::Router::new().route(
            "/endless",
            axum::routing::get(move || {
                let signal = signal.clone();
                async move {
                    signal.notify_one();
                    // Like a subscriber's stream: it ends only when the server drops it.
                    std::future::pending::<()>().await;
                }
            }),
        );
        let (mut switch, shutdown) = ShutdownSwitch::new();
        let started = scaffold.http((), endless, shutdown);
        let addr = started.addr;
        let serving = tokio::spawn(started.serve());
        let mut open = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut open, b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        started_handling.notified().await;
        switch.fire();
        tokio::time::timeout(SHUTDOWN_GRACE * 4, serving)
            .await
            .expect("shutdown ended despite the request in flight")
            .expect("joined")
            .expect("served");
    }

    #[tokio::test]
    async fn a_dropped_service_aborts_the_tasks_it_owns() {
        let mut scaffold = scaffold().await;
        let held = Arc::new(());
        let in_task = held.clone();
        scaffold.tasks().spawn("stubborn", |_stop| async move {
            let _held = in_task;
            // Ignores its stop signal on purpose.
            std::future::pending::<()>().await;
        });
        let (_switch, shutdown) = ShutdownSwitch::new();
        drop(scaffold.http((), axum::Router::new(), shutdown));
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while Arc::strong_count(&held) > 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the task was aborted with its service");
    }
}
