//! Login CSRF defences. A sign-in form is bound to the browser it was shown to: the
//! browser holds a random pre-login nonce in a `__Host-` cookie and the signed flow
//! carries its hash, so a flow fetched by an attacker is useless in a victim's browser.
//! Form posts that say they come from another site (`Sec-Fetch-Site`, `Origin`) are
//! refused before anything else, because `SameSite=Lax` does not stop a top-level
//! cross-site POST from setting cookies.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use tessera_verify::cookie;

use super::pages;
use crate::state::AppState;

/// Cookie scope of the pre-login nonce (`__Host-tessera-preauth`).
const PREAUTH: &str = "preauth";
/// 16 random bytes, base64url.
const NONCE_CHARS: usize = 22;

/// The browser's pre-login nonce: the one it holds, or a new one with the cookie that
/// stores it. Reusing a held nonce keeps forms open in several tabs valid.
pub fn browser_nonce(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    if let Some(held) = held_nonce(headers) {
        return (held.to_owned(), None);
    }
    let nonce = crate::random_text(16).unwrap_or_default();
    let cookie = cookie::set_cookie(PREAUTH, &nonce, state.config.form_ttl_seconds);
    (nonce, Some(cookie))
}

fn held_nonce(headers: &HeaderMap) -> Option<&str> {
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    cookie::session_token(cookies, PREAUTH).filter(|nonce| {
        nonce.len() == NONCE_CHARS
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// What a flow carries to bind it to the browser holding `nonce`.
pub fn binding(nonce: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(nonce.as_bytes()))
}

/// Whether the request comes from the browser the flow with `bound_to` was shown to.
pub fn same_browser(headers: &HeaderMap, bound_to: &str) -> bool {
    match held_nonce(headers) {
        Some(nonce) if !bound_to.is_empty() => {
            bool::from(binding(nonce).as_bytes().ct_eq(bound_to.as_bytes()))
        }
        _ => false,
    }
}

/// Why a form post is refused as cross-site, if it is: it says it was sent by a page of
/// another site (`Sec-Fetch-Site`), or from another origin (`Origin`). A post that says
/// neither (an old browser, a script) is let through to the nonce check.
pub fn cross_site(state: &AppState, headers: &HeaderMap) -> Option<&'static str> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Some("sec_fetch_site");
        }
    }
    match text(header::ORIGIN.as_str()) {
        Some(origin) if origin.trim_end_matches('/') != state.issuer => Some("origin"),
        _ => None,
    }
}

/// The page for a refused cross-site post: nothing happened, and how to sign in.
pub fn refused_cross_site(state: &AppState) -> Response {
    pages::page(
        StatusCode::FORBIDDEN,
        "Sign-in refused",
        &pages::problem(
            "This sign-in came from another site",
            "A page on another site tried to send this form for you, so it was refused and nothing changed. To sign in, open the site you want to use and choose Sign in there.",
            None,
        ),
        state.dev(),
    )
}

/// The page for a form posted by a browser it was not shown to (or one that no longer
/// holds the pre-login cookie).
pub fn other_browser(state: &AppState, restart: Option<&str>) -> Response {
    pages::page(
        StatusCode::BAD_REQUEST,
        "Form not accepted",
        &pages::problem(
            "This sign-in form belongs to another browser",
            "The form was not opened in this browser, or the browser did not send its sign-in cookie, so nothing was sent. Start again here; if it keeps happening, allow cookies for this sign-in page.",
            restart.map(|href| (href, "Start again")),
        ),
        state.dev(),
    )
}
