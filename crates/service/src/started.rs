use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tessera_telemetry::admin::Readiness;

use crate::ServeError;

/// A service that has opened what it needs and is ready to serve: its addresses, what it
/// exposes to in-process callers (`handle`), and the serving itself.
pub struct Started<H> {
    /// Where the main surface (gRPC or public HTTP) is served.
    pub addr: SocketAddr,
    /// Where the admin port is served.
    pub admin_addr: SocketAddr,
    /// What the service exposes to in-process callers and tests.
    pub handle: H,
    /// Whether it is ready for traffic (what `/readyz` answers): on while it serves, off
    /// from the moment shutdown begins.
    pub readiness: Readiness,
    serve: Pin<Box<dyn Future<Output = Result<(), ServeError>> + Send>>,
}

impl<H> Started<H> {
    /// A started service from its parts.
    pub fn new(
        addr: SocketAddr,
        admin_addr: SocketAddr,
        handle: H,
        readiness: Readiness,
        serve: impl Future<Output = Result<(), ServeError>> + Send + 'static,
    ) -> Self {
        Started {
            addr,
            admin_addr,
            handle,
            readiness,
            serve: Box::pin(serve),
        }
    }

    /// Serves until the shutdown future given at start resolves; requests in flight then
    /// finish and background tasks stop before this returns.
    pub async fn serve(self) -> Result<(), ServeError> {
        self.serve.await
    }
}

impl<H> std::fmt::Debug for Started<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// Fires a service's shutdown: the other half of the future given to `start`. Dropping
/// the switch fires it too.
#[derive(Debug)]
pub struct ShutdownSwitch(Option<tokio::sync::oneshot::Sender<()>>);

impl ShutdownSwitch {
    /// A switch and the shutdown future it fires.
    pub fn new() -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (fire, fired) = tokio::sync::oneshot::channel::<()>();
        (ShutdownSwitch(Some(fire)), async move {
            let _ = fired.await;
        })
    }

    /// Asks the service to stop.
    pub fn fire(&mut self) {
        if let Some(fire) = self.0.take() {
            let _ = fire.send(());
        }
    }
}

impl Drop for ShutdownSwitch {
    fn drop(&mut self) {
        self.fire();
    }
}

/// A service serving on a task of its own (tests, embedders): stopped by
/// [`Running::shutdown`], or asked to stop when dropped.
#[derive(Debug)]
pub struct Running {
    switch: ShutdownSwitch,
    task: Option<tokio::task::JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    /// Serves `started` on a new task; `switch` must fire the shutdown it was started with.
    pub fn spawn<H: Send + 'static>(started: Started<H>, switch: ShutdownSwitch) -> Self {
        Running {
            switch,
            task: Some(tokio::spawn(started.serve())),
        }
    }

    /// Stops the service and waits until it no longer serves; its serving error, if any.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.switch.fire();
        match self.task.take() {
            Some(task) => task.await.map_err(|e| ServeError::Serve {
                surface: "service task",
                detail: e.to_string(),
            })?,
            None => Ok(()),
        }
    }
}
