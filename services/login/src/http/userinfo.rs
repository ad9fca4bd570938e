//! `/userinfo` (Bearer; revocation checked at the session service, not only the
//! signature) and `/revoke` (RFC 7009).

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::pages;
use super::session_cookie::unverified_claims;
use super::token::{authenticate_site, single_valued, OAuthError};
use crate::backends::{revoke_refresh_token, revoke_session};
use crate::state::Shared;

fn bearer_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    let challenge = format!(
        "Bearer realm=\"tessera\", error=\"{error}\", error_description=\"{}\"",
        description.replace('"', "'")
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    pages::no_store(response.headers_mut());
    response
}

/// `GET|POST /userinfo`.
pub async fn userinfo(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        state.metrics.requests.inc("anon");
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "send the access token as Authorization: Bearer <token>",
        );
    };
    // The audience is read from the token only to ask the session service the right
    // question; the service checks signature, audience, expiry and revocation.
    let audience = unverified_claims(token).map(|c| c.aud).unwrap_or_default();
    if audience == state.config.central_audience {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "this is not a site's access token",
        );
    }
    let verified = match state.backends.verify(token, &audience).await {
        Ok(verified) => verified,
        Err(refusal) if refusal.is_unavailable() => {
            return bearer_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "a Tessera service is not answering; retry shortly",
            )
        }
        Err(refusal) => {
            state.metrics.requests.inc("anon");
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                &format!("{}: {}", refusal.code, refusal.message),
            );
        }
    };
    state.metrics.requests.inc("authenticated");
    match state.directory.user_by_id(&verified.user_id).await {
        Ok(Some(user)) if !user.disabled => {
            let mut response = Json(json!({
                "sub": user.id,
                "preferred_username": user.name,
                "name": user.name,
            }))
            .into_response();
            pages::no_store(response.headers_mut());
            response
        }
        Ok(_) => bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the account was disabled or removed",
        ),
        Err(err) => {
            tracing::error!(error = %err, "userinfo failed");
            bearer_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the user directory is not answering; retry shortly",
            )
        }
    }
}

/// `POST /revoke` (RFC 7009): revokes the session an access or refresh token belongs
/// to, if it belongs to the calling site. Unknown tokens are not an error.
pub async fn revoke(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, OAuthError> {
    let form: HashMap<String, String> = single_valued(pairs)?;
    let site = authenticate_site(&state, &headers, &form).await?;
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return Err(OAuthError::invalid_request_public("token is missing"));
    };
    let looks_like_jwt = token.split('.').count() == 3;
    let result = if looks_like_jwt {
        match state.backends.verify(token, &site.client_id).await {
            Ok(verified) => {
                state
                    .backends
                    .revoke(revoke_session(&verified.session_id))
                    .await
            }
            Err(refusal) if refusal.is_unavailable() => Err(refusal),
            // Not a live token of this site: nothing to revoke.
            Err(_) => Ok(0),
        }
    } else {
        state
            .backends
            .revoke(revoke_refresh_token(token, &site.client_id))
            .await
    };
    match result {
        Ok(_) => {
            let mut response = StatusCode::OK.into_response();
            pages::no_store(response.headers_mut());
            Ok(response)
        }
        Err(refusal) => Err(OAuthError::unavailable_public(&refusal.into())),
    }
}
