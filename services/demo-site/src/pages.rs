//! The wiki's pages: plain, accessible HTML with no external assets.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tessera_service::html::Page;

pub use tessera_service::html::escape;

/// A whole page for site `name`.
pub fn page(name: &str, status: StatusCode, body: &str, cookies: &[String]) -> Response {
    page_with_script(name, status, body, None, cookies)
}

/// A page that POSTs `fields` to `action` at once (a button does it where scripts are
/// off): how a site sends a request that must not travel in a URL.
pub fn auto_post(
    name: &str,
    action: &str,
    fields: &[(&str, &str)],
    cookies: &[String],
) -> Response {
    let inputs: String = fields
        .iter()
        .map(|(field, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(field),
                escape(value)
            )
        })
        .collect();
    let body = format!(
        "<h1>Signing out…</h1><form method=\"post\" action=\"{}\">{inputs}\
<button type=\"submit\">Continue signing out</button></form>",
        escape(action)
    );
    page_with_script(name, StatusCode::OK, &body, Some(AUTO_SUBMIT), cookies)
}

const AUTO_SUBMIT: &str = "document.forms[0].submit()";

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#eef3ee;color:#1b1d21}\
header{background:#2f6f3e;color:#fff;padding:.8rem 1.5rem;font-weight:700}\
main{max-width:36rem;margin:2rem auto;background:#fff;padding:2rem;border-radius:8px}\
.button,button{display:inline-block;padding:.6rem 1.2rem;font-size:1rem;background:#2f6f3e;color:#fff;border:0;border-radius:4px;text-decoration:none;cursor:pointer}\
a:focus,button:focus{outline:3px solid #1a5fb4;outline-offset:2px}\
.error{background:#fdecea;border-left:4px solid #b00020;padding:.6rem .8rem}";

fn page_with_script(
    name: &str,
    status: StatusCode,
    body: &str,
    script: Option<&'static str>,
    cookies: &[String],
) -> Response {
    let mut response = Page {
        title: name,
        style: STYLE,
        body: &format!("<header>{}</header><main>{body}</main>", escape(name)),
        script,
        // A site's links and form posts go to the login service: the browser's default,
        // so the login sees where a person came from.
        referrer_policy: "strict-origin-when-cross-origin",
        ..Page::default()
    }
    .respond(status);
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The signed-in view.
pub fn signed_in(user: &str) -> String {
    format!(
        "<h1>Welcome</h1><p id=\"who\">Signed in as <strong>{}</strong>.</p>\
<form method=\"post\" action=\"/signout\"><button id=\"signout\" type=\"submit\">Sign out</button></form>",
        escape(user)
    )
}

/// The signed-out view, with an optional notice.
pub fn signed_out(notice: Option<&str>) -> String {
    let notice = notice
        .map(|n| format!("<p class=\"error\" role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default();
    format!(
        "<h1>Welcome</h1>{notice}<p id=\"who\">You are not signed in.</p>\
<p><a id=\"signin\" class=\"button\" href=\"/signin\">Sign in</a></p>"
    )
}

/// A failed sign-in: what happened, and one button to try again (never a dead end).
pub fn sign_in_failed(message: &str) -> String {
    format!(
        "<h1>Sign-in did not complete</h1><p class=\"error\" role=\"alert\" id=\"problem\">{}</p>\
<p><a id=\"signin\" class=\"button\" href=\"/signin\">Sign in again</a></p>",
        escape(message)
    )
}
