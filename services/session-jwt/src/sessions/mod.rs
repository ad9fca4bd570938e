//! Sessions: issuing, refreshing (rule F5) and revoking (rule F2). Every state change is
//! written to the token stash before the caller hears of it. Issuing, refreshing and
//! revoking each have their own file; the revocations in force and their followers are
//! the [`RevocationFeed`]'s.
//!
//! Stash layout (all reusable entries):
//! - `session` at a token derived from the session id (owner = user id): the
//!   [`pb::SessionRecord`], for the session's hard lifetime.
//! - `session-id` at a token derived from the session id: the record's stash token; for
//!   a derived session owned by its parent session id, so a family is listed by owner.
//! - `rotation` at a token derived from the refresh token: the pair it was exchanged for.
//! - `refresh` at a token derived from the refresh token: the [`pb::RefreshGrant`] of a
//!   refresh token minted before refresh tokens were sealed; none is written now.
//!
//! A refresh token carries its grant sealed ([`crate::sealed`]): the session, its
//! generation and when it goes idle. So a session's record and index are one commit (one
//! stash Apply), and a refresh is one commit at the session's datacenter that requires
//! the record to be live and records the rotation; nothing is read first.
//! - `epoch` / `revoked` (owner `all`): user and global epochs, revoked session ids.
//!
//! Across datacenters: a refresh token names its home datacenter (`<dc>.<random>`), the
//! one holding its session's record, and its grant and rotation are derived at that
//! datacenter, where the stash forwards them, so one refresh token is exchanged at one
//! place only, whichever datacenter is asked. A session is found by id in this
//! datacenter first, then in its peers.

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
use crate::peer_keys::PeerKeys;
use crate::revocation::RevocationFeed;
use crate::sealed::RefreshSealer;
use crate::stash::{Lookup, Stash};
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
    sealer: RefreshSealer,
    clock: SharedClock,
    settings: Settings,
    revocations: Arc<RevocationFeed>,
    datacenters: Datacenters,
    peer_keys: PeerKeys,
}

/// This datacenter and its peers.
#[derive(Debug, Clone)]
pub struct Datacenters {
    /// Where this service runs (its stash's datacenter).
    pub local: String,
    /// The peer datacenters, whose sessions this one serves too.
    pub peers: Vec<String>,
}

impl Datacenters {
    /// A single datacenter with no peers.
    pub fn alone(local: &str) -> Self {
        Datacenters {
            local: local.to_owned(),
            peers: Vec::new(),
        }
    }

    fn knows(&self, datacenter: &str) -> bool {
        self.local == datacenter || self.peers.iter().any(|p| p == datacenter)
    }
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
        datacenters: Datacenters,
    ) -> Result<Self, SessionError> {
        if settings.lifetime > MAX_LIFETIME || settings.lifetime < settings.soft_ttl {
            return Err(SessionError::Config(format!(
                "session lifetime must be between the access token lifetime ({} s) and {} s",
                settings.soft_ttl.as_secs(),
                MAX_LIFETIME.as_secs()
            )));
        }
        let peer_keys = PeerKeys::load(keys.dir(), &datacenters.peers);
        let verifier = Verifier::new(VerifierConfig::new(""));
        verifier.set_keys(&merged(keys.jwks(clock.now()), &peer_keys));
        let revocations = RevocationFeed::load(
            stash.clone(),
            &datacenters.local,
            verifier,
            clock.clone(),
            settings.lifetime + settings.soft_ttl,
        )
        .await?;
        Ok(Sessions {
            stash,
            keys,
            sealer: RefreshSealer::new(&derive),
            derive,
            clock,
            settings,
            revocations: Arc::new(revocations),
            datacenters,
            peer_keys,
        })
    }

    /// This datacenter and its peers.
    pub fn datacenters(&self) -> &Datacenters {
        &self.datacenters
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
        if let Some(found) = self.record_at(&self.datacenters.local, session_id).await? {
            return Ok(Some(found));
        }
        for peer in &self.datacenters.peers {
            if let Some(found) = self.record_at(peer, session_id).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The stash token and record of session `session_id` if `datacenter` holds it.
    pub(super) async fn record_at(
        &self,
        datacenter: &str,
        session_id: &str,
    ) -> Result<Option<(String, pb::SessionRecord)>, SessionError> {
        // A record lives under a token derived from its session id; one written before
        // that is found through its index entry. Both are read in one call.
        let record_token = self.derive.token_at(datacenter, "session", session_id);
        let index = self.derive.token_at(datacenter, "session-id", session_id);
        let mut found = self
            .stash
            .get_many(vec![record_token.clone(), index])
            .await?
            .into_iter()
            .map(Lookup::found);
        let (record, indexed) = (found.next().flatten(), found.next().flatten());
        if let Some(bytes) = record {
            return Ok(Some((record_token, decode_record(&bytes, "session")?)));
        }
        let Some(token) = indexed else {
            return Ok(None);
        };
        let token = String::from_utf8(token)
            .map_err(|_| SessionError::Stash("a session index entry is corrupt".into()))?;
        if token == record_token {
            return Ok(None);
        }
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

    /// The published keys: this datacenter's and its peers'.
    pub fn jwks(&self) -> tessera_verify::Jwks {
        merged(self.own_jwks(), &self.peer_keys)
    }

    /// The keys this datacenter signs with.
    pub fn own_jwks(&self) -> tessera_verify::Jwks {
        self.keys.jwks(self.clock.now())
    }

    /// Takes in the keys peer `datacenter` publishes now.
    pub fn set_peer_keys(
        &self,
        datacenter: &str,
        jwks: tessera_verify::Jwks,
    ) -> Result<(), SessionError> {
        if self.peer_keys.set(datacenter, jwks)? {
            self.revocations.verifier().set_keys(&self.jwks());
            tracing::info!(datacenter, "took in a peer datacenter's session keys");
        }
        Ok(())
    }

    /// The home datacenter of `refresh_token`: the one its prefix names (tokens without
    /// one were issued here before refresh tokens named their datacenter).
    pub(super) fn home_of<'t>(&'t self, refresh_token: &'t str) -> Result<&'t str, SessionError> {
        let Some((home, _)) = refresh_token.split_once('.') else {
            return Ok(&self.datacenters.local);
        };
        if self.datacenters.knows(home) {
            Ok(home)
        } else {
            Err(SessionError::UnknownDatacenter {
                datacenter: home.chars().take(32).collect(),
            })
        }
    }

    /// The stash token of `refresh_token`'s `purpose` record (its grant, its rotation), at
    /// its home datacenter.
    pub(super) fn refresh_record(
        &self,
        purpose: &str,
        refresh_token: &str,
    ) -> Result<String, SessionError> {
        let home = self.home_of(refresh_token)?;
        Ok(self.derive.token_at(home, purpose, refresh_token))
    }

    /// The stash token `refresh_token`'s record of `purpose` ("refresh" for its stored
    /// grant, "rotation") lives at, for tests that store what an older release wrote.
    #[cfg(feature = "test-util")]
    pub fn refresh_record_token(
        &self,
        purpose: &str,
        refresh_token: &str,
    ) -> Result<String, SessionError> {
        self.refresh_record(purpose, refresh_token)
    }

    /// The stash token of session `session_id`'s record in `datacenter`, for tests that
    /// store what an older release wrote.
    #[cfg(feature = "test-util")]
    pub fn session_record_token(&self, datacenter: &str, session_id: &str) -> String {
        self.derive.token_at(datacenter, "session", session_id)
    }

    /// Reads the key directory again, taking in a rotation another replica made.
    pub fn reload_keys(&self) -> Result<(), SessionError> {
        let before = self.keys.jwks(self.clock.now());
        self.keys.reload()?;
        let after = self.keys.jwks(self.clock.now());
        if before != after {
            self.revocations.verifier().set_keys(&self.jwks());
            tracing::info!("signing keys changed on disk; reloaded");
        }
        Ok(())
    }

    /// Makes a new signing key active.
    pub fn rotate_keys(&self) -> Result<(String, Vec<String>), SessionError> {
        let now = self.clock.now();
        let active = self.keys.rotate(now)?;
        let jwks = self.keys.jwks(now);
        self.revocations.verifier().set_keys(&self.jwks());
        Ok((
            active.kid().to_owned(),
            jwks.keys.into_iter().map(|k| k.kid).collect(),
        ))
    }
}

/// `own` followed by every peer key whose `kid` it does not already hold.
fn merged(mut own: tessera_verify::Jwks, peers: &PeerKeys) -> tessera_verify::Jwks {
    for key in peers.keys() {
        if !own.keys.iter().any(|k| k.kid == key.kid) {
            own.keys.push(key);
        }
    }
    own
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
