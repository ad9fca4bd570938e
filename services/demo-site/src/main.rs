//! `tessera-demo-site`: one demo wiki, configured by flags or environment.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use clap::Parser;
use tessera_demo_site::DemoConfig;
use tessera_telemetry::admin::Readiness;
use tessera_telemetry::{LogFormat, ServiceIdentity};

/// A tiny wiki that signs people in through Tessera.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Its client id (also its title), e.g. wiki-a.
    #[arg(long, env = "DEMO_CLIENT_ID")]
    client_id: String,
    /// A file holding the client secret `tessera-login site add` created.
    #[arg(long, env = "DEMO_CLIENT_SECRET_FILE")]
    client_secret_file: PathBuf,
    /// The address to listen on.
    #[arg(long, env = "DEMO_LISTEN", default_value = "127.0.0.1:7501")]
    listen: SocketAddr,
    /// Its own origin as browsers see it.
    #[arg(long, env = "DEMO_PUBLIC_URL", default_value = "http://localhost:7501")]
    public_url: String,
    /// The login service's public URL.
    #[arg(long, env = "DEMO_LOGIN_URL", default_value = "http://localhost:7400")]
    login_url: String,
    /// Where the site's back end reaches the login service, when not at its public URL
    /// (e.g. a plain-HTTP address behind the TLS front, inside a datacenter).
    #[arg(long, env = "DEMO_LOGIN_API_URL")]
    login_api_url: Option<String>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (off when not given).
    #[arg(long, env = "DEMO_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// The datacenter it runs in, as its traces name it.
    #[arg(long, env = "DEMO_DATACENTER", default_value = "")]
    datacenter: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let secret = std::fs::read_to_string(&cli.client_secret_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the client secret file {}: {e}; register the site with `tessera-login site add --secret-file`",
            cli.client_secret_file.display()
        )
    })?;
    let config = DemoConfig {
        client_id: cli.client_id.clone(),
        client_secret: secret.trim().to_owned(),
        public_url: cli.public_url.clone(),
        login_api_url: cli.login_api_url.unwrap_or_else(|| cli.login_url.clone()),
        login_url: cli.login_url,
    };
    let identity = ServiceIdentity::new("demo-site")
        .instance(cli.client_id.clone())
        .datacenter(cli.datacenter.clone());
    tessera_telemetry::run_service(identity, LogFormat::default(), async move {
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cli.listen))?;
        let admin =
            match cli.admin_listen {
                Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {addr} (--admin-listen): {e}")
                })?),
                None => None,
            };
        let started = tessera_demo_site::start(
            config,
            listener,
            tessera_clock::service_clock_from_env()?,
            tessera_telemetry::shutdown_signal(),
        )?;
        let mut admin_line = String::new();
        let admin_task = match admin {
            Some(admin) => {
                admin_line = format!(" admin=http://{}", admin.local_addr()?);
                let readiness = Readiness::default();
                readiness.set(true);
                Some(tokio::spawn(tessera_telemetry::admin::serve(
                    admin,
                    readiness,
                    Arc::new(started.metrics.registry.clone()),
                    tessera_telemetry::shutdown_signal(),
                )))
            }
            None => None,
        };
        let _ = writeln!(
            std::io::stdout(),
            "tessera-demo-site {} ready: http={}{admin_line}",
            cli.client_id,
            cli.public_url
        );
        started.serve().await?;
        if let Some(task) = admin_task {
            task.await??;
        }
        Ok(())
    })?
}
