//! Authorization codes: single-use stash entries (60 s by default) bound to the site,
//! the redirect URI and the PKCE challenge, and what their redemption leaves behind so a
//! second redemption can revoke what the first one issued.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use tessera_stash_client::{Lookup, Stored};

use crate::flow::AuthorizeRequest;
use crate::state::AppState;
use crate::LoginError;

const CODE_NAMESPACE: &str = "login-code";
/// Code redemptions: each names the site session it issued and is listed under its
/// central session (the owner), for back-channel logout.
pub const SITE_SESSION_NAMESPACE: &str = "login-site-session";
/// A redemption is remembered at least this long (and as long as its session lives), so
/// a replay can revoke what it issued.
const MIN_REDEMPTION_MEMORY: Duration = Duration::from_secs(600);

/// What a code stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The site it was issued to.
    pub client_id: String,
    /// The redirect URI it was issued for.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// The site's nonce.
    pub nonce: Option<String>,
    /// Scopes.
    pub scope: String,
    /// The user.
    pub user_id: String,
    /// Their sign-in name.
    pub user_name: String,
    /// The central session the site session will derive from.
    pub central_sid: String,
    /// When the person authenticated, seconds.
    pub auth_time: u64,
    /// When the code was minted, milliseconds.
    pub minted_at: u64,
}

/// A site session of a central session, remembered for back-channel logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteSession {
    /// The site.
    pub client_id: String,
    /// Its session id.
    pub sid: String,
    /// The user.
    pub sub: String,
}

/// Why a code could not be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Past its TTL.
    Expired,
    /// Already redeemed.
    AlreadyUsed,
    /// Never issued (or long forgotten).
    Unknown,
}

/// Mints a code for `request` and the signed-in user.
pub async fn mint(
    state: &AppState,
    request: &AuthorizeRequest,
    user_id: &str,
    user_name: &str,
    central_sid: &str,
    auth_time: u64,
) -> Result<String, LoginError> {
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.clone(),
        user_id: user_id.to_owned(),
        user_name: user_name.to_owned(),
        central_sid: central_sid.to_owned(),
        auth_time,
        minted_at: state.clock.now().0,
    };
    let value = serde_json::to_vec(&grant).map_err(|e| LoginError::Crypto(e.to_string()))?;
    let code = state
        .backends
        .stash
        .put_single_use(CODE_NAMESPACE, value, state.config.code_ttl())
        .await?;
    state.metrics.codes_issued.inc();
    state.witness(crate::state::Witnessed {
        kind: "code_issued",
        user_id,
        user_name,
        site: &request.client_id,
        ..Default::default()
    });
    Ok(code)
}

/// Consumes `code`: exactly one caller ever gets its grant.
pub async fn take(
    state: &AppState,
    code: &str,
) -> Result<Result<CodeGrant, CodeRefusal>, LoginError> {
    if code.is_empty() || code.len() > 256 {
        return Ok(Err(CodeRefusal::Unknown));
    }
    Ok(match state.backends.stash.take(code).await? {
        Lookup::Found(bytes) => match serde_json::from_slice(&bytes) {
            Ok(grant) => Ok(grant),
            Err(_) => Err(CodeRefusal::Unknown),
        },
        Lookup::Expired => Err(CodeRefusal::Expired),
        Lookup::Consumed => Err(CodeRefusal::AlreadyUsed),
        Lookup::Deleted | Lookup::Unknown => Err(CodeRefusal::Unknown),
    })
}

/// Whether `verifier` (RFC 7636: 43-128 unreserved characters) hashes to `challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Whether `challenge` is a well-formed S256 challenge (43 base64url characters).
pub fn challenge_well_formed(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Records what the redemption of `code` issued, in one stash entry at a token derived
/// from the code: the site session, listed under its central session for back-channel
/// logout. If a replay of the code got there first, revokes that session at once: a
/// replayed code must not leave a live session behind, whichever request the stash saw
/// first.
pub async fn record_redemption(
    state: &AppState,
    code: &str,
    grant: &CodeGrant,
    sid: &str,
    session_ttl: Duration,
) -> Result<(), LoginError> {
    let site_session = SiteSession {
        client_id: grant.client_id.clone(),
        sid: sid.to_owned(),
        sub: grant.user_id.clone(),
    };
    let value = serde_json::to_vec(&site_session).map_err(|e| LoginError::Crypto(e.to_string()))?;
    let marker = state.backends.derive.token("code-redeemed", code);
    let stored = state
        .backends
        .stash
        .put_at(
            &marker,
            SITE_SESSION_NAMESPACE,
            value,
            session_ttl.max(MIN_REDEMPTION_MEMORY),
            &grant.central_sid,
        )
        .await?;
    if stored == Stored::AlreadyThere {
        tracing::warn!(site = %grant.client_id, user = %grant.user_id, "authorization code replayed during its redemption; revoking the session it issued");
        state
            .backends
            .revoke(crate::backends::revoke_session(sid))
            .await?;
    }
    Ok(())
}

/// A replayed code: revokes the session its first redemption issued, or, if that
/// redemption has not recorded it yet, leaves a mark it will find.
pub async fn revoke_replayed(state: &AppState, code: &str) -> Result<(), LoginError> {
    let marker = state.backends.derive.token("code-redeemed", code);
    let stash = &state.backends.stash;
    let stored = stash
        .put_at(
            &marker,
            SITE_SESSION_NAMESPACE,
            b"replayed".to_vec(),
            MIN_REDEMPTION_MEMORY,
            "",
        )
        .await?;
    if stored == Stored::Stored {
        return Ok(());
    }
    let Some(bytes) = stash.get(&marker).await? else {
        return Ok(());
    };
    if let Ok(first) = serde_json::from_slice::<SiteSession>(&bytes) {
        state
            .backends
            .revoke(crate::backends::revoke_session(&first.sid))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B.
    #[test]
    fn pkce_s256_matches_the_rfc_example_and_nothing_else() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(challenge_well_formed(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(challenge, challenge), "plain is not S256");
    }
}
