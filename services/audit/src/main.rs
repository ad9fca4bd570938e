//! `tessera-audit`: serve, or verify a log.

use std::io::Write as _;
use std::path::PathBuf;
use tessera_telemetry::ServiceIdentity;

use clap::{Parser, Subcommand};
use tessera_audit::config::AuditConfig;
use tessera_audit::server::{self, Listeners};

/// The Tessera audit service: a tamper-evident security event log.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The TOML configuration file (every key also has a TESSERA_AUDIT__<KEY> override).
    #[arg(long, short, global = true, env = "TESSERA_AUDIT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until SIGTERM or Ctrl-C.
    Serve,
    /// Check every link of a log's hash chain; exits 1 and says where if it is broken.
    Verify {
        /// The log file (default: audit.log in the configured data_dir).
        file: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = AuditConfig::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Serve => serve(config),
        Command::Verify { file } => {
            let path = file.unwrap_or_else(|| config.data_dir.join("audit.log"));
            match tessera_audit::log::verify(&path)? {
                Ok(verified) => {
                    writeln!(
                        std::io::stdout(),
                        "{}: intact: {} records, {} to {}",
                        path.display(),
                        verified.records,
                        verified.first_seq,
                        verified.last_seq
                    )?;
                    Ok(())
                }
                Err(broken) => {
                    writeln!(
                        std::io::stderr(),
                        "{}: BROKEN at line {} (record {} expected): {}",
                        path.display(),
                        broken.line,
                        broken.expected_seq,
                        broken.problem
                    )?;
                    std::process::exit(1);
                }
            }
        }
    }
}

fn serve(config: AuditConfig) -> anyhow::Result<()> {
    let log_format = config.log_format;
    tessera_telemetry::run_service(
        ServiceIdentity::new("audit").datacenter(config.datacenter.clone()),
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
            "tessera-audit ready: grpc=https://{} admin=http://{} dashboard=http://{}/dashboard",
            started.addr,
            started.admin_addr,
            started.admin_addr
        );
            started.serve().await?;
            Ok(())
        },
    )?
}
