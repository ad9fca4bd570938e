//! The login service's own Ed25519 key: it signs OpenID Connect ID tokens and
//! back-channel logout tokens (session JWTs are signed by the session service). Its
//! public half is published in `/jwks.json` beside the session keys.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tessera_verify::{SessionSigner, ID_TOKEN_TYP, LOGOUT_TYP};

use crate::directory::IdTokenAlg;
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

/// The login service's signing keys, loaded from (or created in) the secrets folder: an
/// Ed25519 key for ID tokens (by default) and logout tokens, and an RSA key for the ID
/// tokens of sites registered for RS256. Neither ever signs a session token, and the
/// session service's keys are published apart from these, so no token of one kind can
/// verify as another.
#[derive(Debug)]
pub struct LoginKey {
    signer: SessionSigner,
    rsa: RsaKey,
}

struct RsaKey {
    kid: String,
    signing: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
    verifying: rsa::pkcs1v15::VerifyingKey<sha2::Sha256>,
    jwk: serde_json::Value,
}

impl std::fmt::Debug for RsaKey {
    // The private key never appears in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The size of the RS256 key.
const RSA_BITS: usize = 2048;

impl LoginKey {
    /// Loads `dir/id-token.key` (32 bytes, hex) and `dir/id-token-rsa.pem` (PKCS#8),
    /// creating each if missing (mode 0600).
    pub fn load_or_create(dir: &Path) -> Result<Self, LoginError> {
        let path = dir.join("id-token.key");
        let (seed, created) = tessera_config::secret::load_or_create_secret(&path)
            .map_err(|e| LoginError::Config(format!("secrets_dir: {e}")))?;
        if created {
            tracing::warn!(path = %path.display(), "generated a new ID-token signing key; replicas must share it");
        }
        Ok(LoginKey {
            signer: SessionSigner::from_seed(&seed),
            rsa: RsaKey::load_or_create(&dir.join("id-token-rsa.pem"))?,
        })
    }

    /// The published keys (`/jwks.json`): what ID and logout tokens verify with.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.signer.jwk(), self.rsa.jwk] })
    }

    /// An ID token signed as `alg`.
    pub fn sign_id_token(&self, alg: IdTokenAlg, claims: &IdTokenClaims) -> String {
        match alg {
            IdTokenAlg::EdDsa => self.signer.sign_json(ID_TOKEN_TYP, claims),
            IdTokenAlg::Rs256 => self.rsa.sign(claims),
        }
    }

    /// A back-channel logout token.
    pub fn sign_logout_token(&self, claims: &LogoutTokenClaims) -> String {
        self.signer.sign_json(LOGOUT_TYP, claims)
    }

    /// The claims of an ID token signed by either key (expired ones too: a logout hint
    /// only names a session), or `None` for anything else, including tokens of another
    /// type signed by the same key.
    pub fn open_id_token(&self, token: &str) -> Option<IdTokenClaims> {
        let jwks = tessera_verify::Jwks {
            keys: vec![self.signer.jwk()],
        };
        match tessera_verify::verify_signed_json(token, ID_TOKEN_TYP, &jwks) {
            Ok(claims) => Some(claims),
            Err(tessera_verify::VerifyError::UnsupportedAlg(alg)) if alg == "RS256" => {
                self.rsa.open(token)
            }
            Err(_) => None,
        }
    }
}

impl RsaKey {
    fn load_or_create(path: &Path) -> Result<Self, LoginError> {
        use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
        let fail = |e: String| LoginError::Config(format!("secrets_dir: {}: {e}", path.display()));
        let private = match std::fs::read_to_string(path) {
            Ok(pem) => rsa::RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| {
                fail(format!(
                    "not a PKCS#8 RSA key ({e}); remove it to have a new one made"
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(|e| fail(e.to_string()))?;
                let pem = key
                    .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                    .map_err(|e| fail(e.to_string()))?;
                tessera_config::secret::create_private_file(path, pem.as_bytes()).map_err(fail)?;
                tracing::warn!(path = %path.display(), "generated a new RS256 ID-token key; replicas must share it");
                key
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        use rsa::traits::PublicKeyParts as _;
        let public = private.to_public_key();
        let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
        let kid = format!(
            "rs-{}",
            &URL_SAFE_NO_PAD.encode(Sha256::digest(n.as_bytes()))[..8]
        );
        let jwk = serde_json::json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": e,
        });
        Ok(RsaKey {
            signing: rsa::pkcs1v15::SigningKey::new(private),
            verifying: rsa::pkcs1v15::VerifyingKey::new(public),
            kid,
            jwk,
        })
    }

    fn sign(&self, claims: &IdTokenClaims) -> String {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        let header = serde_json::json!({ "alg": "RS256", "kid": self.kid, "typ": ID_TOKEN_TYP });
        let mut token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default())
        );
        let signature = self.signing.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        token
    }

    fn open(&self, token: &str) -> Option<IdTokenClaims> {
        use rsa::signature::Verifier as _;
        if token.len() > tessera_verify::MAX_TOKEN_BYTES {
            return None;
        }
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, payload) = signing_input.split_once('.')?;
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header["alg"] != "RS256"
            || header["kid"] != self.kid.as_str()
            || header["typ"] != ID_TOKEN_TYP
            || header.get("crit").is_some()
        {
            return None;
        }
        let signature =
            rsa::pkcs1v15::Signature::try_from(URL_SAFE_NO_PAD.decode(signature).ok()?.as_slice())
                .ok()?;
        self.verifying
            .verify(signing_input.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
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
