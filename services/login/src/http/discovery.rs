//! Discovery (`/.well-known/openid-configuration`), the keys (`/jwks.json` for ID and
//! logout tokens, `/session-keys.json` for session tokens), and the login domain's own
//! home page.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::respond::unavailable;
use super::{pages, session_cookie};
use crate::state::Shared;

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<Shared>) -> Response {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "preferred_username", "name"],
        "prompt_values_supported": ["none", "login"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    }))
    .into_response()
}

/// `GET /jwks.json`: the keys of ID tokens and logout tokens (OpenID's `jwks_uri`).
pub async fn jwks(State(state): State<Shared>) -> Response {
    Json(state.key.jwks()).into_response()
}

/// `GET /session-keys.json`: the session service's keys, which sites verify session
/// tokens with.
pub async fn session_keys(State(state): State<Shared>) -> Response {
    match state.session_keys().await {
        Ok(jwks) => Json(jwks).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot publish the keys");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the keys are temporarily unavailable; retry shortly\n",
            )
                .into_response()
        }
    }
}

/// `GET /`: who is signed in here, with a way to sign out.
pub async fn home(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let central = match session_cookie::current(&state, &headers).await {
        Ok(central) => central,
        Err(err) => return unavailable(&state, &err),
    };
    let user = match &central {
        Some(central) => state
            .directory
            .user_by_id(&central.user_id)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let body = match user {
        Some(user) => format!(
            "<h1>Tessera sign-in</h1><p>You are signed in as <strong>{}</strong>.</p>\
<p><a class=\"button\" href=\"/logout\">Sign out everywhere</a></p>",
            pages::escape(&user.name)
        ),
        None => "<h1>Tessera sign-in</h1><p>You are not signed in. Sites that use Tessera send you here when you choose Sign in.</p>".to_owned(),
    };
    let mut response = pages::page(StatusCode::OK, "Tessera sign-in", &body, state.dev());
    if let Some(central) = central {
        for cookie in central.set_cookies {
            if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
                response
                    .headers_mut()
                    .append(axum::http::header::SET_COOKIE, value);
            }
        }
    }
    response
}
