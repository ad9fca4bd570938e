//! `/token`: the `authorization_code` and `refresh_token` grants, with site
//! authentication by `client_secret_basic` or `client_secret_post`, and RFC 6749 errors
//! whose `error_description` says exactly what went wrong.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;
use tessera_proto::session::v1 as pb;

use super::pages;
use crate::codes::{self, CodeRefusal, Presented};
use crate::directory::Site;
use crate::signing::IdTokenClaims;
use crate::state::{AppState, Shared};
use crate::LoginError;

/// An RFC 6749 section 5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn unavailable(err: &LoginError) -> Self {
        tracing::error!(error = %err, "token request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "a Tessera service is not answering; retry shortly",
        )
    }
}

/// A redemption that got no answer: a code minted in another datacenter is decided only
/// there, so when that is where the answer failed, the error names it.
fn unavailable_for_code(state: &AppState, code: &str, err: &LoginError) -> OAuthError {
    let home = code
        .split_once('.')
        .map_or("", |(datacenter, _)| datacenter);
    let mut error = OAuthError::unavailable(err);
    let foreign = !home.is_empty() && home != state.config.stash.datacenter;
    if foreign && err.to_string().contains(home) {
        error.description = format!(
            "the datacenter that issued this code ({home}) cannot be reached; start the sign-in again shortly"
        );
    }
    error
}

impl OAuthError {
    /// `invalid_request`, for the other OAuth endpoints.
    pub fn invalid_request_public(description: impl Into<String>) -> Self {
        Self::invalid_request(description)
    }

    /// `temporarily_unavailable`, for the other OAuth endpoints.
    pub fn unavailable_public(err: &LoginError) -> Self {
        Self::unavailable(err)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        pages::no_store(response.headers_mut());
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\""),
            );
        }
        response
    }
}

/// Authenticates the calling site (RFC 6749 section 2.3.1).
pub async fn authenticate_site(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Site, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let (client_id, secret, via_basic) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one site authentication method, not both client_secret_basic and client_secret_post",
            ))
        }
        (Some(encoded), None) => {
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| OAuthError::invalid_request("the Basic authorization header is not base64 of id:secret"))?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                OAuthError::invalid_request("the Basic authorization header is not id:secret")
            })?;
            (form_decode(id), form_decode(secret), true)
        }
        (None, Some(secret)) => (
            form.get("client_id").cloned().unwrap_or_default(),
            secret.clone(),
            false,
        ),
        (None, None) => {
            let mut error = OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "site authentication is required: send client_id and client_secret (HTTP Basic or form fields)",
            );
            error.basic_challenge = true;
            return Err(error);
        }
    };
    if let Some(form_id) = form.get("client_id") {
        if *form_id != client_id {
            return Err(OAuthError::invalid_request(
                "client_id in the form differs from the authenticated site",
            ));
        }
    }
    let site = state
        .directory
        .site(&client_id)
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    match site {
        Some(site) if site.secret_matches(&secret) => Ok(site),
        _ => {
            let mut error = OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "site authentication failed: unknown client_id or wrong client_secret",
            );
            error.basic_challenge = via_basic;
            Err(error)
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The form as a map, refusing repeated parameters (RFC 6749 section 3.2).
pub fn single_valued(pairs: Vec<(String, String)>) -> Result<HashMap<String, String>, OAuthError> {
    let mut map = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if map.insert(name.clone(), value).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
    }
    Ok(map)
}

/// `POST /token`.
pub async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, OAuthError> {
    let form = single_valued(pairs)?;
    let site = authenticate_site(&state, &headers, &form).await?;
    let body = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&state, &site, &form).await?,
        Some("refresh_token") => refresh(&state, &site, &form).await?,
        Some(other) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "grant_type {:?} is not supported; use authorization_code or refresh_token",
                    other.chars().take(64).collect::<String>()
                ),
            ))
        }
        None => return Err(OAuthError::invalid_request("grant_type is missing")),
    };
    let mut response = Json(body).into_response();
    pages::no_store(response.headers_mut());
    Ok(response)
}

fn required<'f>(form: &'f HashMap<String, String>, name: &str) -> Result<&'f str, OAuthError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
}

async fn authorization_code(
    state: &AppState,
    site: &Site,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let code = required(form, "code")?;
    let redirect_uri = required(form, "redirect_uri")?;
    let verifier = required(form, "code_verifier")?;
    let refuse = |reason: &'static str, description: &str| {
        state.metrics.code_failures.inc(reason);
        state.witness(crate::state::Witnessed {
            kind: "code_rejected",
            failure: true,
            reason,
            site: &site.client_id,
            ..Default::default()
        });
        tracing::info!(site = %site.client_id, reason, "code redemption refused");
        OAuthError::invalid_grant(description)
    };
    let presented = Presented {
        client_id: &site.client_id,
        redirect_uri,
        verifier,
    };
    let redeemed = codes::redeem(state, code, presented)
        .await
        .map_err(|e| unavailable_for_code(state, code, &e))?;
    let grant = match redeemed {
        Ok(grant) => grant,
        Err(CodeRefusal::Expired) => {
            return Err(refuse("expired", "code expired: authorization codes are valid for 60 seconds; start the sign-in again"))
        }
        Err(CodeRefusal::AlreadyUsed) => {
            codes::revoke_replayed(state, code)
                .await
                .map_err(|e| OAuthError::unavailable(&e))?;
            return Err(refuse("consumed", "code already used: each authorization code can be redeemed once; the session it issued was revoked; start the sign-in again"))
        }
        Err(CodeRefusal::Unknown) => {
            return Err(refuse("unknown", "code unknown: this authorization code was never issued or is long gone; start the sign-in again"))
        }
        Err(CodeRefusal::WrongSite) => {
            return Err(refuse("wrong_site", "code was issued to another site; nothing was consumed"))
        }
        Err(CodeRefusal::RedirectMismatch) => {
            return Err(refuse(
                "redirect_mismatch",
                "redirect mismatch: redirect_uri differs from the one the code was issued for",
            ))
        }
        Err(CodeRefusal::PkceMismatch) => {
            return Err(refuse(
                "pkce_mismatch",
                "PKCE mismatch: code_verifier does not hash (S256) to the code_challenge",
            ))
        }
    };
    let tokens = state
        .backends
        .issue(pb::IssueRequest {
            user_id: grant.user_id.clone(),
            user_name: grant.user_name.clone(),
            audience: site.client_id.clone(),
            parent_session_id: grant.central_sid.clone(),
        })
        .await
        .map_err(|refusal| {
            if refusal.is_unavailable() {
                OAuthError::unavailable(&refusal.into())
            } else {
                refuse("session_ended", "the sign-in session ended (signed out) before the code was redeemed; start the sign-in again")
            }
        })?;
    let now = state.clock.now();
    state.metrics.funnel.inc("redeemed");
    state
        .metrics
        .code_redeem_seconds
        .observe(now.saturating_since(tessera_clock::UnixMillis(grant.minted_at)));
    let session_ttl = Duration::from_millis(
        u64::try_from(tokens.session_expires_at_unix_ms - now.as_i64()).unwrap_or(1000),
    );
    codes::record_redemption(state, code, &grant, &tokens.session_id, session_ttl)
        .await
        .map_err(|e| OAuthError::unavailable(&e))?;
    state.witness(crate::state::Witnessed {
        kind: "code_redeemed",
        user_id: &grant.user_id,
        user_name: &grant.user_name,
        site: &site.client_id,
        ..Default::default()
    });
    let mut body = token_body(state, &tokens, &grant.scope);
    if grant.scope.split(' ').any(|s| s == "openid") {
        let now_s = now.0 / 1000;
        let id_token = state.key.sign_id_token(
            site.id_token_alg,
            &IdTokenClaims {
                iss: state.issuer.clone(),
                sub: grant.user_id.clone(),
                aud: site.client_id.clone(),
                exp: now_s + state.config.id_token_seconds,
                iat: now_s,
                auth_time: grant.auth_time,
                nonce: grant.nonce.clone(),
                sid: tokens.session_id.clone(),
                preferred_username: grant.user_name.clone(),
                tessera_family: grant.central_sid.clone(),
            },
        );
        body["id_token"] = json!(id_token);
    }
    Ok(body)
}

async fn refresh(
    state: &AppState,
    site: &Site,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let refresh_token = required(form, "refresh_token")?;
    match state.backends.refresh(refresh_token, &site.client_id).await {
        Ok(tokens) => {
            refuse_ended_user(state, &tokens).await?;
            Ok(token_body(
                state,
                &tokens,
                form.get("scope").map(String::as_str).unwrap_or_default(),
            ))
        }
        Err(refusal) if refusal.is_unavailable() => Err(OAuthError::unavailable(&refusal.into())),
        Err(refusal) => Err(OAuthError::invalid_grant(format!(
            "refresh refused ({}): {}",
            refusal.code, refusal.message
        ))),
    }
}

/// A refresh of a user who was disabled or removed since: the session is ended, not
/// extended, even if the user's revocation never reached the session service.
async fn refuse_ended_user(state: &AppState, tokens: &pb::SessionTokens) -> Result<(), OAuthError> {
    let Some(claims) = crate::http::session_cookie::unverified_claims(&tokens.access_token) else {
        return Ok(());
    };
    match state.directory.user_by_id(&claims.sub).await {
        Ok(Some(user)) if !user.disabled => Ok(()),
        Ok(_) => {
            let _ = state
                .backends
                .revoke(crate::backends::revoke_session(&tokens.session_id))
                .await;
            Err(OAuthError::invalid_grant(
                "refresh refused (account_disabled): the account is disabled; the session was ended",
            ))
        }
        Err(err) => Err(OAuthError::unavailable(&err)),
    }
}

fn token_body(state: &AppState, tokens: &pb::SessionTokens, scope: &str) -> serde_json::Value {
    let expires_in = (tokens.access_expires_at_unix_ms - state.clock.now().as_i64()).max(0) / 1000;
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": tokens.refresh_token,
    });
    if !scope.is_empty() {
        body["scope"] = json!(scope);
    }
    body
}
