//! Sites (OAuth clients): a hashed secret, the exact redirect and post-logout URIs they
//! may use, and where their back-channel logout endpoint is.

use sha2::{Digest, Sha256};
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;
use tessera_clock::UnixMillis;

use super::{is_unique_violation, ClientId, Directory};
use crate::LoginError;

/// A registered site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The OAuth client id.
    pub client_id: String,
    /// What people are told they are signing in to.
    pub display_name: String,
    /// Exact redirect URIs `/authorize` accepts.
    pub redirect_uris: Vec<String>,
    /// Exact `post_logout_redirect_uri`s `/logout` accepts.
    pub post_logout_uris: Vec<String>,
    /// Where logout tokens are POSTed, if the site wants them.
    pub backchannel_logout_uri: Option<String>,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlg,
    secret_hash: String,
}

/// How a site's ID tokens are signed (`id_token_signed_response_alg`). Session tokens
/// are always EdDSA; RS256 is here because OpenID Connect makes it mandatory to
/// implement and many client libraries know nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdTokenAlg {
    /// Ed25519 (the default: small and fast).
    #[default]
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, a 2048-bit key.
    Rs256,
}

impl IdTokenAlg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlg::EdDsa => "EdDSA",
            IdTokenAlg::Rs256 => "RS256",
        }
    }
}

impl TryFrom<&str> for IdTokenAlg {
    type Error = LoginError;

    fn try_from(text: &str) -> Result<Self, LoginError> {
        match text {
            "EdDSA" => Ok(IdTokenAlg::EdDsa),
            "RS256" => Ok(IdTokenAlg::Rs256),
            other => Err(LoginError::invalid(
                "id token alg",
                format!("{other:?} is not offered: use EdDSA or RS256"),
            )),
        }
    }
}

/// What `site add` registers.
#[derive(Debug, Clone)]
pub struct NewSite {
    /// The client id.
    pub client_id: ClientId,
    /// Display name (defaults to the client id).
    pub display_name: Option<String>,
    /// Redirect URIs, at least one.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlg,
}

impl Site {
    /// Whether `secret` is this site's secret, compared in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        let presented = secret_hash(secret);
        presented
            .as_bytes()
            .ct_eq(self.secret_hash.as_bytes())
            .into()
    }
}

/// What is stored of a site secret: its SHA-256, hex. The secret has 256 random bits, so
/// a fast hash is enough (no password-style stretching).
fn secret_hash(secret: &str) -> String {
    tessera_config::secret::encode_hex(&Sha256::digest(secret.as_bytes()))
}

/// A registrable URI: absolute http(s), no fragment; plain http only on loopback.
fn check_uri(field: &'static str, uri: &str) -> Result<(), LoginError> {
    let parsed = url::Url::parse(uri)
        .map_err(|e| LoginError::invalid(field, format!("{uri:?} is not an absolute URL: {e}")))?;
    if parsed.fragment().is_some() {
        return Err(LoginError::invalid(
            field,
            format!("{uri:?} must not have a #fragment"),
        ));
    }
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(LoginError::invalid(
            field,
            format!("{uri:?} must be https:// (plain http only for localhost)"),
        )),
    }
}

impl Directory {
    /// Registers a site; its secret, which is shown only now (only a hash is kept).
    pub async fn add_site(&self, site: &NewSite, now: UnixMillis) -> Result<String, LoginError> {
        if site.redirect_uris.is_empty() {
            return Err(LoginError::invalid(
                "redirect uri",
                "is missing: give at least one --redirect-uri",
            ));
        }
        for uri in &site.redirect_uris {
            check_uri("redirect uri", uri)?;
        }
        for uri in &site.post_logout_uris {
            check_uri("post-logout uri", uri)?;
        }
        if let Some(uri) = &site.backchannel_logout_uri {
            check_uri("back-channel logout uri", uri)?;
        }
        let secret = crate::random_text(32)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sites (client_id, display_name, secret_hash, backchannel_logout_uri, id_token_alg, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(site.client_id.as_str())
        .bind(site.display_name.clone().unwrap_or_else(|| site.client_id.to_string()))
        .bind(secret_hash(&secret))
        .bind(site.backchannel_logout_uri.clone())
        .bind(site.id_token_alg.as_str())
        .bind(now.as_i64())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                LoginError::Duplicate {
                    what: "site",
                    name: site.client_id.to_string(),
                }
            } else {
                e.into()
            }
        })?;
        let uris = site
            .redirect_uris
            .iter()
            .map(|u| ("redirect", u))
            .chain(site.post_logout_uris.iter().map(|u| ("post_logout", u)));
        let mut seen = std::collections::BTreeSet::new();
        for (kind, uri) in uris {
            if !seen.insert((kind, uri)) {
                continue;
            }
            sqlx::query("INSERT INTO site_uris (client_id, kind, uri) VALUES ($1, $2, $3)")
                .bind(site.client_id.as_str())
                .bind(kind)
                .bind(uri.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(secret)
    }

    /// Replaces a site's secret; the new one, shown only now.
    pub async fn reset_site_secret(&self, client_id: &ClientId) -> Result<String, LoginError> {
        let secret = crate::random_text(32)?;
        let done = sqlx::query("UPDATE sites SET secret_hash = $1 WHERE client_id = $2")
            .bind(secret_hash(&secret))
            .bind(client_id.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(LoginError::NotFound {
                what: "site",
                name: client_id.to_string(),
            });
        }
        Ok(secret)
    }

    /// The site with client id `client_id`, if registered.
    pub async fn site(&self, client_id: &str) -> Result<Option<Site>, LoginError> {
        let Some(row) = sqlx::query(
            "SELECT client_id, display_name, secret_hash, backchannel_logout_uri, id_token_alg FROM sites WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let mut site = Site {
            client_id: row.try_get("client_id")?,
            display_name: row.try_get("display_name")?,
            secret_hash: row.try_get("secret_hash")?,
            backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
            id_token_alg: IdTokenAlg::try_from(row.try_get::<String, _>("id_token_alg")?.as_str())?,
            redirect_uris: Vec::new(),
            post_logout_uris: Vec::new(),
        };
        let uris = sqlx::query("SELECT kind, uri FROM site_uris WHERE client_id = $1 ORDER BY uri")
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?;
        for row in uris {
            let kind: String = row.try_get("kind")?;
            let uri: String = row.try_get("uri")?;
            match kind.as_str() {
                "redirect" => site.redirect_uris.push(uri),
                _ => site.post_logout_uris.push(uri),
            }
        }
        Ok(Some(site))
    }

    /// Every registered site, by client id.
    pub async fn sites(&self) -> Result<Vec<Site>, LoginError> {
        let ids = sqlx::query("SELECT client_id FROM sites ORDER BY client_id")
            .fetch_all(&self.pool)
            .await?;
        let mut sites = Vec::with_capacity(ids.len());
        for row in ids {
            let id: String = row.try_get("client_id")?;
            if let Some(site) = self.site(&id).await? {
                sites.push(site);
            }
        }
        Ok(sites)
    }
}
