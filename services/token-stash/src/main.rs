//! `tessera-token-stash`: parse configuration, set up telemetry, run the stash.

use std::io::Write as _;
use std::path::PathBuf;
use tessera_telemetry::ServiceIdentity;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tessera_token_stash::config::StashConfig;
use tessera_token_stash::server::{self, Listeners};

/// The Tessera token stash: short-lived values (login codes, sessions) behind opaque
/// tokens, over gRPC with mutual TLS.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the stash until SIGTERM or Ctrl-C.
    ///
    /// Configuration comes from the TOML file (optional: every key has a development
    /// default) and then from TESSERA_STASH__<SECTION>__<KEY> environment variables,
    /// e.g. TESSERA_STASH__STORAGE__BACKEND=redis.
    Serve {
        /// The TOML configuration file.
        #[arg(long, short, env = "TESSERA_STASH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Create (or renew) the development CA and service certificates.
    DevCerts {
        /// Where to put them.
        #[arg(long, default_value = ".tessera/certs")]
        dir: PathBuf,
        /// Replace the CA and every certificate, even if still valid.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration file and print the result, without serving.
    CheckConfig {
        /// The TOML configuration file.
        #[arg(long, short, env = "TESSERA_STASH_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::DevCerts { dir, force } => dev_certs(dir, force),
        Command::CheckConfig { config } => {
            let config = StashConfig::load(config.as_deref(), std::env::vars())?;
            // A closed stdout (e.g. piped into `head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{:#?}", config.redacted());
            Ok(())
        }
    }
}

fn dev_certs(dir: PathBuf, force: bool) -> anyhow::Result<()> {
    if force && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let pki = tessera_mtls::DevPki::ensure(&dir)?;
    println!("dev certificates ready in {}", pki.dir().display());
    Ok(())
}

fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = StashConfig::load(config_path.as_deref(), std::env::vars())?;
    let log_format = config.log_format;
    tessera_telemetry::run_service(
        ServiceIdentity::new("token-stash").datacenter(config.datacenter.to_string()),
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
            // The ready line is the contract with scripts and tests that start the binary.
            let _ = writeln!(
            std::io::stdout(),
            "tessera-token-stash ready: grpc=https://{} admin=http://{} datacenter={} backend={}",
            started.addr,
            started.admin_addr,
            started.handle.datacenter,
            started.handle.backend
        );
            tracing::info!(grpc = %started.addr, admin = %started.admin_addr, "token stash ready");
            started.serve().await?;
            tracing::info!("token stash stopped");
            Ok(())
        },
    )?
}
