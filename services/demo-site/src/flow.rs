//! The site's side of a sign-in in flight: `state`, `nonce` and the PKCE verifier, kept in
//! a short-lived cookie of the site's own (never in the URL), and whether the silent
//! retry (rule F1) was already spent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// One sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// Anti-CSRF value echoed by the login service.
    pub state: String,
    /// Bound into the ID token.
    pub nonce: String,
    /// PKCE code verifier (its S256 hash goes to `/authorize`).
    pub verifier: String,
    /// Whether this attempt is the one silent retry.
    pub retried: bool,
    /// The trace the sign-in began in (W3C `traceparent`), so the browser's return to
    /// the callback continues it.
    pub traceparent: Option<String>,
}

fn random(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // Without operating-system randomness nothing secure can be done; an empty value makes
    // the state check fail closed.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

impl PendingSignIn {
    /// A fresh attempt.
    pub fn new(retried: bool) -> Self {
        PendingSignIn {
            state: random(16),
            nonce: random(16),
            verifier: random(32),
            retried,
            traceparent: tessera_telemetry::trace_context::current_traceparent(),
        }
    }

    /// The S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }

    /// The cookie value.
    pub fn encode(&self) -> String {
        let mut value = format!(
            "{}.{}.{}.{}",
            self.state,
            self.nonce,
            self.verifier,
            u8::from(self.retried)
        );
        if let Some(traceparent) = &self.traceparent {
            value.push('.');
            value.push_str(traceparent);
        }
        value
    }

    /// From the cookie value.
    pub fn decode(value: &str) -> Option<Self> {
        let mut parts = value.split('.');
        let (Some(state), Some(nonce), Some(verifier), Some(retried), traceparent, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Some(PendingSignIn {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
            retried: retried == "1",
            traceparent: traceparent.map(str::to_owned),
        })
    }
}
