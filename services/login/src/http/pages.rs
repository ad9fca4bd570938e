//! The HTML every person sees: plain, accessible pages (labels, a logical focus order,
//! errors announced to screen readers) with no external assets.

use axum::http::StatusCode;
use axum::response::Response;
use tessera_service::html::Page;

pub use tessera_service::html::{escape, no_store};

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1d21}\
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin-top:0}label{display:block;margin-top:1rem;font-weight:600}\
input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #767676;border-radius:4px}\
input:focus,button:focus,a:focus{outline:3px solid #1a5fb4;outline-offset:2px}\
button,.button{display:inline-block;margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem;background:#1a5fb4;color:#fff;border:0;border-radius:4px;text-decoration:none;cursor:pointer}\
.error{background:#fdecea;border-left:4px solid #b00020;padding:.6rem .8rem;margin:1rem 0}\
.note{color:#4a4d55;font-size:.9rem}.dev{background:#fff3cd;border-bottom:2px solid #c77c02;padding:.5rem;text-align:center;margin:0}";

/// A whole page. `dev` shows the development-mode banner.
pub fn page(status: StatusCode, title: &str, body: &str, dev: bool) -> Response {
    let banner = if dev {
        "<p class=\"dev\" role=\"note\"><strong>Development mode:</strong> plain HTTP on localhost. Never use this configuration in production.</p>"
    } else {
        ""
    };
    Page {
        title: &format!("{title} · Tessera"),
        style: STYLE,
        body: &format!("{banner}<main>{body}</main>"),
        ..Page::default()
    }
    .respond(status)
}

/// An error box, announced to screen readers.
pub fn error_box(message: &str) -> String {
    format!(
        "<div class=\"error\" role=\"alert\" id=\"error\">{}</div>",
        escape(message)
    )
}

/// The sign-in form: name and password.
pub fn login_form(site_name: &str, flow: &str, username: &str, error: Option<&str>) -> String {
    let error = error.map(error_box).unwrap_or_default();
    let describedby = if error.is_empty() {
        ""
    } else {
        " aria-describedby=\"error\""
    };
    format!(
        "<h1>Sign in</h1><p>to continue to <strong>{site}</strong></p>{error}\
<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"flow\" value=\"{flow}\">\
<label for=\"username\">User name</label>\
<input id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required value=\"{username}\"{describedby}{focus_name}>\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{describedby}{focus_password}>\
<button type=\"submit\">Sign in</button></form>",
        site = escape(site_name),
        flow = escape(flow),
        action = escape(&traced_action("/login")),
        username = escape(username),
        focus_name = if username.is_empty() { " autofocus" } else { "" },
        focus_password = if username.is_empty() { "" } else { " autofocus" },
    )
}

/// The second-factor form.
pub fn totp_form(site_name: &str, flow: &str, error: Option<&str>) -> String {
    let error = error.map(error_box).unwrap_or_default();
    format!(
        "<h1>Enter your code</h1><p>to continue to <strong>{site}</strong></p>{error}\
<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"flow\" value=\"{flow}\">\
<label for=\"code\">6-digit code from your authenticator app</label>\
<input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" autocomplete=\"one-time-code\" required autofocus>\
<button type=\"submit\">Verify</button></form>",
        site = escape(site_name),
        flow = escape(flow),
        action = escape(&traced_action("/login/totp")),
    )
}

/// `path`, with the current trace carried along when there is one: the browser's post
/// then continues the sign-in's trace (see `tessera_telemetry::trace_context`).
fn traced_action(path: &str) -> String {
    match tessera_telemetry::trace_context::current_traceparent() {
        Some(traceparent) => format!("{path}?traceparent={traceparent}"),
        None => path.to_owned(),
    }
}

/// A page that explains a problem and offers one way forward.
pub fn problem(heading: &str, message: &str, action: Option<(&str, &str)>) -> String {
    let action = action
        .map(|(href, label)| {
            format!(
                "<p><a class=\"button\" href=\"{}\">{}</a></p>",
                escape(href),
                escape(label)
            )
        })
        .unwrap_or_default();
    format!("<h1>{}</h1>{}{action}", escape(heading), error_box(message))
}
