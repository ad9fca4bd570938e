//! A site's verifier: local verification that fetches the published keys when it meets
//! a key it does not know, at most once per interval, so a flood of forged `kid`s cannot
//! turn into a flood of fetches.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_clock::{SharedClock, UnixMillis};

use crate::{Jwks, Rejection, VerifiedSession, Verifier, VerifyError};

/// Where the published keys come from (the session service, or the login's JWKS URL).
pub trait KeySource: Send + Sync + 'static {
    /// The current JWKS.
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Jwks, String>> + Send + '_>>;
}

/// Local verification with key fetching. Verification itself never waits on the network
/// unless the token names a key this site has not seen.
pub struct SiteVerifier {
    verifier: Arc<Verifier>,
    keys: Arc<dyn KeySource>,
    clock: SharedClock,
    refetch_interval: Duration,
    /// When keys were last fetched; a short lock, never held across the fetch.
    last_fetch: Mutex<Option<UnixMillis>>,
}

impl std::fmt::Debug for SiteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteVerifier")
            .field("refetch_interval", &self.refetch_interval)
            .finish_non_exhaustive()
    }
}

impl SiteVerifier {
    /// A site verifier over `verifier`, fetching keys from `keys` at most once per
    /// `refetch_interval`.
    pub fn new(
        verifier: Arc<Verifier>,
        keys: Arc<dyn KeySource>,
        clock: SharedClock,
        refetch_interval: Duration,
    ) -> Self {
        SiteVerifier {
            verifier,
            keys,
            clock,
            refetch_interval,
            last_fetch: Mutex::new(None),
        }
    }

    /// The verifier underneath (to feed it revocations).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// Fetches the keys now, unless they were fetched less than the interval ago.
    /// Whether a fetch happened and succeeded.
    pub async fn refresh_keys(&self) -> bool {
        let now = self.clock.now();
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| now.saturating_since(at) < self.refetch_interval) {
                return false;
            }
            *last = Some(now);
        }
        match self.keys.fetch().await {
            Ok(jwks) => {
                self.verifier.set_keys(&jwks);
                true
            }
            Err(_) => false,
        }
    }

    /// Verifies `token`; on an unknown key, refetches the keys (rate-limited) and tries
    /// once more.
    pub async fn verify(&self, token: &str) -> Result<VerifiedSession, Box<Rejection>> {
        match self.verifier.verify(token, self.clock.now()) {
            Err(rejection) if matches!(rejection.error, VerifyError::UnknownKey { .. }) => {
                if self.refresh_keys().await {
                    self.verifier.verify(token, self.clock.now())
                } else {
                    Err(rejection)
                }
            }
            other => other,
        }
    }
}
