//! The client address a request is counted against.

use std::net::SocketAddr;

use axum::http::HeaderMap;

use crate::state::AppState;

/// The client IP a request counts against: the peer, or the last entry of the trusted
/// proxy header when one is configured.
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    if let Some(name) = &state.config.client_ip_header {
        if let Some(value) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            if let Some(last) = value
                .rsplit(',')
                .next()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                return last.chars().take(64).collect();
            }
        }
    }
    peer.ip().to_string()
}
