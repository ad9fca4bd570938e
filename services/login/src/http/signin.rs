//! Signing in: the password form, the second factor, and what follows success (the
//! central session and a code for the site).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use tessera_proto::session::v1 as pb;

use super::respond::{
    form_page, open_flow, problem_page, redirect_with_code, restart_url, seal, see_other, tampered,
    too_many, unavailable,
};
use super::session_cookie;
use super::{csrf, pages};
use crate::client_ip::client_ip;
use crate::codes;
use crate::directory::UserName;
use crate::flow::{AuthorizeRequest, FlowState, Stage};
use crate::state::{AppState, Shared, Witnessed};
use crate::LoginError;

/// How long the second-factor step stays open after the password was accepted.
const TOTP_STEP_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The longest user name field accepted (names are 3-20 characters; the rest is slack
/// for typing mistakes, not for megabytes).
pub const MAX_USERNAME_BYTES: usize = 100;
/// The longest password accepted.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest second-factor code field accepted.
pub const MAX_CODE_BYTES: usize = 16;

/// A form that could not be read (too large, not a form): said plainly.
fn unreadable(state: &AppState, rejection: &FormRejection) -> Response {
    let status = rejection.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "The form sent was far larger than any sign-in form, so it was not read. Go back and enter your user name and password again."
    } else {
        "The form sent could not be read. Go back and enter your user name and password again."
    };
    problem_page(state, status, "Form not accepted", message)
}

/// A field over its documented size, refused before it reaches any limiter or hasher.
fn oversized(state: &AppState, what: &str, limit: usize) -> Response {
    problem_page(
        state,
        StatusCode::BAD_REQUEST,
        "Form not accepted",
        &format!("The {what} is longer than {limit} characters, which no account has. Go back and enter it again."),
    )
}

/// `POST /login`: name and password.
pub async fn password(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return unreadable(&state, &rejection),
    };
    state.metrics.funnel.inc("posted");
    if form.username.len() > MAX_USERNAME_BYTES {
        return oversized(&state, "user name", MAX_USERNAME_BYTES);
    }
    if form.password.len() > MAX_PASSWORD_BYTES {
        return oversized(&state, "password", MAX_PASSWORD_BYTES);
    }
    let now = state.clock.now();
    let flow = match begin_attempt(&state, peer, &headers, &form.flow) {
        Ok(flow) => flow,
        Err(response) => return *response,
    };
    let (Some(request), Stage::Password) = (flow.request.clone(), &flow.stage) else {
        return tampered(&state);
    };
    let site = match state.directory.site(&request.client_id).await {
        Ok(Some(site)) => site,
        Ok(None) => {
            return problem_page(
                &state,
                StatusCode::BAD_REQUEST,
                "Unknown site",
                "The site you were signing in to is no longer registered.",
            )
        }
        Err(err) => return unavailable(&state, &err),
    };
    let account_key = form.username.trim().to_lowercase();
    let ip = client_ip(&state, peer, &headers);
    let backoff_key = format!("{account_key}|{ip}");
    if let Err(wait) = state.account_backoff.check(&backoff_key, now) {
        state.metrics.rate_limited.inc("account");
        state.witness(Witnessed {
            kind: "rate_limited",
            failure: true,
            reason: "account",
            user_name: &account_key,
            site: &request.client_id,
            client_ip: &ip,
            headers: Some(&headers),
            ..Default::default()
        });
        return too_many(&state, wait, "for this account from your network");
    }
    let user = match UserName::try_from(form.username.as_str()) {
        Ok(name) => match state.directory.user_by_name(&name).await {
            Ok(user) => user,
            Err(err) => return unavailable(&state, &err),
        },
        Err(_) => None,
    };
    // One argon2id hash whether or not the user exists, and one message for every
    // failure, so neither timing nor text tells which names exist.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matched = state.passwords.verify(stored, form.password).await;
    let user = match user {
        Some(user) if matched && !user.disabled => user,
        _ => {
            state.account_backoff.failed(&backoff_key, now);
            state.metrics.logins.inc("bad_credentials");
            let user_id = user.as_ref().map(|u| u.id.clone()).unwrap_or_default();
            state.witness(Witnessed {
                kind: "login_failed",
                failure: true,
                reason: "bad_credentials",
                user_id: &user_id,
                user_name: &account_key,
                site: &request.client_id,
                client_ip: &ip,
                headers: Some(&headers),
            });
            return form_page(
                &state,
                &site,
                &form.flow,
                &form.username,
                Some("The user name or password is not right. Check both and try again."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    state.account_backoff.succeeded(&backoff_key);
    if user.totp_secret.is_some() {
        let flow = seal(
            &state,
            request,
            Stage::Totp { user_id: user.id },
            flow.browser,
            TOTP_STEP_TTL,
        );
        return pages::page(
            StatusCode::OK,
            "Enter your code",
            &pages::totp_form(&site.display_name, &flow, None),
            state.dev(),
        );
    }
    complete(&state, &request, &user.id, &user.name, &ip, &headers).await
}

#[derive(Debug, Deserialize)]
pub struct TotpForm {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    code: String,
}

/// `POST /login/totp`: the second factor.
pub async fn totp(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<TotpForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return unreadable(&state, &rejection),
    };
    if form.code.len() > MAX_CODE_BYTES {
        return oversized(&state, "code", MAX_CODE_BYTES);
    }
    let now = state.clock.now();
    let flow = match begin_attempt(&state, peer, &headers, &form.flow) {
        Ok(flow) => flow,
        Err(response) => return *response,
    };
    let (Some(request), Stage::Totp { user_id }) = (flow.request.clone(), &flow.stage) else {
        return tampered(&state);
    };
    let (site, user) = match (
        state.directory.site(&request.client_id).await,
        state.directory.user_by_id(user_id).await,
    ) {
        (Ok(Some(site)), Ok(Some(user))) if !user.disabled => (site, user),
        (Err(err), _) | (_, Err(err)) => return unavailable(&state, &err),
        _ => return tampered(&state),
    };
    let Some(secret) = &user.totp_secret else {
        return tampered(&state);
    };
    if user.totp_locked_until > now {
        state.metrics.rate_limited.inc("totp");
        return too_many(
            &state,
            user.totp_locked_until.saturating_since(now),
            "with a wrong code for this account",
        );
    }
    let ip = client_ip(&state, peer, &headers);
    let retry = |reason: &str, message: &str| {
        state.metrics.logins.inc("bad_totp");
        state.witness(Witnessed {
            kind: "login_failed",
            failure: true,
            reason,
            user_id: &user.id,
            user_name: &user.name,
            site: &request.client_id,
            client_ip: &ip,
            headers: Some(&headers),
        });
        pages::page(
            StatusCode::UNAUTHORIZED,
            "Enter your code",
            &pages::totp_form(&site.display_name, &form.flow, Some(message)),
            state.dev(),
        )
    };
    let Some(step) = crate::totp::matching_step(secret, &form.code, now.0 / 1000) else {
        let free = state.config.totp_failures_before_backoff;
        if let Err(err) = state.directory.totp_failed(&user.id, free, now).await {
            return unavailable(&state, &err);
        }
        return retry(
            "bad_totp",
            "That code is not right. Enter the 6-digit code your authenticator app shows now.",
        );
    };
    match state.directory.use_totp_step(&user.id, step).await {
        Ok(true) => {
            if let Err(err) = state.directory.totp_succeeded(&user.id).await {
                return unavailable(&state, &err);
            }
            complete(&state, &request, &user.id, &user.name, &ip, &headers).await
        }
        Ok(false) => retry(
            "totp_reused",
            "That code was already used. Wait for your app to show the next code, then enter it.",
        ),
        Err(err) => unavailable(&state, &err),
    }
}

/// The person is authenticated: start the central session, set its cookies, and send
/// the browser back to the site with a code.
async fn complete(
    state: &AppState,
    request: &AuthorizeRequest,
    user_id: &str,
    user_name: &str,
    ip: &str,
    headers: &HeaderMap,
) -> Response {
    let issued = state
        .backends
        .issue(pb::IssueRequest {
            user_id: user_id.to_owned(),
            user_name: user_name.to_owned(),
            audience: state.config.central_audience.clone(),
            parent_session_id: String::new(),
        })
        .await;
    let tokens = match issued {
        Ok(tokens) => tokens,
        Err(refusal) => return unavailable(state, &LoginError::from(refusal)),
    };
    state.metrics.logins.inc("succeeded");
    state.metrics.funnel.inc("succeeded");
    state.witness(Witnessed {
        kind: "login_succeeded",
        user_id,
        user_name,
        site: &request.client_id,
        client_ip: ip,
        headers: Some(headers),
        ..Default::default()
    });
    tracing::info!(user = %user_name, site = %request.client_id, "signed in");
    let auth_time = state.clock.now().0 / 1000;
    match codes::mint(
        state,
        request,
        user_id,
        user_name,
        &tokens.session_id,
        auth_time,
    )
    .await
    {
        Ok(code) => see_other(
            &redirect_with_code(request, &code),
            &session_cookie::store_new(state, &tokens, auth_time),
        ),
        Err(err) => unavailable(state, &err),
    }
}

/// What every form post does first: count it against the client IP's limit, then open
/// the signed flow state it carries.
fn begin_attempt(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    flow: &str,
) -> Result<FlowState, Box<Response>> {
    state.metrics.requests.inc("anon");
    let ip = client_ip(state, peer, headers);
    if let Some(reason) = csrf::cross_site(state, headers) {
        state.metrics.logins.inc("cross_site");
        state.witness(Witnessed {
            kind: "login_failed",
            failure: true,
            reason,
            client_ip: &ip,
            headers: Some(headers),
            ..Default::default()
        });
        return Err(Box::new(csrf::refused_cross_site(state)));
    }
    if let Err(wait) = state.ip_limiter.attempt(&ip, state.clock.now()) {
        state.metrics.rate_limited.inc("ip");
        state.witness(Witnessed {
            kind: "rate_limited",
            failure: true,
            reason: "ip",
            client_ip: &ip,
            headers: Some(headers),
            ..Default::default()
        });
        return Err(Box::new(too_many(state, wait, "from your network")));
    }
    let flow = open_flow(state, flow)?;
    if !csrf::same_browser(headers, &flow.browser) {
        state.metrics.logins.inc("other_browser");
        let restart = flow.request.as_ref().map(restart_url);
        return Err(Box::new(csrf::other_browser(state, restart.as_deref())));
    }
    Ok(flow)
}
