//! Stash tokens a service can compute again from what a caller presents, so that
//! concurrent requests (on any replica) meet at one stash entry without a lock.
//!
//! A derived token is `<dc>.<base64url(HMAC-SHA256(secret, purpose ‖ 0 ‖ input))>`: only
//! holders of the secret can compute it, and the stash's put-if-absent makes the first
//! writer win.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::StashClientError;

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
    /// Whether it was created is returned too: replicas must share the file, so a
    /// caller should say so loudly.
    pub fn load_or_create(
        path: &std::path::Path,
        datacenter: &str,
    ) -> Result<(Self, bool), StashClientError> {
        let (secret, created) = tessera_config::secret::load_or_create_secret(path)
            .map_err(|e| StashClientError::Config(format!("secret file: {e}")))?;
        Ok((Derivation::new(secret, datacenter), created))
    }

    /// The stash token for `purpose` and `input`, in this service's datacenter.
    pub fn token(&self, purpose: &str, input: &str) -> String {
        self.token_at(&self.datacenter, purpose, input)
    }

    /// A 256-bit key for `label`, derived from the shared secret, so replicas and peer
    /// datacenters that derive the same tokens hold the same key without another file.
    /// Its input starts with a byte no UTF-8 purpose does, so no derived token can ever
    /// equal a key.
    pub fn key(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(&[0xff]);
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The stash token for `purpose` and `input` in `datacenter`'s stash: for records that
    /// must live beside something another datacenter owns (the stash forwards there).
    pub fn token_at(&self, datacenter: &str, purpose: &str, input: &str) -> String {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(input.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{datacenter}.{}", URL_SAFE_NO_PAD.encode(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shared_by_holders_of_the_secret_and_never_a_derived_token() {
        let derivation = Derivation::new([7; 32], "dc-a");
        let key = derivation.key("refresh-token-seal");
        assert_eq!(
            key,
            Derivation::new([7; 32], "dc-b").key("refresh-token-seal"),
            "every datacenter holding the secret holds the key"
        );
        assert_ne!(key, derivation.key("another-purpose"));
        assert_ne!(
            key,
            Derivation::new([8; 32], "dc-a").key("refresh-token-seal")
        );
        let encoded = URL_SAFE_NO_PAD.encode(key);
        for (purpose, input) in [("", "refresh-token-seal"), ("refresh-token-seal", "")] {
            assert!(!derivation.token(purpose, input).ends_with(&encoded));
        }
    }
}
