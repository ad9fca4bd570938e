//! Session cookies: one `__Host-` cookie per scope, so two scopes never collide, and the
//! deletion repeats the exact attributes of the setting (otherwise browsers keep the old
//! cookie).

/// The cookie name for `scope` (e.g. `wiki-a`, or `central` for the login domain):
/// `__Host-tessera-<scope>`. `__Host-` makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so no other host or path can set or shadow it.
pub fn cookie_name(scope: &str) -> String {
    format!("__Host-tessera-{scope}")
}

const ATTRIBUTES: &str = "Path=/; Secure; HttpOnly; SameSite=Lax";

/// The `Set-Cookie` value that stores `token` for `scope` for `max_age_seconds`.
pub fn set_cookie(scope: &str, token: &str, max_age_seconds: u64) -> String {
    format!(
        "{}={token}; {ATTRIBUTES}; Max-Age={max_age_seconds}",
        cookie_name(scope)
    )
}

/// The `Set-Cookie` value that deletes the cookie of `scope`.
pub fn delete_cookie(scope: &str) -> String {
    format!("{}=deleted; {ATTRIBUTES}; Max-Age=0", cookie_name(scope))
}

/// The session token of `scope` in a request's `Cookie` header(s). A value `deleted` (a
/// deletion some client replayed) is not a token. If the name appears more than once, the
/// first usable value wins, so the answer never depends on anything but the header order
/// the browser sent.
pub fn session_token<'h>(
    cookie_headers: impl IntoIterator<Item = &'h str>,
    scope: &str,
) -> Option<&'h str> {
    let name = cookie_name(scope);
    cookie_headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, value)| *key == name && !value.is_empty() && *value != "deleted")
        .map(|(_, value)| value)
        .next()
}
