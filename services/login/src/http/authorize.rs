//! `/authorize` and the sign-in form: SSO when the central session is alive, otherwise
//! a form whose state is signed, not stored.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::respond::{
    fresh_form, problem_page, redirect_error, redirect_with_code, see_other, unavailable,
};
use super::session_cookie::{self, Central};
use crate::codes::{self, challenge_well_formed};
use crate::directory::Site;
use crate::flow::AuthorizeRequest;
use crate::state::{AppState, Shared};

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
    let max_age = match params.get("max_age").map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(seconds)) => Some(seconds),
        Some(Err(_)) => {
            return back(
                "invalid_request",
                "max_age must be a whole number of seconds",
            )
        }
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
    // OpenID Connect Core 3.1.2.1: with max_age, a person who authenticated longer ago
    // than that must authenticate again; so must one whose authentication time this
    // browser cannot show, since an ID token's auth_time must be true.
    let now_s = state.clock.now().0 / 1000;
    let central = central.and_then(|central| {
        let auth_time = central.auth_time?;
        let fresh = max_age.is_none_or(|max| now_s.saturating_sub(auth_time) <= max);
        fresh.then_some((central, auth_time))
    });
    match central {
        Some((central, auth_time)) => {
            state.metrics.requests.inc("authenticated");
            sso(&state, &headers, &site, request, central, auth_time).await
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
            fresh_form(&state, &headers, &site, request)
        }
    }
}

/// Single sign-on: a live central session gets a code at once, no form.
async fn sso(
    state: &AppState,
    headers: &HeaderMap,
    site: &Site,
    request: AuthorizeRequest,
    central: Central,
    auth_time: u64,
) -> Response {
    let user = match state.directory.user_by_id(&central.user_id).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => {
            // The account was disabled or removed since: the session must not be used.
            let _ = state
                .backends
                .revoke(crate::backends::revoke_family(&central.sid))
                .await;
            return fresh_form(state, headers, site, request);
        }
        Err(err) => return unavailable(state, &err),
    };
    match codes::mint(
        state,
        &request,
        &user.id,
        &user.name,
        &central.sid,
        auth_time,
    )
    .await
    {
        Ok(code) => see_other(&redirect_with_code(&request, &code), &central.set_cookies),
        Err(err) => unavailable(state, &err),
    }
}
