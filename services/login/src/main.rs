//! `tessera-login`: serve, or administer users and sites.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tessera_clock::{Clock as _, SystemClock};
use tessera_login::admin_cli;
use tessera_login::config::LoginConfig;
use tessera_login::directory::{Directory, NewSite};
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

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from a prompt, or from stdin when piped.
    Add {
        /// Sign-in name (3-20 of a-z 0-9 . _ -).
        name: String,
        /// Succeed without changes if the user exists.
        #[arg(long)]
        if_absent: bool,
    },
    /// Set a user's password (prompt or stdin).
    Passwd { name: String },
    /// Disable a user: no new sign-ins, and their SSO stops.
    Disable {
        name: String,
        /// Enable the user again instead.
        #[arg(long)]
        enable: bool,
    },
    /// Enrol TOTP as a second factor; prints the secret and an otpauth:// URI.
    TotpEnroll { name: String },
}

#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Register a site; prints its secret once (only a hash is stored).
    Add {
        /// Client id (3-20 of a-z 0-9 -).
        client_id: String,
        /// An exact redirect URI (repeatable; at least one).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// An exact post-logout redirect URI (repeatable).
        #[arg(long = "post-logout-uri")]
        post_logout_uris: Vec<String>,
        /// Where logout tokens are POSTed.
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// The name people see on the sign-in page.
        #[arg(long)]
        name: Option<String>,
        /// Succeed without changes if the site exists.
        #[arg(long)]
        if_absent: bool,
        /// Also write the secret to this file (mode 0600), e.g. for a site's deployment.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Give a site a new secret (the old one stops working at once); prints it once.
    ResetSecret {
        client_id: String,
        /// Write the secret to this file (mode 0600) instead of printing it.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// List registered sites.
    List,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve(cli.config),
        Command::CheckConfig => {
            let config = LoginConfig::load(cli.config.as_deref(), std::env::vars())?;
            let _ = writeln!(std::io::stdout(), "{config:#?}");
            Ok(())
        }
        Command::User(command) => admin(cli.config, |directory, config| {
            Box::pin(user(directory, config, command))
        }),
        Command::Site(command) => admin(cli.config, |directory, _| {
            Box::pin(site(directory, command))
        }),
    }
}

type AdminFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + 'a>>;

/// Runs an administrative command against the configured directory.
fn admin(
    config_path: Option<PathBuf>,
    command: impl for<'a> FnOnce(&'a Directory, &'a LoginConfig) -> AdminFuture<'a>,
) -> anyhow::Result<()> {
    let config = LoginConfig::load_unvalidated(config_path.as_deref(), std::env::vars())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let directory = Directory::open(&config.database_url).await?;
        let result = command(&directory, &config).await;
        directory.close().await;
        result
    })
}

async fn user(
    directory: &Directory,
    config: &LoginConfig,
    command: UserCommand,
) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let mut out = std::io::stdout();
    match command {
        UserCommand::Add { name, if_absent } => {
            let password = admin_cli::read_new_password()?;
            match admin_cli::add_user(directory, &name, password, if_absent, now).await? {
                Some(id) => writeln!(out, "added user {name} (id {id})")?,
                None => writeln!(out, "user {name} already exists; left unchanged")?,
            }
        }
        UserCommand::Passwd { name } => {
            let password = admin_cli::read_new_password()?;
            admin_cli::set_password(directory, &name, password).await?;
            writeln!(out, "password of {name} changed")?;
        }
        UserCommand::Disable { name, enable } => {
            admin_cli::set_disabled(directory, &name, !enable).await?;
            writeln!(
                out,
                "user {name} {}",
                if enable { "enabled" } else { "disabled" }
            )?;
        }
        UserCommand::TotpEnroll { name } => {
            let issuer = if config.public_url.is_empty() {
                "Tessera".to_owned()
            } else {
                config.issuer()
            };
            let (secret, uri) = admin_cli::enroll_totp(directory, &name, &issuer).await?;
            writeln!(out, "TOTP enrolled for {name}. Add it to an authenticator app:\n  secret: {secret}\n  uri:    {uri}")?;
        }
    }
    Ok(())
}

async fn site(directory: &Directory, command: SiteCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let mut out = std::io::stdout();
    match command {
        SiteCommand::Add {
            client_id,
            redirect_uris,
            post_logout_uris,
            backchannel_logout_uri,
            name,
            if_absent,
            secret_file,
        } => {
            let site = NewSite {
                client_id: admin_cli::client_id(&client_id)?,
                display_name: name,
                redirect_uris,
                post_logout_uris,
                backchannel_logout_uri,
            };
            match admin_cli::add_site(directory, site, if_absent, secret_file.as_deref(), now).await? {
                Some(_) if secret_file.is_some() => {
                    writeln!(out, "added site {client_id}; its secret is in the --secret-file (shown only once)")?
                }
                Some(secret) => writeln!(out, "added site {client_id}\nclient secret (shown only once; only a hash is stored):\n{secret}")?,
                None => writeln!(out, "site {client_id} already exists; left unchanged")?,
            }
        }
        SiteCommand::ResetSecret {
            client_id,
            secret_file,
        } => {
            let secret =
                admin_cli::reset_site_secret(directory, &client_id, secret_file.as_deref()).await?;
            if secret_file.is_some() {
                writeln!(
                    out,
                    "new secret for {client_id} written to the --secret-file"
                )?;
            } else {
                writeln!(
                    out,
                    "new client secret for {client_id} (shown only once):\n{secret}"
                )?;
            }
        }
        SiteCommand::List => {
            let sites = directory.sites().await?;
            if sites.is_empty() {
                writeln!(out, "no sites registered; add one with: tessera-login site add <client-id> --redirect-uri <uri>")?;
            }
            for site in sites {
                writeln!(
                    out,
                    "{}\t{}\n  redirect: {}\n  post-logout: {}\n  back-channel: {}",
                    site.client_id,
                    site.display_name,
                    site.redirect_uris.join(" "),
                    site.post_logout_uris.join(" "),
                    site.backchannel_logout_uri.as_deref().unwrap_or("-")
                )?;
            }
        }
    }
    Ok(())
}

fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = LoginConfig::load(config_path.as_deref(), std::env::vars())?;
    let log_format = config.log_format;
    tessera_telemetry::run_service("login", log_format, async move {
        let listeners = Listeners::bind(&config).await?;
        let dev = config.dev_insecure_http;
        let started = server::start(
            config,
            SystemClock::shared(),
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
            started.http_addr,
            started.admin_addr
        );
        started.serve().await?;
        Ok(())
    })?
}
