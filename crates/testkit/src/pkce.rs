//! One OAuth authorization request's secrets, as a site's back end makes them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// A PKCE verifier and its S256 challenge, with the request's `state` and `nonce`.
#[derive(Debug, Clone)]
pub struct Pkce {
    /// The code verifier (sent with the code).
    pub verifier: String,
    /// Its S256 challenge (sent with the authorization request).
    pub challenge: String,
    /// The request's `state`.
    pub state: String,
    /// The request's `nonce`.
    pub nonce: String,
}

impl Pkce {
    /// Secrets derived from `seed`, distinct per seed.
    pub fn new(seed: &str) -> Self {
        let verifier = format!("{seed}-verifier-0123456789abcdefghijklmnopqrstuvwxyz");
        Pkce {
            challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            verifier,
            state: format!("state-{seed}"),
            nonce: format!("nonce-{seed}"),
        }
    }
}
