//! Stash tokens the session service derives (the shared [`Derivation`]) and random ids.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
pub use tessera_stash_client::Derivation;

use crate::SessionError;

/// Loads the derivation secret from `path`, creating it if missing.
pub fn load_derivation(
    path: &std::path::Path,
    datacenter: &str,
) -> Result<Derivation, SessionError> {
    let (derivation, created) = Derivation::load_or_create(path, datacenter)?;
    if created {
        tracing::warn!(path = %path.display(), "generated a new session derivation secret; replicas must share this file");
    }
    Ok(derivation)
}

/// `n` random bytes from the operating system, base64url.
pub fn random_text(n: usize) -> Result<String, SessionError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| SessionError::Keys(format!("operating system randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
