//! `tessera-traces`: a trace viewer for development. Services export their spans to its
//! OTLP/gRPC receiver; people read them in the Jaeger UI it serves, and tests ask its
//! query API (`/api/traces/<id>`, `/api/services`). Traces live in memory, the oldest
//! dropped past a bound. It has no authentication, so it serves loopback only.

mod host_check;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use otlp_embedded::{Config, State, TraceServiceImpl, TraceServiceServer};
use tokio::net::TcpListener;

/// An in-process OTLP receiver and Jaeger UI.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Where services send spans (OTLP over gRPC, plain HTTP/2).
    #[arg(long, env = "TESSERA_TRACES_OTLP", default_value = "127.0.0.1:7417")]
    otlp: SocketAddr,
    /// Where the UI and its query API serve.
    #[arg(long, env = "TESSERA_TRACES_UI", default_value = "127.0.0.1:7416")]
    ui: SocketAddr,
    /// Traces kept; the oldest go first.
    #[arg(long, default_value_t = 2000)]
    max_traces: u32,
    /// Memory the traces may take, in MiB; the oldest go first.
    #[arg(long, default_value_t = 256)]
    max_memory_mib: usize,
}

fn loopback_only(addr: SocketAddr, flag: &str) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        anyhow::bail!(
            "{flag} {addr} is not a loopback address: the trace viewer has no authentication and serves this machine only; use 127.0.0.1"
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    loopback_only(cli.otlp, "--otlp")?;
    loopback_only(cli.ui, "--ui")?;
    let state = State::new(Config {
        max_length: cli.max_traces.max(1),
        max_memory_usage: cli.max_memory_mib.max(1) << 20,
    });

    let otlp = TcpListener::bind(cli.otlp)
        .await
        .with_context(|| format!("cannot listen on {} (--otlp)", cli.otlp))?;
    let ui = TcpListener::bind(cli.ui)
        .await
        .with_context(|| format!("cannot listen on {} (--ui)", cli.ui))?;
    let (otlp_addr, ui_addr) = (otlp.local_addr()?, ui.local_addr()?);

    let allowed_hosts = Arc::new(host_check::loopback_hosts(ui_addr.port()));
    let app = otlp_embedded::ui_app(state.clone(), "/").layer(axum::middleware::from_fn(
        move |request, next| host_check::same_machine(allowed_hosts.clone(), request, next),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut ui_stopped = stopped.clone();
    let ui_server = tokio::spawn(async move {
        axum::serve(ui, app)
            .with_graceful_shutdown(async move {
                let _ = ui_stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    let mut otlp_stopped = stopped;
    let receiver = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(TraceServiceImpl::new(state)))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(otlp),
                async move {
                    let _ = otlp_stopped.wait_for(|stop| *stop).await;
                },
            ),
    );
    println!("tessera-traces ready: otlp=http://{otlp_addr} ui=http://{ui_addr}/");

    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated() => {}
    }
    let _ = stop.send(true);
    ui_server.await?.context("the UI failed")?;
    receiver.await?.context("the OTLP receiver failed")?;
    Ok(())
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
