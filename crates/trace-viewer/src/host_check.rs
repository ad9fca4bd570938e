//! The UI answers only requests addressed to this machine by a loopback name. A web page
//! elsewhere could otherwise rebind its own host name to 127.0.0.1 and read the traces
//! from a visitor's browser (DNS rebinding); its requests still name its own host.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The `Host` values that name this machine's UI on `port`.
pub fn loopback_hosts(port: u16) -> HashSet<String> {
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .map(|host| format!("{host}:{port}"))
        .collect()
}

/// Serves requests whose `Host` is one of `allowed`; refuses the rest with 421.
pub async fn same_machine(allowed: Arc<HashSet<String>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if allowed.contains(&host.to_ascii_lowercase()) {
        next.run(request).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "This trace viewer answers only to 127.0.0.1 or localhost on its own port; open it by that address.\n",
        )
            .into_response()
    }
}
