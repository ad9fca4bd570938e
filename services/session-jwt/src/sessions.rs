//! Sessions: issuing, refreshing (rule F5) and revoking (rule F2). Every state change is
//! written to the token stash before the caller hears of it.
//!
//! Stash layout (all reusable entries):
//! - `session` (owner = user id): the [`SessionRecord`], for the session's hard lifetime.
//! - `session-id` at a token derived from the session id: the record's stash token; for
//!   a derived session owned by its parent session id, so a family is listed by owner.
//! - `refresh` at a token derived from the refresh token: the [`RefreshGrant`].
//! - `rotation` at a token derived from the refresh token: the pair it was exchanged for.
//! - `epoch` / `revoked` (owner `all`): user and global epochs, revoked session ids.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use prost::Message;
use tessera_clock::{SharedClock, UnixMillis};
use tessera_proto::session::v1 as pb;
use tessera_verify::{Claims, RevocationEvent, VerifiedSession, Verifier, VerifierConfig};
use tokio::sync::broadcast;

use crate::derive::{random_text, Derivation};
use crate::keys::KeyRing;
use crate::stash::{Lookup, Stash, Stored};
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
const EVENT_BUFFER: usize = 4096;

/// The session service's state and operations.
#[derive(Debug)]
pub struct Sessions {
    stash: Stash,
    keys: KeyRing,
    derive: Derivation,
    verifier: Verifier,
    clock: SharedClock,
    settings: Settings,
    events: broadcast::Sender<RevocationEvent>,
    /// Revocations still in force, replayed to new subscribers. Short lock, no awaits.
    in_force: Mutex<Vec<RevocationEvent>>,
    /// Revoked-before times per user; `""` is everyone.
    epochs: Mutex<HashMap<String, UnixMillis>>,
    /// Stash tokens of revocations already taken in, by namespace.
    seen: Mutex<HashMap<&'static str, HashSet<String>>>,
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, SessionError> {
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
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let sessions = Sessions {
            stash,
            keys,
            derive,
            verifier,
            clock,
            settings,
            events,
            in_force: Mutex::new(Vec::new()),
            epochs: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        };
        sessions.load_revocations().await?;
        Ok(sessions)
    }

    async fn load_revocations(&self) -> Result<(), SessionError> {
        self.sync_revocations_announcing(false).await.map(|_| ())
    }

    /// Takes in revocations other replicas stored since the last look, announcing them to
    /// this replica's subscribers; how many were new. Run every half second, so a logout
    /// on any replica reaches every subscriber within about a second.
    pub async fn sync_revocations(&self) -> Result<usize, SessionError> {
        self.sync_revocations_announcing(true).await
    }

    async fn sync_revocations_announcing(&self, announce: bool) -> Result<usize, SessionError> {
        let mut new = 0;
        for namespace in ["epoch", "revoked"] {
            let listed = self.stash.list(namespace, "all").await?;
            let unseen: Vec<String> = {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                // Forget what has expired from the stash, so the set stays bounded.
                let known = seen.entry(namespace).or_default();
                known.retain(|token| listed.contains(token));
                listed
                    .iter()
                    .filter(|t| !known.contains(*t))
                    .cloned()
                    .collect()
            };
            for token in unseen {
                let Some(bytes) = self.stash.get(&token).await? else {
                    continue;
                };
                let event = if namespace == "epoch" {
                    let epoch: pb::EpochRecord = decode(&bytes, "epoch")?;
                    epoch_event(
                        &epoch.user_id,
                        UnixMillis(epoch.before_unix_ms.max(0) as u64),
                    )
                } else {
                    let revoked: pb::SessionsRevoked = decode(&bytes, "revocation")?;
                    RevocationEvent::Sessions {
                        sids: revoked.session_ids,
                        until: UnixMillis(revoked.until_unix_ms.max(0) as u64),
                    }
                };
                self.mark_seen(namespace, token);
                if announce {
                    self.announce(event);
                } else {
                    self.remember(event);
                }
                new += 1;
            }
        }
        Ok(new)
    }

    fn mark_seen(&self, namespace: &'static str, token: String) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(namespace)
            .or_default()
            .insert(token);
    }

    /// Starts a session for `user_id` at `audience`.
    pub async fn issue(
        &self,
        request: pb::IssueRequest,
    ) -> Result<pb::SessionTokens, SessionError> {
        let user_id = request.user_id.trim();
        if user_id.is_empty() {
            return Err(SessionError::invalid(
                "user_id",
                "is empty: sessions are only issued to signed-in users, never to anonymous visitors",
            ));
        }
        check_len("user_id", user_id, 256)?;
        check_len("user_name", &request.user_name, 256)?;
        check_len("audience", &request.audience, 128)?;
        if request.audience.is_empty() {
            return Err(SessionError::invalid(
                "audience",
                "is empty: name the site (client id) the session is for",
            ));
        }
        if !request.parent_session_id.is_empty()
            && self.record_of(&request.parent_session_id).await?.is_none()
        {
            return Err(SessionError::SessionEnded(
                "the central session it derives from has ended",
            ));
        }
        let now = self.clock.now();
        let record = pb::SessionRecord {
            session_id: random_text(9)?,
            user_id: user_id.to_owned(),
            user_name: request.user_name.clone(),
            audience: request.audience.clone(),
            parent_session_id: request.parent_session_id.clone(),
            created_at_unix_ms: now.as_i64(),
            expires_at_unix_ms: now.saturating_add(self.settings.lifetime).as_i64(),
        };
        let lifetime = self.settings.lifetime;
        let record_token = self
            .stash
            .put("session", record.encode_to_vec(), lifetime, &record.user_id)
            .await?;
        // The index entry of a derived session is owned by its parent, so the family is
        // listed from the parent without a write of its own.
        let index = self.derive.token("session-id", &record.session_id);
        self.stash
            .put_at(
                &index,
                "session-id",
                record_token.clone().into_bytes(),
                lifetime,
                &record.parent_session_id,
            )
            .await?;
        self.mint(&record, &record_token, 0, now).await
    }

    /// Signs an access token and stores a fresh refresh grant for `record`.
    async fn mint(
        &self,
        record: &pb::SessionRecord,
        record_token: &str,
        generation: u32,
        now: UnixMillis,
    ) -> Result<pb::SessionTokens, SessionError> {
        let remaining = Duration::from_millis(
            u64::try_from(record.expires_at_unix_ms)
                .unwrap_or(0)
                .saturating_sub(now.0),
        );
        if remaining.is_zero() {
            return Err(SessionError::SessionEnded("it reached its hard lifetime"));
        }
        let refresh_token = random_text(24)?;
        let grant = pb::RefreshGrant {
            session_record: record_token.to_owned(),
            session_id: record.session_id.clone(),
            generation,
        };
        let grant_token = self.derive.token("refresh", &refresh_token);
        // The grant expires when the session would go idle (or hits its hard limit):
        // a refresh token unused that long no longer works.
        let grant_ttl = remaining.min(self.settings.idle);
        self.stash
            .put_at(
                &grant_token,
                "refresh",
                grant.encode_to_vec(),
                grant_ttl,
                "",
            )
            .await?;
        let soft_expiry = now.saturating_add(self.settings.soft_ttl).min(UnixMillis(
            u64::try_from(record.expires_at_unix_ms).unwrap_or(0),
        ));
        let claims = Claims {
            aud: record.audience.clone(),
            sub: record.user_id.clone(),
            sid: record.session_id.clone(),
            iat: self.issued_at(&record.user_id, now),
            exp: soft_expiry.0.div_ceil(1000),
            name: None,
        };
        Ok(pb::SessionTokens {
            access_token: self.keys.active()?.sign(&claims),
            refresh_token,
            session_id: record.session_id.clone(),
            access_expires_at_unix_ms: soft_expiry.as_i64(),
            session_expires_at_unix_ms: record.expires_at_unix_ms,
        })
    }

    /// `iat` for a token issued at `now`: never inside a second that an epoch of this
    /// user (or everyone's) ends in, or the new token would count as revoked.
    fn issued_at(&self, user_id: &str, now: UnixMillis) -> u64 {
        let epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        let latest = [epochs.get(user_id), epochs.get("")]
            .into_iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or_default();
        (now.0 / 1000).max(latest.0.div_ceil(1000))
    }

    /// Exchanges `refresh_token` for a new pair (see the module documentation). Four stash
    /// round trips: read the grant and the session, store the new grant, then record the
    /// rotation; the new grant is stored before the rotation that names it is visible, so
    /// no caller is ever handed a refresh token that does not exist yet.
    /// With a non-empty `audience`, only a session of that audience is refreshed.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        audience: &str,
    ) -> Result<pb::SessionTokens, SessionError> {
        let (grant, record) = self.grant_and_record(refresh_token).await?;
        if !audience.is_empty() && record.audience != audience {
            return Err(SessionError::invalid(
                "audience",
                "does not match: this refresh token belongs to another site's session; a site can only refresh its own sessions",
            ));
        }
        let now = self.clock.now();
        if self.revoked_by_epoch(&record) {
            return Err(SessionError::SessionEnded(
                "all of the user's sessions were logged out",
            ));
        }

        // Optimistic: mint a candidate pair and try to record it as this refresh token's
        // one rotation. Whoever records first wins; everyone else (a concurrent caller, a
        // retry, a reuse) finds the recorded rotation and is answered from it.
        let rotation_token = self.derive.token("rotation", refresh_token);
        let candidate = self
            .mint(&record, &grant.session_record, grant.generation + 1, now)
            .await?;
        let rotation = pb::Rotation {
            tokens: Some(candidate.clone()),
            rotated_at_unix_ms: now.as_i64(),
        };
        let remaining = Duration::from_millis(
            u64::try_from(record.expires_at_unix_ms)
                .unwrap_or(0)
                .saturating_sub(now.0)
                .max(1000),
        );
        match self
            .stash
            .put_at(
                &rotation_token,
                "rotation",
                rotation.encode_to_vec(),
                remaining,
                "",
            )
            .await?
        {
            Stored::Stored => Ok(candidate),
            Stored::AlreadyThere => {
                // Another refresher got there first: everyone answers with its pair, and
                // the grant this call stored is never handed out.
                let _ = self
                    .stash
                    .delete(&self.derive.token("refresh", &candidate.refresh_token))
                    .await;
                let bytes =
                    self.stash
                        .get(&rotation_token)
                        .await?
                        .ok_or(SessionError::SessionEnded(
                            "it was logged out during the refresh",
                        ))?;
                self.replay(&record, decode(&bytes, "rotation")?, now).await
            }
        }
    }

    /// Revokes the session `refresh_token` belongs to, if it belongs to `audience` (or
    /// `audience` is empty); how many sessions were revoked (0 or 1). An unknown or ended
    /// refresh token revokes nothing and is no error (RFC 7009).
    pub async fn revoke_by_refresh_token(
        &self,
        refresh_token: &str,
        audience: &str,
    ) -> Result<u64, SessionError> {
        match self.grant_and_record(refresh_token).await {
            Ok((_, record)) if audience.is_empty() || record.audience == audience => {
                self.revoke_session(&record.session_id).await
            }
            Ok(_) | Err(SessionError::UnknownRefreshToken | SessionError::SessionEnded(_)) => Ok(0),
            Err(other) => Err(other),
        }
    }

    /// The refresh grant of `refresh_token` and the session it belongs to.
    async fn grant_and_record(
        &self,
        refresh_token: &str,
    ) -> Result<(pb::RefreshGrant, pb::SessionRecord), SessionError> {
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(SessionError::UnknownRefreshToken);
        }
        let grant_bytes = match self
            .stash
            .lookup(&self.derive.token("refresh", refresh_token))
            .await?
        {
            Lookup::Found(bytes) => bytes,
            Lookup::Expired => {
                return Err(SessionError::SessionEnded(
                    "it was idle too long or reached its hard lifetime",
                ))
            }

            Lookup::Consumed | Lookup::Deleted => {
                return Err(SessionError::SessionEnded("it was logged out"))
            }
            Lookup::Unknown => return Err(SessionError::UnknownRefreshToken),
        };
        let grant: pb::RefreshGrant = decode(&grant_bytes, "refresh grant")?;
        let record_bytes =
            self.stash
                .get(&grant.session_record)
                .await?
                .ok_or(SessionError::SessionEnded(
                    "it was logged out or reached its hard lifetime",
                ))?;
        Ok((grant, decode(&record_bytes, "session")?))
    }

    /// A refresh token already exchanged: the same pair inside the grace window, and a
    /// revoked family after it.
    async fn replay(
        &self,
        record: &pb::SessionRecord,
        rotation: pb::Rotation,
        now: UnixMillis,
    ) -> Result<pb::SessionTokens, SessionError> {
        let rotated_at = UnixMillis(u64::try_from(rotation.rotated_at_unix_ms).unwrap_or(0));
        if now.saturating_since(rotated_at) <= self.settings.grace {
            return rotation
                .tokens
                .ok_or_else(|| SessionError::Stash("a stored rotation has no tokens".into()));
        }
        tracing::warn!(session = %record.session_id, user = %record.user_id, "refresh token reuse detected; revoking the session family");
        let family_root = if record.parent_session_id.is_empty() {
            &record.session_id
        } else {
            &record.parent_session_id
        };
        self.revoke_family(family_root).await?;
        Err(SessionError::RefreshTokenReused)
    }

    fn revoked_by_epoch(&self, record: &pb::SessionRecord) -> bool {
        let created = UnixMillis(u64::try_from(record.created_at_unix_ms).unwrap_or(0));
        let epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        let revoked = [epochs.get(&record.user_id), epochs.get("")]
            .into_iter()
            .flatten()
            .any(|before| created < *before);
        revoked
    }

    /// The stash token and record of session `session_id`, if it is alive.
    async fn record_of(
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
            Some(bytes) => Ok(Some((token, decode(&bytes, "session")?))),
            None => Ok(None),
        }
    }

    /// Revokes one session; how many were revoked (0 or 1).
    pub async fn revoke_session(&self, session_id: &str) -> Result<u64, SessionError> {
        self.revoke_sessions(vec![session_id.to_owned()]).await
    }

    /// Revokes a session and every session derived from it.
    pub async fn revoke_family(&self, session_id: &str) -> Result<u64, SessionError> {
        let mut sids = vec![session_id.to_owned()];
        for child_index in self.stash.list("session-id", session_id).await? {
            let Some(record_token) = self.stash.get(&child_index).await? else {
                continue;
            };
            let Ok(record_token) = String::from_utf8(record_token) else {
                continue;
            };
            if let Some(bytes) = self.stash.get(&record_token).await? {
                let child: pb::SessionRecord = decode(&bytes, "session")?;
                sids.push(child.session_id);
            }
        }
        self.revoke_sessions(sids).await
    }

    async fn revoke_sessions(&self, sids: Vec<String>) -> Result<u64, SessionError> {
        let mut revoked = 0;
        for sid in &sids {
            if let Some((token, _)) = self.record_of(sid).await? {
                if self.stash.delete(&token).await? {
                    revoked += 1;
                }
            }
        }
        // Tokens of these sessions verify until their soft expiry at the latest.
        let until = self.clock.now().saturating_add(self.settings.soft_ttl);
        let record = pb::SessionsRevoked {
            session_ids: sids.clone(),
            until_unix_ms: until.as_i64(),
        };
        self.stash
            .put(
                "revoked",
                record.encode_to_vec(),
                self.settings.soft_ttl,
                "all",
            )
            .await?;
        self.announce(RevocationEvent::Sessions { sids, until });
        Ok(revoked)
    }

    /// Revokes every session of `user_id` issued until now: O(1), whatever their number.
    pub async fn revoke_user(&self, user_id: &str) -> Result<(), SessionError> {
        if user_id.is_empty() {
            return Err(SessionError::invalid("user_id", "is empty"));
        }
        self.revoke_epoch(user_id).await
    }

    /// Revokes every session of everyone issued until now.
    pub async fn revoke_everyone(&self) -> Result<(), SessionError> {
        self.revoke_epoch("").await
    }

    async fn revoke_epoch(&self, user_id: &str) -> Result<(), SessionError> {
        let before = self.clock.now();
        let record = pb::EpochRecord {
            user_id: user_id.to_owned(),
            before_unix_ms: before.as_i64(),
        };
        // An epoch must outlive every session it ends, and every token of them.
        let keep = self.settings.lifetime + self.settings.soft_ttl;
        let stored = self
            .stash
            .put("epoch", record.encode_to_vec(), keep, "all")
            .await?;
        self.mark_seen("epoch", stored);
        self.announce(epoch_event(user_id, before));
        Ok(())
    }

    fn remember(&self, event: RevocationEvent) {
        if let RevocationEvent::User { sub, before } = &event {
            let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
            let kept = epochs.entry(sub.clone()).or_insert(*before);
            *kept = (*kept).max(*before);
        }
        if let RevocationEvent::Global { before } = &event {
            let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
            let kept = epochs.entry(String::new()).or_insert(*before);
            *kept = (*kept).max(*before);
        }
        self.verifier.apply(event.clone());
        self.in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    fn announce(&self, event: RevocationEvent) {
        self.remember(event.clone());
        // No subscribers is fine: they replay what is in force when they connect.
        let _ = self.events.send(event);
    }

    /// A subscription to new revocations, and every revocation in force now. Subscribe
    /// first, then read the snapshot: an event in between is seen twice, never missed.
    pub fn subscribe(&self) -> (Vec<RevocationEvent>, broadcast::Receiver<RevocationEvent>) {
        let receiver = self.events.subscribe();
        self.prune();
        let in_force = self
            .in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (in_force, receiver)
    }

    /// Forgets revocations that can no longer matter: session revocations past the soft
    /// expiry of their last token, and epochs older than the longest session (every
    /// session they ended has reached its hard limit by then). Keeps memory bounded.
    pub fn prune(&self) {
        let now = self.clock.now();
        let epoch_matters_for = self.settings.lifetime + self.settings.soft_ttl;
        let live = |before: &UnixMillis| before.saturating_add(epoch_matters_for) > now;
        self.in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|event| match event {
                RevocationEvent::Sessions { until, .. } => *until > now,
                RevocationEvent::User { before, .. } | RevocationEvent::Global { before } => {
                    live(before)
                }
            });
        self.epochs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, before| live(before));
        self.verifier.prune(now);
    }

    /// Verifies `token` for `audience` with the published keys and revocations.
    pub fn verify(&self, token: &str, audience: &str) -> Result<VerifiedSession, SessionError> {
        self.verifier
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
            self.verifier.set_keys(&after);
            tracing::info!("signing keys changed on disk; reloaded");
        }
        Ok(())
    }

    /// Makes a new signing key active.
    pub fn rotate_keys(&self) -> Result<(String, Vec<String>), SessionError> {
        let now = self.clock.now();
        let active = self.keys.rotate(now)?;
        let jwks = self.keys.jwks(now);
        self.verifier.set_keys(&jwks);
        Ok((
            active.kid().to_owned(),
            jwks.keys.into_iter().map(|k| k.kid).collect(),
        ))
    }
}

fn epoch_event(user_id: &str, before: UnixMillis) -> RevocationEvent {
    if user_id.is_empty() {
        RevocationEvent::Global { before }
    } else {
        RevocationEvent::User {
            sub: user_id.to_owned(),
            before,
        }
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
