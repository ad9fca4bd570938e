//! Responses more than one handler gives: redirects, the pages of a refused or expired
//! form, and the signed flow values the forms carry.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::pages;
use crate::directory::Site;
use crate::flow::{AuthorizeRequest, FlowError, FlowState, Stage};
use crate::state::AppState;

/// `429` with `Retry-After`, as a page.
pub fn too_many(state: &AppState, retry_after: Duration, who: &str) -> Response {
    let seconds = retry_after.as_secs().max(1);
    let mut response = pages::page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &pages::problem(
            "Too many sign-in attempts",
            &format!("There were too many sign-in attempts {who}. Wait {seconds} seconds, then try again."),
            None,
        ),
        state.dev(),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A `303 See Other` to `location`, setting `cookies`.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    pages::no_store(headers);
    response
}

/// A page for a backend failure: the person can only try again later.
pub fn unavailable(state: &AppState, err: &crate::LoginError) -> Response {
    use tessera_service::ServiceError as _;
    tracing::error!(error = %err, code = err.code(), "request failed");
    pages::page(
        err.http_status(),
        "Temporarily unavailable",
        &pages::problem(
            "Sign-in is temporarily unavailable",
            "Something on our side is not answering. Nothing was lost; wait a moment and try again.",
            None,
        ),
        state.dev(),
    )
}

pub(super) fn form_ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.config.form_ttl_seconds)
}

/// A flow value for `request` at `stage`, bound to the browser whose nonce hashes to
/// `browser`.
pub(super) fn seal(
    state: &AppState,
    request: AuthorizeRequest,
    stage: Stage,
    browser: String,
    ttl: Duration,
) -> String {
    state.flow.seal(&FlowState {
        request: Some(request),
        stage,
        browser,
        exp: state.clock.now().saturating_add(ttl).0,
    })
}

/// The sign-in form for `request`, bound to this browser (setting its pre-login cookie
/// if it holds none).
pub(super) fn fresh_form(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    site: &Site,
    request: AuthorizeRequest,
) -> Response {
    let (nonce, set_cookie) = super::csrf::browser_nonce(state, headers);
    let flow = seal(
        state,
        request,
        Stage::Password,
        super::csrf::binding(&nonce),
        form_ttl(state),
    );
    let mut response = form_page(state, site, &flow, "", None, StatusCode::OK);
    if let Some(value) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(super) fn open_flow(state: &AppState, value: &str) -> Result<FlowState, Box<Response>> {
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

pub(super) fn tampered(state: &AppState) -> Response {
    problem_page(
        state,
        StatusCode::BAD_REQUEST,
        "Form not accepted",
        "This sign-in form was changed or damaged, so it was not accepted. Go back to the site and choose Sign in again.",
    )
}

/// `/authorize` again for the same request (a fresh form).
pub(super) fn restart_url(request: &AuthorizeRequest) -> String {
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

pub(super) fn form_page(
    state: &AppState,
    site: &Site,
    flow: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    state.metrics.funnel.inc("form_shown");
    pages::page(
        status,
        "Sign in",
        &pages::login_form(&site.display_name, flow, username, error),
        state.dev(),
    )
}

pub(super) fn problem_page(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> Response {
    pages::page(
        status,
        heading,
        &pages::problem(heading, message, None),
        state.dev(),
    )
}

pub(super) fn redirect_with_code(request: &AuthorizeRequest, code: &str) -> String {
    with_params(
        &request.redirect_uri,
        &[("code", Some(code)), ("state", request.state.as_deref())],
    )
}

pub(super) fn redirect_error(
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
