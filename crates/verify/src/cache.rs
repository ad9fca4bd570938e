//! Verified tokens by hash, so a token seen before costs a hash instead of a signature
//! check. Only the signature result is cached: expiry and revocation are checked on every
//! use.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::Claims;

/// How many verified tokens are kept; when full the cache starts over (cheap, and a
/// miss only costs one signature check).
const CAPACITY: usize = 16_384;

#[derive(Debug, Default)]
pub(crate) struct VerifiedCache {
    entries: HashMap<[u8; 32], Claims>,
}

impl VerifiedCache {
    pub fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    pub fn get(&self, key: &[u8; 32]) -> Option<Claims> {
        self.entries.get(key).cloned()
    }

    pub fn insert(&mut self, key: [u8; 32], claims: Claims) {
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        self.entries.insert(key, claims);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
