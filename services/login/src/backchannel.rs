//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): after a central session
//! is revoked, every site that held a session of its family is sent a signed logout
//! token naming that site session, in parallel, each bounded by a timeout. Sites that
//! miss it still lose the session: its tokens are revoked at the session service and
//! its refresh fails.

use crate::signing::{LogoutTokenClaims, BACKCHANNEL_LOGOUT_EVENT};
use crate::state::AppState;

/// Sends logout tokens for the site sessions of `central_sid`; how many sites
/// acknowledged.
pub async fn notify_sites(state: &AppState, central_sid: &str) -> usize {
    let stash = &state.backends.stash;
    let tokens = match stash
        .list(crate::codes::SITE_SESSION_NAMESPACE, central_sid)
        .await
    {
        Ok(tokens) => tokens,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list the site sessions to notify");
            return 0;
        }
    };
    let mut deliveries = Vec::new();
    for token in tokens {
        let Ok(Some(bytes)) = stash.get(&token).await else {
            continue;
        };
        let Ok(session) = serde_json::from_slice::<crate::codes::SiteSession>(&bytes) else {
            continue;
        };
        let Ok(Some(site)) = state.directory.site(&session.client_id).await else {
            continue;
        };
        let Some(uri) = site.backchannel_logout_uri else {
            continue;
        };
        deliveries.push(deliver(state, uri, session));
    }
    let results = futures::future::join_all(deliveries).await;
    results.into_iter().filter(|delivered| *delivered).count()
}

async fn deliver(state: &AppState, uri: String, session: crate::codes::SiteSession) -> bool {
    let now = state.clock.now().0 / 1000;
    let jti = crate::random_text(12).unwrap_or_default();
    let token = state.key.sign_logout_token(&LogoutTokenClaims {
        iss: state.issuer.clone(),
        sub: session.sub.clone(),
        aud: session.client_id.clone(),
        iat: now,
        exp: now + 120,
        jti,
        sid: session.sid.clone(),
        events: serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
    });
    let sent = state
        .http
        .post(&uri)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {
            state.metrics.backchannel.inc("delivered");
            true
        }
        Ok(response) => {
            state.metrics.backchannel.inc("refused");
            tracing::warn!(site = %session.client_id, status = %response.status(), "back-channel logout refused");
            false
        }
        Err(err) => {
            state.metrics.backchannel.inc("unreachable");
            tracing::warn!(site = %session.client_id, error = %err, "back-channel logout not delivered");
            false
        }
    }
}
