//! The `user` and `site` subcommands: their arguments and what they do (the binary only
//! parses the command line and dispatches here).

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use tessera_clock::{Clock as _, SystemClock, UnixMillis};

use crate::config::LoginConfig;
use crate::directory::{ClientId, Directory, IdTokenAlg, NewSite, UserName};
use crate::password::Passwords;
use crate::LoginError;

/// Reads a new password: from a prompt (twice, not echoed) when stdin is a terminal,
/// otherwise the first line of stdin. Never from an argument, where it would land in
/// shell history and process listings.
pub fn read_new_password() -> Result<String, LoginError> {
    use std::io::IsTerminal as _;
    let io = |e: std::io::Error| LoginError::invalid("password", format!("cannot be read: {e}"));
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").map_err(io)?;
        let second = rpassword::prompt_password("Repeat it: ").map_err(io)?;
        if first != second {
            return Err(LoginError::invalid(
                "password",
                "entries differ; run the command again",
            ));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(io)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            return Err(LoginError::invalid(
                "password",
                "is empty: pipe it on stdin (e.g. printf '%s\\n' \"$PASSWORD\" | tessera-login user add alice)",
            ));
        }
        Ok(password)
    }
}

/// `user add`: the new user's id, or `None` if they exist and `if_absent` is set.
pub async fn add_user(
    directory: &Directory,
    name: &str,
    password: String,
    if_absent: bool,
    now: UnixMillis,
) -> Result<Option<String>, LoginError> {
    let name = UserName::try_from(name)?;
    if if_absent && directory.user_by_name(&name).await?.is_some() {
        return Ok(None);
    }
    let hash = Passwords::new()?.hash(password).await?;
    directory.add_user(&name, &hash, now).await.map(Some)
}

/// `user passwd`: the new password, then every session of the user ends (someone who
/// knew the old password must not stay signed in).
pub async fn set_password(
    config: &LoginConfig,
    directory: &Directory,
    name: &str,
    password: String,
) -> Result<(), LoginError> {
    let name = UserName::try_from(name)?;
    let hash = Passwords::new()?.hash(password).await?;
    directory.set_password(&name, &hash).await?;
    end_sessions_after(config, directory, &name, "the password was changed").await
}

/// `user disable` (or enable). Disabling ends every session of the user.
pub async fn set_disabled(
    config: &LoginConfig,
    directory: &Directory,
    name: &str,
    disabled: bool,
) -> Result<(), LoginError> {
    let name = UserName::try_from(name)?;
    directory.set_disabled(&name, disabled).await?;
    if !disabled {
        return Ok(());
    }
    end_sessions_after(config, directory, &name, "the user was disabled").await
}

/// `user end-sessions`: every session of the user ends, on every site, within a second.
pub async fn end_sessions(
    config: &LoginConfig,
    directory: &Directory,
    name: &str,
) -> Result<(), LoginError> {
    let name = UserName::try_from(name)?;
    end_sessions_after(config, directory, &name, "asked to").await
}

/// Ends the sessions of `name` through the session service (one user epoch, O(1)).
/// The directory change before it already holds, so when the session service cannot be
/// reached the error says so and how to finish.
async fn end_sessions_after(
    config: &LoginConfig,
    directory: &Directory,
    name: &UserName,
    why: &str,
) -> Result<(), LoginError> {
    let user = directory
        .user_by_name(name)
        .await?
        .ok_or_else(|| LoginError::NotFound {
            what: "user",
            name: name.to_string(),
        })?;
    let ended = async {
        let tls = config
            .tls
            .resolve(&crate::config::login_identity())
            .map_err(|e| LoginError::Config(format!("tls: {e}")))?;
        let backends = crate::backends::Backends::connect(config, &tls)?;
        backends
            .revoke(crate::backends::revoke_user(&user.id))
            .await
            .map_err(LoginError::from)
    }
    .await;
    ended.map(|_| ()).map_err(|err| LoginError::Backend {
        service: "the session service",
        message: format!(
            "{why} in the directory, but the sessions of {name} could not be ended ({err}); run `tessera-login user end-sessions {name}` once the session service is reachable"
        ),
    })
}

/// `user totp-enroll`: the secret and the `otpauth://` URI for an authenticator app.
pub async fn enroll_totp(
    directory: &Directory,
    name: &str,
    issuer: &str,
) -> Result<(String, String), LoginError> {
    let name = UserName::try_from(name)?;
    let secret = crate::totp::new_secret()?;
    directory.set_totp(&name, &secret).await?;
    let uri = crate::totp::provisioning_uri(issuer, name.as_str(), &secret);
    Ok((secret, uri))
}

/// `site add`: the secret, or `None` if the site exists and `if_absent` is set. With a
/// `secret_file`, the secret is written there (mode 0600) as well.
pub async fn add_site(
    directory: &Directory,
    site: NewSite,
    if_absent: bool,
    secret_file: Option<&Path>,
    now: UnixMillis,
) -> Result<Option<String>, LoginError> {
    if if_absent && directory.site(site.client_id.as_str()).await?.is_some() {
        return Ok(None);
    }
    let secret = directory.add_site(&site, now).await?;
    if let Some(path) = secret_file {
        write_private(path, &secret)?;
    }
    Ok(Some(secret))
}

/// `site reset-secret`: a new secret (the old one stops working at once), also written
/// to `secret_file` when given.
pub async fn reset_site_secret(
    directory: &Directory,
    client_id: &str,
    secret_file: Option<&Path>,
) -> Result<String, LoginError> {
    let secret = directory
        .reset_site_secret(&ClientId::try_from(client_id)?)
        .await?;
    if let Some(path) = secret_file {
        write_private(path, &secret)?;
    }
    Ok(secret)
}

/// Parses a client id.
pub fn client_id(text: &str) -> Result<ClientId, LoginError> {
    ClientId::try_from(text)
}

fn write_private(path: &Path, secret: &str) -> Result<(), LoginError> {
    use std::io::Write as _;
    let fail =
        |e: std::io::Error| LoginError::Config(format!("--secret-file {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut file = tessera_config::private::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(fail)?;
    file.write_all(secret.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from a prompt, or from stdin when piped.
    Add {
        /// Sign-in name (3-20 of a-z 0-9 . _ -).
        name: String,
        /// Succeed without changes if the user exists.
        #[arg(long)]
        if_absent: bool,
    },
    /// Set a user's password (prompt or stdin); ends their sessions.
    Passwd { name: String },
    /// End every session of a user, on every site.
    EndSessions { name: String },
    /// Disable a user: no new sign-ins, and every session of theirs ends.
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
pub enum SiteCommand {
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
        /// How its ID tokens are signed: EdDSA, or RS256 for client libraries that
        /// know nothing else.
        #[arg(long, default_value = "EdDSA")]
        id_token_alg: String,
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

/// Runs a `user` subcommand, printing what it did.
pub async fn user(config: &LoginConfig, command: UserCommand) -> Result<(), LoginError> {
    let directory = Directory::open(&config.database_url).await?;
    let result = run_user(&directory, config, command).await;
    directory.close().await;
    result
}

async fn run_user(
    directory: &Directory,
    config: &LoginConfig,
    command: UserCommand,
) -> Result<(), LoginError> {
    let now = SystemClock.now();
    let mut out = std::io::stdout();
    match command {
        UserCommand::Add { name, if_absent } => {
            let password = read_new_password()?;
            match add_user(directory, &name, password, if_absent, now).await? {
                Some(id) => writeln!(out, "added user {name} (id {id})").map_err(printing)?,
                None => {
                    writeln!(out, "user {name} already exists; left unchanged").map_err(printing)?
                }
            }
        }
        UserCommand::Passwd { name } => {
            let password = read_new_password()?;
            set_password(config, directory, &name, password).await?;
            writeln!(out, "password of {name} changed; their sessions were ended")
                .map_err(printing)?;
        }
        UserCommand::Disable { name, enable } => {
            set_disabled(config, directory, &name, !enable).await?;
            writeln!(
                out,
                "user {name} {}",
                if enable {
                    "enabled"
                } else {
                    "disabled; their sessions were ended"
                }
            )
            .map_err(printing)?;
        }
        UserCommand::EndSessions { name } => {
            end_sessions(config, directory, &name).await?;
            writeln!(out, "every session of {name} was ended").map_err(printing)?;
        }
        UserCommand::TotpEnroll { name } => {
            let issuer = if config.public_url.is_empty() {
                "Tessera".to_owned()
            } else {
                config.issuer()
            };
            let (secret, uri) = enroll_totp(directory, &name, &issuer).await?;
            writeln!(out, "TOTP enrolled for {name}. Add it to an authenticator app:\n  secret: {secret}\n  uri:    {uri}").map_err(printing)?;
        }
    }
    Ok(())
}

/// Runs a `site` subcommand, printing what it did.
pub async fn site(config: &LoginConfig, command: SiteCommand) -> Result<(), LoginError> {
    let directory = Directory::open(&config.database_url).await?;
    let result = run_site(&directory, command).await;
    directory.close().await;
    result
}

async fn run_site(directory: &Directory, command: SiteCommand) -> Result<(), LoginError> {
    let now = SystemClock.now();
    let mut out = std::io::stdout();
    match command {
        SiteCommand::Add {
            client_id,
            redirect_uris,
            post_logout_uris,
            backchannel_logout_uri,
            name,
            id_token_alg,
            if_absent,
            secret_file,
        } => {
            let site = NewSite {
                client_id: self::client_id(&client_id)?,
                display_name: name,
                redirect_uris,
                post_logout_uris,
                backchannel_logout_uri,
                id_token_alg: IdTokenAlg::try_from(id_token_alg.as_str())?,
            };
            match add_site(directory, site, if_absent, secret_file.as_deref(), now).await? {
                Some(_) if secret_file.is_some() => {
                    writeln!(out, "added site {client_id}; its secret is in the --secret-file (shown only once)").map_err(printing)?
                }
                Some(secret) => writeln!(out, "added site {client_id}\nclient secret (shown only once; only a hash is stored):\n{secret}").map_err(printing)?,
                None => writeln!(out, "site {client_id} already exists; left unchanged").map_err(printing)?,
            }
        }
        SiteCommand::ResetSecret {
            client_id,
            secret_file,
        } => {
            let secret = reset_site_secret(directory, &client_id, secret_file.as_deref()).await?;
            if secret_file.is_some() {
                writeln!(
                    out,
                    "new secret for {client_id} written to the --secret-file"
                )
                .map_err(printing)?;
            } else {
                writeln!(
                    out,
                    "new client secret for {client_id} (shown only once):\n{secret}"
                )
                .map_err(printing)?;
            }
        }
        SiteCommand::List => {
            let sites = directory.sites().await?;
            if sites.is_empty() {
                writeln!(out, "no sites registered; add one with: tessera-login site add <client-id> --redirect-uri <uri>").map_err(printing)?;
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
                )
                .map_err(printing)?;
            }
        }
    }
    Ok(())
}

fn printing(e: std::io::Error) -> LoginError {
    LoginError::Config(format!("cannot write to standard output: {e}"))
}
