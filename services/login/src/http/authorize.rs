//! `/authorize` and the sign-in form: SSO when the central session is alive, otherwise
//! a form whose state is signed, not stored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use tessera_proto::session::v1 as pb;

use super::codes::{self, challenge_well_formed};
use super::session_cookie::{self, Central};
use super::{client_ip, pages, see_other, too_many, unavailable, AppState, Shared, Witnessed};
use crate::directory::{Site, UserName};
use crate::flow::{AuthorizeRequest, FlowError, FlowState, Stage};
use crate::LoginError;

/// How long the second-factor step stays open after the password was accepted.
const TOTP_STEP_TTL: Duration = Duration::from_secs(300);

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    // Until the site and its redirect URI are known to be genuine, errors are shown
    // here: redirecting them would make this an open redirector.
    let site = match state.directory.site(param("client_id")).await {
        Ok(Some(site)) => site,
        Ok(None) => {
            return problem_page(
                &state,
                StatusCode::BAD_REQUEST,
                "Unknown site",
                "The site that sent you here is not registered with Tessera (unknown client_id). Go back to the site and try again; if it keeps happening, tell the site's operators.",
            )
        }
        Err(err) => return unavailable(&state, &err),
    };
    let redirect_uri = param("redirect_uri");
    if !site.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return problem_page(
            &state,
            StatusCode::BAD_REQUEST,
            "Unregistered return address",
            &format!("{} asked to send you back to an address it has not registered (redirect_uri). Go back to the site and try again; if it keeps happening, tell the site's operators.", site.display_name),
        );
    }
    let back = |error: &str, description: &str| {
        redirect_error(redirect_uri, error, description, params.get("state"))
    };
    if param("response_type") != "code" {
        return back(
            "unsupported_response_type",
            "only response_type=code (the authorization code flow) is supported",
        );
    }
    if param("code_challenge_method") != "S256" {
        return back(
            "invalid_request",
            "PKCE is required with code_challenge_method=S256 (plain is refused)",
        );
    }
    let code_challenge = param("code_challenge");
    if !challenge_well_formed(code_challenge) {
        return back(
            "invalid_request",
            "code_challenge must be the 43-character base64url SHA-256 of the code_verifier",
        );
    }
    let too_long = ["state", "nonce", "scope"]
        .iter()
        .find(|name| param(name).len() > 512);
    if let Some(name) = too_long {
        return back(
            "invalid_request",
            &format!("{name} is longer than 512 characters"),
        );
    }
    let request = AuthorizeRequest {
        client_id: site.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        state: params.get("state").cloned(),
        nonce: params.get("nonce").cloned(),
        code_challenge: code_challenge.to_owned(),
        scope: param("scope").to_owned(),
    };
    let prompt = param("prompt");
    let central = if prompt == "login" {
        None
    } else {
        match session_cookie::current(&state, &headers).await {
            Ok(central) => central,
            Err(err) => return unavailable(&state, &err),
        }
    };
    match central {
        Some(central) => {
            state.metrics.requests.inc("authenticated");
            sso(&state, &request, central).await
        }
        None if prompt == "none" => {
            state.metrics.requests.inc("anon");
            back(
                "login_required",
                "there is no signed-in session; sign in interactively",
            )
        }
        None => {
            state.metrics.requests.inc("anon");
            let flow = seal(&state, request, Stage::Password, form_ttl(&state));
            form_page(&state, &site, &flow, "", None, StatusCode::OK)
        }
    }
}

/// Single sign-on: a live central session gets a code at once, no form.
async fn sso(state: &AppState, request: &AuthorizeRequest, central: Central) -> Response {
    let user = match state.directory.user_by_id(&central.user_id).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => {
            // The account was disabled or removed since: the session must not be used.
            let _ = state
                .backends
                .revoke(crate::backends::revoke_family(&central.sid))
                .await;
            let flow = seal(state, request.clone(), Stage::Password, form_ttl(state));
            return match state.directory.site(&request.client_id).await {
                Ok(Some(site)) => form_page(state, &site, &flow, "", None, StatusCode::OK),
                Ok(None) => problem_page(
                    state,
                    StatusCode::BAD_REQUEST,
                    "Unknown site",
                    "The site is no longer registered.",
                ),
                Err(err) => unavailable(state, &err),
            };
        }
        Err(err) => return unavailable(state, &err),
    };
    match codes::mint(
        state,
        request,
        &user.id,
        &user.name,
        &central.sid,
        central.iat,
    )
    .await
    {
        Ok(code) => see_other(&redirect_with_code(request, &code), &central.set_cookies),
        Err(err) => unavailable(state, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: name and password.
pub async fn password(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
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
    if let Err(wait) = state.account_limiter.attempt(&account_key, now) {
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
        return too_many(&state, wait, "for this account");
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
    if user.totp_secret.is_some() {
        let flow = seal(
            &state,
            request,
            Stage::Totp { user_id: user.id },
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
    Form(form): Form<TotpForm>,
) -> Response {
    let now = state.clock.now();
    let flow = match begin_attempt(&state, peer, &headers, &form.flow) {
        Ok(flow) => flow,
        Err(response) => return *response,
    };
    let (Some(request), Stage::Totp { user_id }) = (flow.request.clone(), &flow.stage) else {
        return tampered(&state);
    };
    if let Err(wait) = state
        .account_limiter
        .attempt(&format!("totp:{user_id}"), now)
    {
        state.metrics.rate_limited.inc("account");
        return too_many(&state, wait, "for this account");
    }
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
        return retry(
            "bad_totp",
            "That code is not right. Enter the 6-digit code your authenticator app shows now.",
        );
    };
    match state.directory.use_totp_step(&user.id, step).await {
        Ok(true) => complete(&state, &request, &user.id, &user.name, &ip, &headers).await,
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
            &session_cookie::store(state, &tokens),
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
    open_flow(state, flow)
}

fn form_ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.config.form_ttl_seconds)
}

fn seal(state: &AppState, request: AuthorizeRequest, stage: Stage, ttl: Duration) -> String {
    state.flow.seal(&FlowState {
        request: Some(request),
        stage,
        exp: state.clock.now().saturating_add(ttl).0,
    })
}

fn open_flow(state: &AppState, value: &str) -> Result<FlowState, Box<Response>> {
    match state.flow.open(value, state.clock.now()) {
        Ok(flow) => Ok(flow),
        Err(FlowError::Tampered) => Err(Box::new(tampered(state))),
        Err(FlowError::Expired(flow)) => {
            let again = flow.request.map(|r| restart_url(&r));
            Err(Box::new(pages::page(
                StatusCode::BAD_REQUEST,
                "Form expired",
                &pages::problem(
                    "This sign-in form expired",
                    "The form was open too long, so nothing was sent. Start again; it takes a moment.",
                    again.as_deref().map(|href| (href, "Start again")),
                ),
                state.dev(),
            )))
        }
    }
}

fn tampered(state: &AppState) -> Response {
    problem_page(
        state,
        StatusCode::BAD_REQUEST,
        "Form not accepted",
        "This sign-in form was changed or damaged, so it was not accepted. Go back to the site and choose Sign in again.",
    )
}

/// `/authorize` again for the same request (a fresh form).
fn restart_url(request: &AuthorizeRequest) -> String {
    let mut url = url::Url::parse("http://restart/authorize")
        .unwrap_or_else(|_| unreachable!("a valid literal"));
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &request.client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("code_challenge", &request.code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("scope", &request.scope);
        if let Some(state) = &request.state {
            query.append_pair("state", state);
        }
        if let Some(nonce) = &request.nonce {
            query.append_pair("nonce", nonce);
        }
    }
    format!("/authorize?{}", url.query().unwrap_or_default())
}

fn form_page(
    state: &AppState,
    site: &Site,
    flow: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    pages::page(
        status,
        "Sign in",
        &pages::login_form(&site.display_name, flow, username, error),
        state.dev(),
    )
}

fn problem_page(state: &AppState, status: StatusCode, heading: &str, message: &str) -> Response {
    pages::page(
        status,
        heading,
        &pages::problem(heading, message, None),
        state.dev(),
    )
}

fn redirect_with_code(request: &AuthorizeRequest, code: &str) -> String {
    with_params(
        &request.redirect_uri,
        &[("code", Some(code)), ("state", request.state.as_deref())],
    )
}

fn redirect_error(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&String>,
) -> Response {
    let location = with_params(
        redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", state.map(String::as_str)),
        ],
    );
    see_other(&location, &[])
}

/// `uri` with `params` appended to its query.
pub fn with_params(uri: &str, params: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in params {
                    if let Some(value) = value {
                        query.append_pair(name, value);
                    }
                }
            }
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}
