//! `tessera-session-jwt`: parse configuration, set up telemetry, run the service.

use std::io::Write as _;
use std::path::PathBuf;
use tessera_telemetry::ServiceIdentity;

use clap::{Parser, Subcommand};
use tessera_session_jwt::config::SessionConfig;
use tessera_session_jwt::server::{self, Listeners};

/// The Tessera session service: issues, refreshes and revokes Ed25519 session JWTs, over
/// gRPC with mutual TLS.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until SIGTERM or Ctrl-C.
    ///
    /// Configuration comes from the TOML file (optional: every key has a development
    /// default) and then from TESSERA_SESSION__<SECTION>__<KEY> environment variables,
    /// e.g. TESSERA_SESSION__STASH__URL=https://stash:7401.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short, env = "TESSERA_SESSION_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and print the result, without serving.
    CheckConfig {
        /// The TOML configuration file.
        #[arg(long, short, env = "TESSERA_SESSION_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig { config } => {
            let config = SessionConfig::load(config.as_deref(), std::env::vars())?;
            let _ = writeln!(std::io::stdout(), "{config:#?}");
            Ok(())
        }
    }
}

fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = SessionConfig::load(config_path.as_deref(), std::env::vars())?;
    let log_format = config.log_format;
    tessera_telemetry::run_service(
        ServiceIdentity::new("session-jwt").datacenter(config.stash.datacenter.clone()),
        log_format,
        async move {
            let listeners = Listeners::bind(config.listen, config.admin_listen).await?;
            let started = server::start(
                config,
                tessera_clock::service_clock_from_env()?,
                listeners,
                tessera_telemetry::shutdown_signal(),
            )
            .await?;
            let _ = writeln!(
                std::io::stdout(),
                "tessera-session-jwt ready: grpc=https://{} admin=http://{}",
                started.addr,
                started.admin_addr
            );
            started.serve().await?;
            Ok(())
        },
    )?
}
