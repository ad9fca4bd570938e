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
    /// Issued to another site.
    WrongSite,
    /// Issued for another redirect URI.
    RedirectMismatch,
    /// The PKCE verifier does not match the challenge.
    PkceMismatch,
}

/// What the redeeming site presents with a code.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The authenticated site.
    pub client_id: &'a str,
    /// The `redirect_uri` it sent.
    pub redirect_uri: &'a str,
    /// The PKCE `code_verifier` it sent.
    pub verifier: &'a str,
}

impl CodeGrant {
    fn check(&self, presented: Presented<'_>) -> Result<(), CodeRefusal> {
        if self.client_id != presented.client_id {
            return Err(CodeRefusal::WrongSite);
        }
        if self.redirect_uri != presented.redirect_uri {
            return Err(CodeRefusal::RedirectMismatch);
        }
        if !pkce_matches(presented.verifier, &self.code_challenge) {
            return Err(CodeRefusal::PkceMismatch);
        }
        Ok(())
    }
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
    let token = state
        .backends
        .stash
        .put_single_use(CODE_NAMESPACE, value, state.config.code_ttl())
        .await?;
    let code = format!(
        "{token}.{}",
        binding_tags(
            state,
            &token,
            &request.client_id,
            &request.redirect_uri,
            &request.code_challenge
        )
        .concat()
    );
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

/// Characters of each binding tag a code carries.
const TAG_CHARS: usize = 8;

/// The tags binding the stash entry `token` to a site, a redirect URI and a PKCE
/// challenge, in that order.
fn binding_tags(
    state: &AppState,
    token: &str,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
) -> [String; 3] {
    let tag = |what: &str, value: &str| {
        state
            .flow
            .tag("code-binding", &[token, what, value], TAG_CHARS)
    };
    [
        tag("client", client_id),
        tag("redirect", redirect_uri),
        tag("challenge", challenge),
    ]
}

/// Redeems `code` for the site that `presented` it. A code carries keyed tags of the
/// site, redirect URI and PKCE challenge it was issued for, so the binding is checked
/// before the stash entry is consumed (RFC 6749 section 4.1.3): another registered site,
/// a wrong redirect or a wrong verifier consumes nothing. The consuming take is atomic,
/// so exactly one caller ever gets the grant.
pub async fn redeem(
    state: &AppState,
    code: &str,
    presented: Presented<'_>,
) -> Result<Result<CodeGrant, CodeRefusal>, LoginError> {
    if code.is_empty() || code.len() > 256 {
        return Ok(Err(CodeRefusal::Unknown));
    }
    let Some((token, tags)) = code
        .rsplit_once('.')
        .filter(|(_, t)| t.len() == 3 * TAG_CHARS)
    else {
        return Ok(Err(CodeRefusal::Unknown));
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(presented.verifier.as_bytes()));
    let expected = binding_tags(
        state,
        token,
        presented.client_id,
        presented.redirect_uri,
        &challenge,
    );
    let carried = tags.as_bytes().chunks(TAG_CHARS);
    for (refusal, (expected, carried)) in [
        CodeRefusal::WrongSite,
        CodeRefusal::RedirectMismatch,
        CodeRefusal::PkceMismatch,
    ]
    .into_iter()
    .zip(expected.iter().zip(carried))
    {
        if !bool::from(expected.as_bytes().ct_eq(carried)) {
            return Ok(Err(refusal));
        }
    }
    let grant = match state.backends.stash.take(token).await? {
        Lookup::Found(bytes) => match serde_json::from_slice::<CodeGrant>(&bytes) {
            Ok(grant) => grant,
            Err(_) => return Ok(Err(CodeRefusal::Unknown)),
        },
        other => return Ok(Err(refusal(other))),
    };
    // The tags already said so; the stored grant is the authority all the same.
    Ok(grant.check(presented).map(|()| grant))
}

fn refusal(lookup: Lookup) -> CodeRefusal {
    match lookup {
        Lookup::Expired => CodeRefusal::Expired,
        Lookup::Consumed => CodeRefusal::AlreadyUsed,
        _ => CodeRefusal::Unknown,
    }
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

/// The stash token of `code`'s redemption record. It lives in the datacenter that minted
/// the code (named by the code's stash token), where the code's single take happens too:
/// a replay through any datacenter's login then meets the first redemption's record.
fn redemption_marker(state: &AppState, code: &str) -> String {
    let home = code
        .split_once('.')
        .map_or("", |(datacenter, _)| datacenter);
    state.backends.derive.token_at(home, "code-redeemed", code)
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
    let marker = redemption_marker(state, code);
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
    let marker = redemption_marker(state, code);
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
