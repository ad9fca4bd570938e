//! `/logout` (rule F2): revokes the central session and every site session of its
//! family, tells each site over the back channel, deletes the central cookies with the
//! attributes they were set with, and returns to the site if it asked (with a registered
//! `post_logout_redirect_uri`). Without an `id_token_hint` proving a site asked, the
//! person confirms first, so a link elsewhere cannot sign them out.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use tessera_verify::{verify_signed_json, Jwks};

use super::respond::{see_other, unavailable, with_params};
use super::{pages, session_cookie};
use crate::backends::{revoke_family, revoke_session};
use crate::flow::{FlowState, Stage};
use crate::signing::IdTokenClaims;
use crate::state::{AppState, Shared};
use crate::LoginError;

/// How long the confirmation form stays valid.
const CONFIRM_TTL: Duration = Duration::from_secs(600);

/// `GET /logout`.
pub async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let hint = params
        .get("id_token_hint")
        .and_then(|token| verify_hint(&state, token));
    let client_id = params
        .get("client_id")
        .cloned()
        .or_else(|| hint.as_ref().map(|h| h.aud.clone()));
    if let (Some(hint), Some(client_id)) = (&hint, &client_id) {
        if hint.aud != *client_id {
            return problem(&state, "The sign-out request names two different sites (client_id and id_token_hint). Go back to the site and sign out again.");
        }
    }
    let then = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let site = match &client_id {
                Some(id) => match state.directory.site(id).await {
                    Ok(site) => site,
                    Err(err) => return unavailable(&state, &err),
                },
                None => None,
            };
            match site {
                Some(site) if site.post_logout_uris.iter().any(|u| u == uri) => Some(uri.clone()),
                Some(site) => return problem(&state, &format!("{} asked to send you to an address it has not registered for after sign-out. You were not signed out; go back to the site and try again.", site.display_name)),
                None => return problem(&state, "The sign-out request asks to return to a site but does not say which (client_id). You were not signed out; go back to the site and try again."),
            }
        }
    };
    let site_state = params.get("state").cloned();
    let cookie_sid = match session_cookie::named_sid(&state, &headers).await {
        Ok(sid) => sid,
        Err(err) => return unavailable(&state, &err),
    };
    match hint {
        Some(hint) => {
            // A site proved it asked: sign out now.
            let central = Some(hint.tessera_family.clone())
                .filter(|family| !family.is_empty())
                .or(cookie_sid);
            let result = match central {
                Some(central) => end_family(&state, &central).await,
                None => state
                    .backends
                    .revoke(revoke_session(&hint.sid))
                    .await
                    .map(|_| ())
                    .map_err(LoginError::from),
            };
            match result {
                Ok(()) => signed_out(&state, then.as_deref(), site_state.as_deref()),
                Err(err) => unavailable(&state, &err),
            }
        }
        None => match cookie_sid {
            Some(sid) => {
                let flow = state.flow.seal(&FlowState {
                    request: None,
                    stage: Stage::Logout {
                        sid,
                        then,
                        site_state,
                    },
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
            None => signed_out(&state, then.as_deref(), site_state.as_deref()),
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    flow: String,
}

/// `POST /logout`: the confirmed sign-out.
pub async fn confirm(State(state): State<Shared>, Form(form): Form<ConfirmForm>) -> Response {
    let flow = match state.flow.open(&form.flow, state.clock.now()) {
        Ok(flow) => flow,
        Err(_) => return problem(&state, "This sign-out form expired or was changed, so nothing happened. Open the sign-out page again."),
    };
    let Stage::Logout {
        sid,
        then,
        site_state,
    } = flow.stage
    else {
        return problem(
            &state,
            "This form is not a sign-out form. Open the sign-out page again.",
        );
    };
    match end_family(&state, &sid).await {
        Ok(()) => signed_out(&state, then.as_deref(), site_state.as_deref()),
        Err(err) => unavailable(&state, &err),
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

fn signed_out(state: &AppState, then: Option<&str>, site_state: Option<&str>) -> Response {
    let clear = session_cookie::clear();
    match then {
        Some(uri) => see_other(&with_params(uri, &[("state", site_state)]), &clear),
        None => {
            let mut response = pages::page(
                StatusCode::OK,
                "Signed out",
                "<h1>You are signed out</h1><p>You are signed out of Tessera and of the sites you used it with. You can close this window.</p>",
                state.dev(),
            );
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
    let jwks = Jwks {
        keys: vec![state.key.jwk()],
    };
    verify_signed_json::<IdTokenClaims>(token, &jwks)
        .ok()
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
