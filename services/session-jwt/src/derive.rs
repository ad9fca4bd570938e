//! Stash tokens the service can compute again from what a caller presents, so that
//! concurrent requests (on any replica) meet at one stash entry without a lock.
//!
//! A derived token is `<dc>.<base64url(HMAC-SHA256(secret, purpose ‖ 0 ‖ input))>`: only
//! holders of the secret can compute it, and the stash's put-if-absent makes the first
//! writer win.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::SessionError;

/// Derives stash tokens from a secret shared by the service's replicas.
#[derive(Clone)]
pub struct Derivation {
    secret: [u8; 32],
    datacenter: String,
}

impl std::fmt::Debug for Derivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derivation")
            .field("datacenter", &self.datacenter)
            .finish_non_exhaustive()
    }
}

impl Derivation {
    /// Derivations for the stash of `datacenter`.
    pub fn new(secret: [u8; 32], datacenter: &str) -> Self {
        Derivation {
            secret,
            datacenter: datacenter.to_owned(),
        }
    }

    /// Loads the secret from `path` (64 hex characters), creating it if missing.
    pub fn load_or_create(path: &std::path::Path, datacenter: &str) -> Result<Self, SessionError> {
        let config = |what: String| SessionError::Config(format!("{}: {what}", path.display()));
        let secret = match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = text.trim();
                let mut secret = [0u8; 32];
                if text.len() != 64 {
                    return Err(config("must hold 64 hex characters".into()));
                }
                for (i, byte) in secret.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                        .map_err(|_| config("must hold 64 hex characters".into()))?;
                }
                secret
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| config(e.to_string()))?;
                let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
                crate::keys::write_secret(path, &hex).map_err(|e| config(e.to_string()))?;
                tracing::warn!(path = %path.display(), "generated a new session derivation secret; replicas must share this file");
                secret
            }
            Err(err) => return Err(config(err.to_string())),
        };
        Ok(Derivation::new(secret, datacenter))
    }

    /// The stash token for `purpose` and `input`.
    pub fn token(&self, purpose: &str, input: &str) -> String {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(input.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{}.{}", self.datacenter, URL_SAFE_NO_PAD.encode(digest))
    }
}

/// `n` random bytes from the operating system, base64url.
pub fn random_text(n: usize) -> Result<String, SessionError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| SessionError::Keys(format!("operating system randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
