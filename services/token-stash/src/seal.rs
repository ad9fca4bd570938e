//! Sealing tokens for the owner index.
//!
//! ListByOwner must answer with tokens, yet the store must not hold usable tokens. The
//! owner index therefore keeps each token encrypted (ChaCha20-Poly1305) under a key that
//! lives outside the store, bound to the token's [`TokenKey`] so a sealed token cannot be
//! moved to another entry. A dump of the store alone yields nothing usable.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::token::TokenKey;
use crate::{StashError, Token};

const NONCE_BYTES: usize = 12;

/// Encrypts tokens for the owner index and decrypts them for ListByOwner.
#[derive(Clone)]
pub struct TokenSealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer(…)")
    }
}

impl TokenSealer {
    /// A sealer with the given 256-bit key.
    pub fn new(key: [u8; 32]) -> Self {
        TokenSealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// A sealer with a random key, for tests and single-process use.
    pub fn random() -> Result<Self, StashError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| StashError::Storage(e.to_string()))?;
        Ok(TokenSealer::new(key))
    }

    /// Loads the key from `path` (64 hex characters), creating it with a fresh random key
    /// (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, StashError> {
        let (key, created) = tessera_config::secret::load_or_create_secret(path).map_err(|e| {
            StashError::Config(format!(
                "tokens.seal_key_file: {e}; delete the file to generate a new one (tokens sealed with the old key then stop being listed)"
            ))
        })?;
        if created {
            tracing::warn!(path = %path.display(), "generated a new token seal key; replicas sharing one store must share this file");
        }
        Ok(TokenSealer::new(key))
    }

    /// Encrypts `token`, bound to its key.
    pub fn seal(&self, token: &Token) -> Result<Vec<u8>, StashError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| StashError::Storage(e.to_string()))?;
        let aad = token.key();
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.expose().as_bytes(),
                    aad: &aad.0,
                },
            )
            .map_err(|_| StashError::Storage("token sealing failed".into()))?;
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts a sealed token stored under `key`; `None` if it was sealed with another
    /// seal key or tampered with.
    pub fn open(&self, key: &TokenKey, sealed: &[u8]) -> Option<Token> {
        if sealed.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &key.0,
                },
            )
            .ok()?;
        let token = Token::try_from(std::str::from_utf8(&plain).ok()?).ok()?;
        (token.key() == *key).then_some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DatacenterId;

    fn token() -> Token {
        Token::mint(&DatacenterId::try_from("dc1").expect("dc")).expect("token")
    }

    #[test]
    fn sealed_tokens_open_under_their_own_key_only() {
        let sealer = TokenSealer::random().expect("sealer");
        let (a, b) = (token(), token());
        let sealed = sealer.seal(&a).expect("sealed");
        assert!(!sealed
            .windows(a.expose().len())
            .any(|w| w == a.expose().as_bytes()));
        assert_eq!(
            sealer.open(&a.key(), &sealed).map(|t| t.key()),
            Some(a.key())
        );
        assert!(
            sealer.open(&b.key(), &sealed).is_none(),
            "bound to its entry"
        );
        let other = TokenSealer::random().expect("sealer");
        assert!(
            other.open(&a.key(), &sealed).is_none(),
            "bound to the seal key"
        );
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("seal.key");
        let first = TokenSealer::load_or_create(&path).expect("created");
        let sealed = first.seal(&token()).expect("sealed");
        let again = TokenSealer::load_or_create(&path).expect("loaded");
        assert!(again.open(&TokenKey([0; 32]), &sealed).is_none());
        let t = token();
        assert!(again
            .open(&t.key(), &first.seal(&t).expect("sealed"))
            .is_some());
    }
}
