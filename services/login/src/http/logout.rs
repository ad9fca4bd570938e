//! `/logout` (rule F2, OpenID Connect RP-Initiated Logout 1.0): revokes the central
//! session and every site session of its family, tells each site over the back channel,
//! deletes the central cookies with the attributes they were set with, and returns to the
//! site if it asked (with a registered `post_logout_redirect_uri`).
//!
//! A sign-out happens at once only when a site's `id_token_hint` names the session this
//! browser holds; otherwise the person is asked first, so neither a link elsewhere nor
//! someone else's ID token can sign them out, and a page never claims a sign-out that did
//! not happen. Sites should POST their request (an ID token in a URL ends up in logs);
//! a cross-site POST carries no `SameSite` cookies, so it continues as a GET that does.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;

use super::respond::{see_other, unavailable, with_params};
use super::{csrf, pages, session_cookie};
use crate::backends::revoke_family;
use crate::flow::{FlowState, Stage};
use crate::signing::IdTokenClaims;
use crate::state::{AppState, Shared};
use crate::LoginError;

/// How long the confirmation form, and a POSTed request on its way to GET, stay valid.
const CONFIRM_TTL: Duration = Duration::from_secs(600);

/// A site's sign-out request, checked.
struct LogoutAsk {
    /// The central session the `id_token_hint` named.
    family: Option<String>,
    /// A registered `post_logout_redirect_uri`.
    then: Option<String>,
    /// The site's `state`.
    site_state: Option<String>,
}

/// `GET /logout`.
pub async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let ask = match params.get("request") {
        Some(sealed) => match state.flow.open(sealed, state.clock.now()) {
            Ok(FlowState {
                stage:
                    Stage::LogoutRequest {
                        family,
                        then,
                        site_state,
                    },
                ..
            }) => LogoutAsk {
                family,
                then,
                site_state,
            },
            _ => return problem(&state, "This sign-out request expired or was changed, so nothing happened. Go back to the site and sign out again."),
        },
        None => match check_ask(&state, &params).await {
            Ok(ask) => ask,
            Err(response) => return *response,
        },
    };
    decide(&state, &headers, ask).await
}

/// `POST /logout`: the person's confirmation (a `flow` field, same origin only), or a
/// site's sign-out request sent as a form.
pub async fn post(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(flow) = form.get("flow") {
        if csrf::cross_site(&state, &headers).is_some() {
            return csrf::refused_cross_site(&state);
        }
        return confirm(&state, flow).await;
    }
    let ask = match check_ask(&state, &form).await {
        Ok(ask) => ask,
        Err(response) => return *response,
    };
    let request = state.flow.seal(&FlowState {
        request: None,
        stage: Stage::LogoutRequest {
            family: ask.family,
            then: ask.then,
            site_state: ask.site_state,
        },
        browser: String::new(),
        exp: state.clock.now().saturating_add(CONFIRM_TTL).0,
    });
    let request: String = url::form_urlencoded::byte_serialize(request.as_bytes()).collect();
    see_other(&format!("/logout?request={request}"), &[])
}

/// Checks a site's request: the hint is ours, it and `client_id` agree, and the return
/// address is registered for that site.
async fn check_ask(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<LogoutAsk, Box<Response>> {
    let refuse = |message: &str| Err(Box::new(problem(state, message)));
    let hint = match params.get("id_token_hint") {
        Some(token) => match verify_hint(state, token) {
            Some(hint) => Some(hint),
            None => return refuse("The sign-out request carries an ID token that was not issued here. You were not signed out; go back to the site and sign out again."),
        },
        None => None,
    };
    let client_id = params
        .get("client_id")
        .cloned()
        .or_else(|| hint.as_ref().map(|h| h.aud.clone()));
    if let (Some(hint), Some(client_id)) = (&hint, &client_id) {
        if hint.aud != *client_id {
            return refuse("The sign-out request names two different sites (client_id and id_token_hint). You were not signed out; go back to the site and sign out again.");
        }
    }
    let then = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let site = match &client_id {
                Some(id) => match state.directory.site(id).await {
                    Ok(site) => site,
                    Err(err) => return Err(Box::new(unavailable(state, &err))),
                },
                None => None,
            };
            match site {
                Some(site) if site.post_logout_uris.iter().any(|u| u == uri) => Some(uri.clone()),
                Some(site) => return refuse(&format!("{} asked to send you to an address it has not registered for after sign-out. You were not signed out; go back to the site and try again.", site.display_name)),
                None => return refuse("The sign-out request asks to return to a site but does not say which (client_id). You were not signed out; go back to the site and try again."),
            }
        }
    };
    Ok(LogoutAsk {
        family: hint
            .map(|h| h.tessera_family)
            .filter(|family| !family.is_empty()),
        then,
        site_state: params.get("state").cloned(),
    })
}

/// Signs out at once when the hint names this browser's session; otherwise asks.
async fn decide(state: &AppState, headers: &HeaderMap, ask: LogoutAsk) -> Response {
    let held = match session_cookie::named_sid(state, headers).await {
        Ok(sid) => sid,
        Err(err) => return unavailable(state, &err),
    };
    let LogoutAsk {
        family,
        then,
        site_state,
    } = ask;
    let to_end = match (held, family) {
        (Some(held), Some(family)) if held == family => {
            return match end_family(state, &held).await {
                Ok(()) => signed_out(state, then.as_deref(), site_state.as_deref()),
                Err(err) => unavailable(state, &err),
            };
        }
        (Some(held), _) => held,
        (None, Some(family)) => family,
        (None, None) => return not_signed_in(state, then.as_deref(), site_state.as_deref()),
    };
    let flow = state.flow.seal(&FlowState {
        request: None,
        stage: Stage::Logout {
            sid: to_end,
            then,
            site_state,
        },
        browser: String::new(),
        exp: state.clock.now().saturating_add(CONFIRM_TTL).0,
    });
    pages::page(
        StatusCode::OK,
        "Sign out",
        &format!(
            "<h1>Sign out?</h1><p>This signs you out of Tessera and of every site you signed in to with it.</p>\
<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"flow\" value=\"{}\">\
<button type=\"submit\" autofocus>Sign out everywhere</button></form>",
            pages::escape(&flow)
        ),
        state.dev(),
    )
}

/// The confirmed sign-out.
async fn confirm(state: &AppState, flow: &str) -> Response {
    let flow = match state.flow.open(flow, state.clock.now()) {
        Ok(flow) => flow,
        Err(_) => return problem(state, "This sign-out form expired or was changed, so nothing happened. Open the sign-out page again."),
    };
    let Stage::Logout {
        sid,
        then,
        site_state,
    } = flow.stage
    else {
        return problem(
            state,
            "This form is not a sign-out form. Open the sign-out page again.",
        );
    };
    match end_family(state, &sid).await {
        Ok(()) => signed_out(state, then.as_deref(), site_state.as_deref()),
        Err(err) => unavailable(state, &err),
    }
}

/// Revokes the family of `central_sid`, then tells every site that held a session of it.
async fn end_family(state: &AppState, central_sid: &str) -> Result<(), LoginError> {
    state.backends.revoke(revoke_family(central_sid)).await?;
    crate::backchannel::notify_sites(state, central_sid).await;
    state.witness(crate::state::Witnessed {
        kind: "logout",
        ..Default::default()
    });
    tracing::info!(session = %central_sid, "signed out");
    Ok(())
}

/// The answer after a sign-out that happened: back to the site, or a page saying so.
fn signed_out(state: &AppState, then: Option<&str>, site_state: Option<&str>) -> Response {
    finished(
        state,
        then,
        site_state,
        "<h1>You are signed out</h1><p>You are signed out of Tessera and of the sites you used it with. You can close this window.</p>",
    )
}

/// The answer when this browser had no session to end: it says so rather than claiming a
/// sign-out.
fn not_signed_in(state: &AppState, then: Option<&str>, site_state: Option<&str>) -> Response {
    finished(
        state,
        then,
        site_state,
        "<h1>You were not signed in</h1><p>This browser has no Tessera session, so there was nothing to sign out of. You can close this window.</p>",
    )
}

fn finished(
    state: &AppState,
    then: Option<&str>,
    site_state: Option<&str>,
    page: &str,
) -> Response {
    let clear = session_cookie::clear();
    match then {
        Some(uri) => see_other(&with_params(uri, &[("state", site_state)]), &clear),
        None => {
            let mut response = pages::page(StatusCode::OK, "Signed out", page, state.dev());
            for cookie in clear {
                if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
                    response
                        .headers_mut()
                        .append(axum::http::header::SET_COOKIE, value);
                }
            }
            response
        }
    }
}

/// The claims of an ID token this service issued (expired ones too: a hint only names
/// the session).
fn verify_hint(state: &AppState, token: &str) -> Option<IdTokenClaims> {
    state
        .key
        .open_id_token(token)
        .filter(|claims| claims.iss == state.issuer)
}

fn problem(state: &AppState, message: &str) -> Response {
    pages::page(
        StatusCode::BAD_REQUEST,
        "Sign-out not possible",
        &pages::problem("Sign-out not possible", message, None),
        state.dev(),
    )
}
