//! The login service's own Ed25519 key: it signs OpenID Connect ID tokens and
//! back-channel logout tokens (session JWTs are signed by the session service). Its
//! public half is published in `/jwks.json` beside the session keys.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tessera_verify::{Jwk, SessionSigner};

use crate::LoginError;

/// The claims of an ID token (OpenID Connect Core 1.0, section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer (the public URL).
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The site.
    pub aud: String,
    /// Expiry, seconds.
    pub exp: u64,
    /// Issued at, seconds.
    pub iat: u64,
    /// When the person authenticated, seconds.
    pub auth_time: u64,
    /// The site's nonce, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The site session's id (what a back-channel logout names).
    pub sid: String,
    /// The sign-in name.
    pub preferred_username: String,
    /// The central session the site session belongs to: a logout with this ID token as
    /// its hint ends the whole family, even from a browser without the central cookie.
    pub tessera_family: String,
}

/// The claims of a back-channel logout token (OpenID Connect Back-Channel Logout 1.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// The site.
    pub aud: String,
    /// Issued at, seconds.
    pub iat: u64,
    /// Expiry, seconds (short: a logout token is for immediate delivery).
    pub exp: u64,
    /// Unique id.
    pub jti: String,
    /// The site session being ended.
    pub sid: String,
    /// `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
    pub events: serde_json::Value,
}

/// The event member name of a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The login service's signing key, loaded from (or created in) the secrets folder.
#[derive(Debug)]
pub struct LoginKey {
    signer: SessionSigner,
}

impl LoginKey {
    /// Loads `dir/id-token.key` (32 bytes, hex), creating it if missing.
    pub fn load_or_create(dir: &Path) -> Result<Self, LoginError> {
        let path = dir.join("id-token.key");
        let (seed, created) = tessera_config::secret::load_or_create_secret(&path)
            .map_err(|e| LoginError::Config(format!("secrets_dir: {e}")))?;
        if created {
            tracing::warn!(path = %path.display(), "generated a new ID-token signing key; replicas must share it");
        }
        Ok(LoginKey {
            signer: SessionSigner::from_seed(&seed),
        })
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        self.signer.jwk()
    }

    /// Signs any claims.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        self.signer.sign_json(claims)
    }
}

/// Loads `dir/flow.key`, creating it if missing: the key of signed login forms.
pub fn flow_key(dir: &Path) -> Result<[u8; 32], LoginError> {
    let path = dir.join("flow.key");
    let (key, created) = tessera_config::secret::load_or_create_secret(&path)
        .map_err(|e| LoginError::Config(format!("secrets_dir: {e}")))?;
    if created {
        tracing::warn!(path = %path.display(), "generated a new login-form signing key; replicas must share it");
    }
    Ok(key)
}
