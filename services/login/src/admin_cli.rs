//! What the `user` and `site` subcommands do, as library functions (the binary only
//! parses arguments and prints).

use std::io::BufRead as _;
use std::path::Path;

use tessera_clock::UnixMillis;

use crate::directory::{ClientId, Directory, NewSite, UserName};
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

/// `user passwd`.
pub async fn set_password(
    directory: &Directory,
    name: &str,
    password: String,
) -> Result<(), LoginError> {
    let name = UserName::try_from(name)?;
    let hash = Passwords::new()?.hash(password).await?;
    directory.set_password(&name, &hash).await
}

/// `user disable` (or enable).
pub async fn set_disabled(
    directory: &Directory,
    name: &str,
    disabled: bool,
) -> Result<(), LoginError> {
    directory
        .set_disabled(&UserName::try_from(name)?, disabled)
        .await
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
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(secret.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}
