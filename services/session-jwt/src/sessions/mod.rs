//! Sessions: issuing, refreshing (rule F5) and revoking (rule F2). Every state change is
//! written to the token stash before the caller hears of it. Issuing, refreshing and
//! revoking each have their own file; the revocations in force and their followers are
//! the [`RevocationFeed`]'s.
//!
//! Stash layout (all reusable entries):
//! - `session` (owner = user id): the [`pb::SessionRecord`], for the session's hard lifetime.
//! - `session-id` at a token derived from the session id: the record's stash token; for
//!   a derived session owned by its parent session id, so a family is listed by owner.
//! - `refresh` at a token derived from the refresh token: the [`pb::RefreshGrant`].
//! - `rotation` at a token derived from the refresh token: the pair it was exchanged for.
//! - `epoch` / `revoked` (owner `all`): user and global epochs, revoked session ids.

mod issue;
mod refresh;
mod revoke;

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tessera_clock::SharedClock;
use tessera_proto::session::v1 as pb;
use tessera_verify::{VerifiedSession, Verifier, VerifierConfig};

use crate::derive::Derivation;
use crate::keys::KeyRing;
use crate::revocation::RevocationFeed;
use crate::stash::Stash;
use crate::SessionError;

/// Lifetimes and names.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long an access token is good for before it must be refreshed.
    pub soft_ttl: Duration,
    /// A session's hard limit from its start; at most 23 hours.
    pub lifetime: Duration,
    /// A session not refreshed for this long ends.
    pub idle: Duration,
    /// How long concurrent refreshes with one refresh token get the same new pair.
    pub grace: Duration,
}

/// The longest session lifetime: epochs and records live in the stash, whose entries last
/// at most 24 hours, and must outlive every session they concern.
pub const MAX_LIFETIME: Duration = Duration::from_secs(23 * 60 * 60);

/// The session service's state and operations.
#[derive(Debug)]
pub struct Sessions {
    stash: Stash,
    keys: KeyRing,
    derive: Derivation,
    clock: SharedClock,
    settings: Settings,
    revocations: Arc<RevocationFeed>,
}

pub(crate) fn decode_record<M: Message + Default>(
    bytes: &[u8],
    what: &str,
) -> Result<M, SessionError> {
    M::decode(bytes).map_err(|e| SessionError::Stash(format!("a stored {what} is corrupt: {e}")))
}

impl Sessions {
    /// The service over `stash`, loading the revocations in force.
    pub async fn start(
        stash: Stash,
        keys: KeyRing,
        derive: Derivation,
        clock: SharedClock,
        settings: Settings,
    ) -> Result<Self, SessionError> {
        if settings.lifetime > MAX_LIFETIME || settings.lifetime < settings.soft_ttl {
            return Err(SessionError::Config(format!(
                "session lifetime must be between the access token lifetime ({} s) and {} s",
                settings.soft_ttl.as_secs(),
                MAX_LIFETIME.as_secs()
            )));
        }
        let verifier = Verifier::new(VerifierConfig::new(""));
        verifier.set_keys(&keys.jwks(clock.now()));
        let revocations = RevocationFeed::load(
            stash.clone(),
            verifier,
            clock.clone(),
            settings.lifetime + settings.soft_ttl,
        )
        .await?;
        Ok(Sessions {
            stash,
            keys,
            derive,
            clock,
            settings,
            revocations: Arc::new(revocations),
        })
    }

    /// The revocations in force, their subscribers and their followers.
    pub fn revocations(&self) -> &Arc<RevocationFeed> {
        &self.revocations
    }

    /// The stash token and record of session `session_id`, if it is alive.
    pub(super) async fn record_of(
        &self,
        session_id: &str,
    ) -> Result<Option<(String, pb::SessionRecord)>, SessionError> {
        let Some(token) = self
            .stash
            .get(&self.derive.token("session-id", session_id))
            .await?
        else {
            return Ok(None);
        };
        let token = String::from_utf8(token)
            .map_err(|_| SessionError::Stash("a session index entry is corrupt".into()))?;
        match self.stash.get(&token).await? {
            Some(bytes) => Ok(Some((token, decode_record(&bytes, "session")?))),
            None => Ok(None),
        }
    }

    /// Verifies `token` for `audience` with the published keys and revocations.
    pub fn verify(&self, token: &str, audience: &str) -> Result<VerifiedSession, SessionError> {
        self.revocations
            .verifier()
            .verify_for(token, audience, self.clock.now())
            .map_err(SessionError::Rejected)
    }

    /// The published keys.
    pub fn jwks(&self) -> tessera_verify::Jwks {
        self.keys.jwks(self.clock.now())
    }

    /// Reads the key directory again, taking in a rotation another replica made.
    pub fn reload_keys(&self) -> Result<(), SessionError> {
        let before = self.keys.jwks(self.clock.now());
        self.keys.reload()?;
        let after = self.keys.jwks(self.clock.now());
        if before != after {
            self.revocations.verifier().set_keys(&after);
            tracing::info!("signing keys changed on disk; reloaded");
        }
        Ok(())
    }

    /// Makes a new signing key active.
    pub fn rotate_keys(&self) -> Result<(String, Vec<String>), SessionError> {
        let now = self.clock.now();
        let active = self.keys.rotate(now)?;
        let jwks = self.keys.jwks(now);
        self.revocations.verifier().set_keys(&jwks);
        Ok((
            active.kid().to_owned(),
            jwks.keys.into_iter().map(|k| k.kid).collect(),
        ))
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), SessionError> {
    if value.len() > max {
        return Err(SessionError::invalid(
            field,
            format!("is {} bytes; the limit is {max}", value.len()),
        ));
    }
    Ok(())
}
