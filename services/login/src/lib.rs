//! Tessera's login service: the only public HTTP surface. An OpenID Connect provider
//! (authorization code flow with PKCE S256, refresh tokens, userinfo, revocation,
//! RP-initiated and back-channel logout) in front of the user directory and the site
//! registry, keeping its short-lived state in the token stash and its sessions in the
//! session service.
//!
//! Anonymous visitors cost no storage: until a person has authenticated, the login flow's
//! state rides in a signed, expiring form field ([`flow`]).

pub mod admin_cli;
pub mod backchannel;
pub mod backends;
pub mod client_ip;
pub mod codes;
pub mod config;
pub mod directory;
mod error;
pub mod flow;
pub mod http;
pub mod metrics;
pub mod password;
pub mod peer_logout;
pub mod ratelimit;
pub mod server;
pub mod signing;
pub mod state;
pub mod totp;

pub use error::{LoginError, ServiceError};

/// `n` random bytes from the operating system, base64url without padding.
pub fn random_text(n: usize) -> Result<String, LoginError> {
    use base64::Engine as _;
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| LoginError::Crypto(format!("operating system randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
#[cfg(feature = "test-util")]
pub mod test_util;
