//! The public HTTP surface: OpenID Connect endpoints and the pages people see. This is
//! the top layer: nothing else in the crate imports it.

mod authorize;
mod csrf;
mod discovery;
mod logout;
pub mod pages;
mod respond;
mod session_cookie;
mod signin;
mod token;
mod userinfo;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::state::Shared;

/// The largest request body read (sign-in forms, `/token`, `/logout` posts).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The router of the public surface.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(discovery::home))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/jwks.json", get(discovery::jwks))
        .route("/session-keys.json", get(discovery::session_keys))
        .route("/authorize", get(authorize::authorize))
        .route("/login", post(signin::password))
        .route("/login/totp", post(signin::totp))
        .route("/token", post(token::token))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/revoke", post(userinfo::revoke))
        .route("/logout", get(logout::logout).post(logout::post))
        .fallback(not_found)
        // Every form and request here is small; nothing larger is read.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Every request runs in a span joined to the caller's trace (W3C `traceparent`), and
        // the gRPC calls it makes carry that trace on, so one sign-in is one trace.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.http.clone(),
            tessera_telemetry::red::observe_http,
        ))
        .with_state(state)
}

async fn not_found(State(state): State<Shared>) -> Response {
    pages::page(
        StatusCode::NOT_FOUND,
        "Not found",
        &pages::problem(
            "Page not found",
            "There is nothing at this address. Sign in from the site you were using.",
            None,
        ),
        state.dev(),
    )
}
