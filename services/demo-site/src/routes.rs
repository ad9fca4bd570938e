//! The wiki's routes: the page, sign-in, the OAuth callback, sign-out and the
//! back-channel logout endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use tessera_verify::{
    cookie, verify_signed_json, RevocationEvent, VerifyError, ID_TOKEN_TYP, LOGOUT_TYP,
};

use crate::flow::PendingSignIn;
use crate::pages;
use crate::Site;

type Shared = Arc<Site>;

pub(crate) fn router(site: Shared) -> Router {
    // The browser's return from the login service carries no trace context; the flow
    // cookie set when the sign-in began does.
    let flow_cookie = scopes(&site).flow;
    let continues_sign_in: tessera_telemetry::red::ParentHint = Arc::new(move |headers| {
        cookie_of(headers, &flow_cookie)
            .and_then(PendingSignIn::decode)
            .and_then(|pending| pending.traceparent)
    });
    let observed = site
        .metrics
        .http
        .clone()
        .with_parent_hint(continues_sign_in);
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin))
        .route("/callback", get(callback))
        .route("/signout", post(signout))
        .route("/backchannel-logout", post(backchannel_logout))
        .layer(axum::middleware::from_fn_with_state(
            observed,
            tessera_telemetry::red::observe_http,
        ))
        .with_state(site)
}

struct Scopes {
    access: String,
    refresh: String,
    id_token: String,
    flow: String,
}

fn scopes(site: &Site) -> Scopes {
    let name = &site.config.client_id;
    Scopes {
        access: name.clone(),
        refresh: format!("{name}-refresh"),
        id_token: format!("{name}-idt"),
        flow: format!("{name}-flow"),
    }
}

fn cookie_of<'h>(headers: &'h HeaderMap, scope: &str) -> Option<&'h str> {
    cookie::session_token(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        scope,
    )
}

fn clear_all(site: &Site) -> Vec<String> {
    let s = scopes(site);
    vec![
        cookie::delete_cookie(&s.access),
        cookie::delete_cookie(&s.refresh),
        cookie::delete_cookie(&s.id_token),
    ]
}

fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The name to greet: the ID token's `preferred_username` (its signature was checked
/// when it was stored), else the session's user id.
fn display_name(headers: &HeaderMap, site: &Site, fallback: &str) -> String {
    use base64::Engine as _;
    cookie_of(headers, &scopes(site).id_token)
        .and_then(|token| token.split('.').nth(1))
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|claims| {
            claims
                .get("preferred_username")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| fallback.to_owned())
}

async fn home(State(site): State<Shared>, headers: HeaderMap) -> Response {
    let name = site.config.client_id.clone();
    let Some(token) = cookie_of(&headers, &scopes(&site).access) else {
        return pages::page(&name, StatusCode::OK, &pages::signed_out(None), &[]);
    };
    match site.verifier.verify(token).await {
        Ok(session) => {
            let user = display_name(&headers, &site, &session.claims.sub);
            pages::page(&name, StatusCode::OK, &pages::signed_in(&user), &[])
        }
        Err(rejection) if matches!(rejection.error, VerifyError::SoftExpired) => {
            match refresh(&site, &headers).await {
                Some((user, cookies)) => {
                    let user = display_name(&headers, &site, &user);
                    pages::page(&name, StatusCode::OK, &pages::signed_in(&user), &cookies)
                }
                None => pages::page(
                    &name,
                    StatusCode::OK,
                    &pages::signed_out(Some("Your session ended. Sign in again to continue.")),
                    &clear_all(&site),
                ),
            }
        }
        Err(rejection) => {
            site.metrics.jwt_rejections.inc(rejection.code());
            tracing::info!(code = rejection.code(), user = ?rejection.user_id(), "session token refused");
            let notice = if matches!(rejection.error, VerifyError::Revoked(_)) {
                "You were signed out."
            } else {
                "Your session is no longer valid. Sign in again to continue."
            };
            pages::page(
                &name,
                StatusCode::OK,
                &pages::signed_out(Some(notice)),
                &clear_all(&site),
            )
        }
    }
}

/// Refreshes through `/token`; the user id and the cookies to set.
async fn refresh(site: &Site, headers: &HeaderMap) -> Option<(String, Vec<String>)> {
    let refresh_token = cookie_of(headers, &scopes(site).refresh)?;
    let reply = token_request(
        site,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
    .ok()?;
    let session = site.verifier.verify(&reply.access_token).await.ok()?;
    Some((
        session.claims.sub.clone(),
        session_cookies(site, &reply, None),
    ))
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    access_token: String,
    refresh_token: String,
    #[serde(default)]
    id_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

async fn token_request(site: &Site, form: &[(&str, &str)]) -> Result<TokenReply, TokenError> {
    let url = format!("{}/token", site.config.login_api_url.trim_end_matches('/'));
    let sent = site
        .http
        .post(url)
        .basic_auth(&site.config.client_id, Some(&site.config.client_secret))
        .headers(tessera_telemetry::trace_context::current_http_headers())
        .form(form)
        .send()
        .await;
    let unreachable = |e: String| TokenError {
        error: "unreachable".into(),
        error_description: format!(
            "the sign-in service could not be reached ({e}); try again in a moment"
        ),
    };
    let response = sent.map_err(|e| unreachable(e.to_string()))?;
    if response.status().is_success() {
        response
            .json()
            .await
            .map_err(|e| unreachable(e.to_string()))
    } else {
        Err(response
            .json()
            .await
            .map_err(|e| unreachable(e.to_string()))?)
    }
}

fn session_cookies(site: &Site, reply: &TokenReply, id_token: Option<&str>) -> Vec<String> {
    let s = scopes(site);
    // The site session lives at most 12 hours; the cookies need not outlive it.
    let max_age = 12 * 60 * 60;
    let mut cookies = vec![
        cookie::set_cookie(&s.access, &reply.access_token, max_age),
        cookie::set_cookie(&s.refresh, &reply.refresh_token, max_age),
    ];
    if let Some(id_token) = id_token {
        cookies.push(cookie::set_cookie(&s.id_token, id_token, max_age));
    }
    cookies
}

async fn signin(
    State(site): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let retry = params.get("retry").is_some_and(|r| r == "1");
    let pending = PendingSignIn::new(retry);
    let mut url = match url::Url::parse(&format!("{}/authorize", site.config.issuer())) {
        Ok(url) => url,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("login_url: {e}")).into_response()
        }
    };
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &site.config.client_id)
            .append_pair(
                "redirect_uri",
                &format!("{}/callback", site.config.origin()),
            )
            .append_pair("scope", "openid profile")
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.challenge())
            .append_pair("code_challenge_method", "S256");
        if retry {
            query.append_pair("prompt", "none");
        }
        // The login service continues this sign-in's trace from here.
        if let Some(traceparent) = &pending.traceparent {
            query.append_pair("traceparent", traceparent);
        }
    }
    let flow_cookie = cookie::set_cookie(&scopes(&site).flow, &pending.encode(), 600);
    see_other(url.as_str(), &[flow_cookie])
}

async fn callback(
    State(site): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let name = site.config.client_id.clone();
    let s = scopes(&site);
    let failed = |message: &str| {
        pages::page(
            &name,
            StatusCode::OK,
            &pages::sign_in_failed(message),
            &[cookie::delete_cookie(&s.flow)],
        )
    };
    let Some(pending) = cookie_of(&headers, &s.flow).and_then(PendingSignIn::decode) else {
        return failed("This sign-in was not started in this browser, or it took too long. Choose Sign in again.");
    };
    let state_ok = params
        .get("state")
        .is_some_and(|state| bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())));
    if !state_ok || pending.state.is_empty() {
        return failed("This sign-in answer does not belong to the sign-in this browser started. Choose Sign in again.");
    }
    if let Some(error) = params.get("error") {
        return if error == "login_required" {
            failed("Your sign-in link expired and you are no longer signed in at Tessera, so it could not be finished for you. Choose Sign in again.")
        } else {
            failed(&format!(
                "The sign-in service answered: {}. Choose Sign in again.",
                params.get("error_description").unwrap_or(error)
            ))
        };
    }
    let Some(code) = params.get("code") else {
        return failed("The sign-in answer carried no code. Choose Sign in again.");
    };
    let redirect_uri = format!("{}/callback", site.config.origin());
    let reply = token_request(
        &site,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &pending.verifier),
        ],
    )
    .await;
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            let code_lost = error.error == "invalid_grant"
                && (error.error_description.starts_with("code expired")
                    || error.error_description.starts_with("code unknown"));
            if code_lost && !pending.retried {
                // Rule F1: a lost code is retried once, silently; with a live central
                // session it succeeds without the person noticing.
                tracing::info!(reason = %error.error_description, "code redemption failed; retrying the sign-in once");
                return see_other("/signin?retry=1", &[]);
            }
            return failed(&format!(
                "The sign-in could not be finished: {}.",
                error.error_description
            ));
        }
    };
    let Some(id_token) = reply.id_token.clone() else {
        return failed("The sign-in service sent no ID token. Choose Sign in again.");
    };
    if let Err(problem) = check_id_token(&site, &id_token, &pending).await {
        return failed(&format!(
            "The sign-in answer could not be trusted ({problem}). Choose Sign in again."
        ));
    }
    let mut cookies = session_cookies(&site, &reply, Some(&id_token));
    cookies.push(cookie::delete_cookie(&s.flow));
    see_other("/", &cookies)
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    aud: String,
    exp: u64,
    #[serde(default)]
    nonce: Option<String>,
}

async fn check_id_token(
    site: &Site,
    id_token: &str,
    pending: &PendingSignIn,
) -> Result<(), String> {
    let jwks = site.jwks_for(id_token).await;
    let claims: IdClaims =
        verify_signed_json(id_token, ID_TOKEN_TYP, &jwks).map_err(|e| e.code().to_owned())?;
    let now = site.clock.now().0 / 1000;
    if claims.iss != site.config.issuer() {
        return Err("wrong issuer".into());
    }
    if claims.aud != site.config.client_id {
        return Err("wrong audience".into());
    }
    if claims.exp <= now {
        return Err("expired".into());
    }
    if claims.nonce.as_deref() != Some(pending.nonce.as_str()) {
        return Err("nonce mismatch".into());
    }
    Ok(())
}

/// Signs out here and at Tessera. The request to Tessera is POSTed: it carries the ID
/// token as the hint, which must never travel in a URL that ends up in logs.
async fn signout(State(site): State<Shared>, headers: HeaderMap) -> Response {
    let action = format!("{}/logout", site.config.issuer());
    let back = format!("{}/", site.config.origin());
    let mut fields = vec![
        ("client_id", site.config.client_id.as_str()),
        ("post_logout_redirect_uri", back.as_str()),
    ];
    if let Some(id_token) = cookie_of(&headers, &scopes(&site).id_token) {
        fields.push(("id_token_hint", id_token));
    }
    pages::auto_post(&site.config.client_id, &action, &fields, &clear_all(&site))
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    #[serde(default)]
    logout_token: String,
}

#[derive(Debug, Deserialize)]
struct LogoutClaims {
    iss: String,
    aud: String,
    iat: u64,
    sid: String,
    events: serde_json::Value,
    #[serde(default)]
    nonce: Option<String>,
}

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

async fn backchannel_logout(State(site): State<Shared>, Form(form): Form<LogoutForm>) -> Response {
    let refuse = |why: &str| {
        tracing::warn!(why, "back-channel logout refused");
        (
            StatusCode::BAD_REQUEST,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({"error": "invalid_request", "error_description": why})),
        )
            .into_response()
    };
    let jwks = site.jwks_for(&form.logout_token).await;
    let claims: LogoutClaims = match verify_signed_json(&form.logout_token, LOGOUT_TYP, &jwks) {
        Ok(claims) => claims,
        Err(e) => return refuse(&format!("logout_token did not verify: {}", e.code())),
    };
    let now = site.clock.now();
    if claims.iss != site.config.issuer() || claims.aud != site.config.client_id {
        return refuse("logout_token is for another issuer or site");
    }
    if claims.events.get(BACKCHANNEL_EVENT).is_none() || claims.nonce.is_some() {
        return refuse("logout_token is not a back-channel logout event");
    }
    if now.0 / 1000 > claims.iat + 300 || claims.iat > now.0 / 1000 + 60 {
        return refuse("logout_token is too old or from the future");
    }
    // Tokens of the session cannot outlive a day of refresh window; remember that long.
    site.verifier.verifier().apply(RevocationEvent::Sessions {
        sids: vec![claims.sid.clone()],
        until: now.saturating_add(Duration::from_secs(24 * 60 * 60)),
    });
    tracing::info!(session = %claims.sid, "signed out by the back channel");
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}
