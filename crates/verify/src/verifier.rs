use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use tessera_clock::UnixMillis;

use crate::cache::VerifiedCache;
use crate::claims::decode;
use crate::{Claims, Jwks, Rejection, RevocationEvent, RevocationState, VerifyError};

/// What a site's verifier accepts.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// This site's client id: tokens must name it (`aud`).
    pub audience: String,
    /// How far in the future `iat` may be, for clock differences.
    pub clock_skew: Duration,
    /// How long past its soft expiry a token is still refreshable (`soft_expired`);
    /// beyond that it is `expired`.
    pub refresh_window: Duration,
    /// The longest a token may be valid from its `iat` to its `exp`: no session lives
    /// longer (the session service caps sessions at 23 hours, and access tokens at far
    /// less). A token claiming more is refused, so an `exp` of 2^63 cannot mean "never".
    pub max_token_lifetime: Duration,
}

impl VerifierConfig {
    /// Defaults: one minute of clock skew, a twelve-hour refresh window.
    pub fn new(audience: impl Into<String>) -> Self {
        VerifierConfig {
            audience: audience.into(),
            clock_skew: Duration::from_secs(60),
            refresh_window: Duration::from_secs(12 * 60 * 60),
            max_token_lifetime: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSession {
    /// Its claims.
    pub claims: Claims,
}

/// Verifies session tokens locally. Cheap to share (`Arc<Verifier>`); every method takes
/// `&self`. Locks are held only for map look-ups, never across I/O.
#[derive(Debug)]
pub struct Verifier {
    config: VerifierConfig,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    revocations: RwLock<RevocationState>,
    cache: Mutex<VerifiedCache>,
}

impl Verifier {
    /// A verifier with no keys yet: give it the JWKS with [`Verifier::set_keys`].
    pub fn new(config: VerifierConfig) -> Self {
        Verifier {
            config,
            keys: RwLock::new(HashMap::new()),
            revocations: RwLock::new(RevocationState::default()),
            cache: Mutex::new(VerifiedCache::default()),
        }
    }

    /// What this verifier accepts.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Replaces the published keys. Cached verifications are dropped, so a token signed by
    /// a key no longer published stops verifying at once.
    pub fn set_keys(&self, jwks: &Jwks) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = jwks.ed25519_keys();
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Whether a key with this id is known.
    pub fn has_key(&self, kid: &str) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(kid)
    }

    /// Takes in a revocation; tokens it covers are refused from the next call on.
    pub fn apply(&self, event: RevocationEvent) {
        self.revocations
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .apply(event);
    }

    /// Forgets revocations that can no longer matter at `now`.
    pub fn prune(&self, now: UnixMillis) {
        self.revocations
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .prune(now);
    }

    /// Verifies `token` at `now`: type, signature, audience, revocation, validity.
    /// Rejections are boxed: the common case is success, and it stays small.
    pub fn verify(&self, token: &str, now: UnixMillis) -> Result<VerifiedSession, Box<Rejection>> {
        self.verify_for(token, &self.config.audience, now)
    }

    /// Verifies `token` for `audience` instead of the configured one: for a service that
    /// verifies on behalf of many sites.
    pub fn verify_for(
        &self,
        token: &str,
        audience: &str,
        now: UnixMillis,
    ) -> Result<VerifiedSession, Box<Rejection>> {
        let cache_key = VerifiedCache::key(token);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key);
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature(token)?;
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(cache_key, claims.clone());
                claims
            }
        };
        self.check_claims(&claims, audience, now)
            .map_err(|error| Box::new(Rejection::about(error, &claims)))?;
        Ok(VerifiedSession { claims })
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, Box<Rejection>> {
        let decoded = decode(token)?;
        let reject = |error| Box::new(Rejection::about(error, &decoded.claims));
        let key = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&decoded.header.kid)
            .copied()
            .ok_or_else(|| {
                reject(VerifyError::UnknownKey {
                    kid: decoded.header.kid.chars().take(64).collect(),
                })
            })?;
        // Strict verification also refuses malleable signatures and weak keys.
        key.verify_strict(
            decoded.signing_input.as_bytes(),
            &Signature::from_bytes(&decoded.signature),
        )
        .map_err(|_| reject(VerifyError::BadSignature))?;
        Ok(decoded.claims)
    }

    fn check_claims(
        &self,
        claims: &Claims,
        audience: &str,
        now: UnixMillis,
    ) -> Result<(), VerifyError> {
        if claims.aud != audience {
            return Err(VerifyError::WrongAudience {
                expected: audience.to_owned(),
                actual: claims.aud.chars().take(256).collect(),
            });
        }
        let lifetime = claims.exp.checked_sub(claims.iat).map(Duration::from_secs);
        if !lifetime.is_some_and(|l| !l.is_zero() && l <= self.config.max_token_lifetime) {
            return Err(VerifyError::ImplausibleLifetime);
        }
        let issued = UnixMillis(claims.iat.saturating_mul(1000));
        if issued > now.saturating_add(self.config.clock_skew) {
            return Err(VerifyError::NotYetValid);
        }
        if let Some(scope) = self
            .revocations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .check(claims)
        {
            return Err(VerifyError::Revoked(scope));
        }
        let soft_expiry = UnixMillis(claims.exp.saturating_mul(1000));
        if now >= soft_expiry {
            return Err(
                if now < soft_expiry.saturating_add(self.config.refresh_window) {
                    VerifyError::SoftExpired
                } else {
                    VerifyError::Expired
                },
            );
        }
        Ok(())
    }
}
