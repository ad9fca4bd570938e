//! The central session: a `__Host-` cookie holding its session JWT and another holding
//! its refresh token, checked against the session service (so a logout anywhere is
//! honoured at once, not at the next key fetch).

use axum::http::HeaderMap;
use serde::Deserialize;
use tessera_proto::session::v1 as pb;
use tessera_verify::cookie;

use crate::state::AppState;
use crate::LoginError;

/// Cookie scope of the central session JWT.
pub const CENTRAL: &str = "central";
/// Cookie scope of the central refresh token.
pub const CENTRAL_REFRESH: &str = "central-refresh";
/// Cookie scope of the central session's authentication time: `<unix seconds>.<tag>`,
/// the tag keyed over the session id and the time, so it cannot be moved to another
/// session or changed. A refresh re-mints the session token, never this.
pub const CENTRAL_AUTH: &str = "central-auth";

/// A live central session.
#[derive(Debug, Clone)]
pub struct Central {
    /// Its session id (the root of its family).
    pub sid: String,
    /// The user.
    pub user_id: String,
    /// When the person last proved who they are (password, second factor), seconds;
    /// `None` when this browser cannot show it (then they must sign in again).
    pub auth_time: Option<u64>,
    /// Cookies to set (after a refresh).
    pub set_cookies: Vec<String>,
}

/// The claims of a session JWT read without verification: only for tokens the session
/// service has just verified or issued.
#[derive(Debug, Deserialize)]
pub struct UnverifiedClaims {
    /// Subject.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Audience.
    pub aud: String,
}

/// Reads the claims of a JWT without checking them.
pub fn unverified_claims(token: &str) -> Option<UnverifiedClaims> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// The cookies that store a refreshed central session.
pub fn store(state: &AppState, tokens: &pb::SessionTokens) -> Vec<String> {
    let max_age = lifetime(state, tokens);
    vec![
        cookie::set_cookie(CENTRAL, &tokens.access_token, max_age),
        cookie::set_cookie(CENTRAL_REFRESH, &tokens.refresh_token, max_age),
    ]
}

/// The cookies that store a central session started now, by a person who authenticated
/// at `auth_time` (seconds).
pub fn store_new(state: &AppState, tokens: &pb::SessionTokens, auth_time: u64) -> Vec<String> {
    let mut cookies = store(state, tokens);
    let value = format!(
        "{auth_time}.{}",
        auth_tag(state, &tokens.session_id, auth_time)
    );
    cookies.push(cookie::set_cookie(
        CENTRAL_AUTH,
        &value,
        lifetime(state, tokens),
    ));
    cookies
}

fn lifetime(state: &AppState, tokens: &pb::SessionTokens) -> u64 {
    let now = state.clock.now().as_i64();
    u64::try_from((tokens.session_expires_at_unix_ms - now) / 1000).unwrap_or(0)
}

fn auth_tag(state: &AppState, sid: &str, auth_time: u64) -> String {
    state
        .flow
        .tag("central-auth", &[sid, &auth_time.to_string()], 22)
}

/// The authentication time of central session `sid`, if the request shows a genuine one.
fn auth_time(state: &AppState, headers: &HeaderMap, sid: &str) -> Option<u64> {
    use subtle::ConstantTimeEq as _;
    let value = cookie::session_token(cookies(headers), CENTRAL_AUTH)?;
    let (time, tag) = value.split_once('.')?;
    let time: u64 = time.parse().ok()?;
    bool::from(auth_tag(state, sid, time).as_bytes().ct_eq(tag.as_bytes())).then_some(time)
}

/// The cookies that delete the central session (same attributes as when set).
pub fn clear() -> Vec<String> {
    vec![
        cookie::delete_cookie(CENTRAL),
        cookie::delete_cookie(CENTRAL_REFRESH),
        cookie::delete_cookie(CENTRAL_AUTH),
    ]
}

/// The live central session the request carries, refreshing it when its token is past
/// its soft expiry. `None` when there is none (absent, logged out, ended, forged).
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<Central>, LoginError> {
    let Some(token) = cookie::session_token(cookies(headers), CENTRAL) else {
        return Ok(None);
    };
    let audience = &state.config.central_audience;
    match state.backends.verify(token, audience).await {
        Ok(verified) => {
            return Ok(Some(Central {
                auth_time: auth_time(state, headers, &verified.session_id),
                sid: verified.session_id,
                user_id: verified.user_id,
                set_cookies: Vec::new(),
            }))
        }
        Err(refusal) if refusal.is_unavailable() => return Err(refusal.into()),
        Err(refusal) if refusal.code == "soft_expired" => {}
        Err(_) => return Ok(None),
    }
    let Some(refresh_token) = cookie::session_token(cookies(headers), CENTRAL_REFRESH) else {
        return Ok(None);
    };
    match state.backends.refresh(refresh_token, audience).await {
        Ok(tokens) => {
            let Some(claims) = unverified_claims(&tokens.access_token) else {
                return Ok(None);
            };
            Ok(Some(Central {
                auth_time: auth_time(state, headers, &tokens.session_id),
                sid: tokens.session_id.clone(),
                user_id: claims.sub,
                set_cookies: store(state, &tokens),
            }))
        }
        Err(refusal) if refusal.is_unavailable() => Err(refusal.into()),
        Err(_) => Ok(None),
    }
}

/// The central session id named by the request's cookie, if its signature is genuine,
/// even when it is past its expiry (a sign-out of an old session is still a sign-out).
pub async fn named_sid(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, LoginError> {
    let Some(token) = cookie::session_token(cookies(headers), CENTRAL) else {
        return Ok(None);
    };
    match state
        .backends
        .verify(token, &state.config.central_audience)
        .await
    {
        Ok(verified) => Ok(Some(verified.session_id)),
        Err(refusal) if refusal.is_unavailable() => Err(refusal.into()),
        // Refused after the signature check: the claims are the service's own.
        Err(refusal)
            if matches!(
                refusal.code.as_str(),
                "soft_expired" | "expired" | "revoked"
            ) =>
        {
            Ok(unverified_claims(token).map(|c| c.sid))
        }
        Err(_) => Ok(None),
    }
}
