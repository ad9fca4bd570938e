//! `tessera-login`: serve, or administer users and sites.

use std::io::Write as _;
use std::path::PathBuf;
use tessera_telemetry::ServiceIdentity;

use clap::{Parser, Subcommand};
use tessera_login::admin_cli::{self, SiteCommand, UserCommand};
use tessera_login::config::LoginConfig;
use tessera_login::server::{self, Listeners};

/// The Tessera login service: the OpenID Connect provider people sign in through.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The TOML configuration file (every key also has a TESSERA_LOGIN__<KEY> override).
    #[arg(long, short, global = true, env = "TESSERA_LOGIN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until SIGTERM or Ctrl-C.
    Serve,
    /// Check the configuration and print it, without serving.
    CheckConfig,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage sites (OAuth clients).
    #[command(subcommand)]
    Site(SiteCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(cli.config),
        Command::CheckConfig => {
            let config = LoginConfig::load(cli.config.as_deref(), std::env::vars())?;
            let _ = writeln!(std::io::stdout(), "{:#?}", config.redacted());
            Ok(())
        }
        Command::User(command) => admin(cli.config, |config| async move {
            admin_cli::user(&config, command).await
        }),
        Command::Site(command) => admin(cli.config, |config| async move {
            admin_cli::site(&config, command).await
        }),
    }
}

/// Runs an administrative command on a small runtime of its own.
fn admin<F, Fut>(config_path: Option<PathBuf>, command: F) -> anyhow::Result<()>
where
    F: FnOnce(LoginConfig) -> Fut,
    Fut: std::future::Future<Output = Result<(), tessera_login::LoginError>>,
{
    let config = LoginConfig::load_unvalidated(config_path.as_deref(), std::env::vars())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(command(config))?)
}

fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = LoginConfig::load(config_path.as_deref(), std::env::vars())?;
    let log_format = config.log_format;
    tessera_telemetry::run_service(
        ServiceIdentity::new("login").datacenter(config.stash.datacenter.clone()),
        log_format,
        async move {
            let listeners = Listeners::bind(config.listen, config.admin_listen).await?;
            let dev = config.dev_insecure_http;
            let started = server::start(
                config,
                tessera_clock::service_clock_from_env()?,
                listeners,
                tessera_telemetry::shutdown_signal(),
            )
            .await?;
            if dev {
                let _ = writeln!(std::io::stderr(), "\n  !! tessera-login DEVELOPMENT MODE: plain HTTP on loopback; never in production !!\n");
            }
            let _ = writeln!(
                std::io::stdout(),
                "tessera-login ready: http=http://{} admin=http://{}",
                started.addr,
                started.admin_addr
            );
            started.serve().await?;
            Ok(())
        },
    )?
}
