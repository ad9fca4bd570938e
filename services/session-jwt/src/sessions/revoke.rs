//! Ending sessions: one, a family, a user's or everyone's (rule F2). Each revocation is
//! stored in the stash, then announced through the [`crate::revocation::RevocationFeed`].
//! A peer datacenter's revocations are stored here too (so a restart never forgets them)
//! and reach the sessions derived here from what the peer revoked.

use std::time::Duration;

use prost::Message;
use tessera_clock::UnixMillis;
use tessera_proto::session::v1 as pb;
use tessera_verify::RevocationEvent;

use super::{decode_record as decode, Sessions};
use crate::revocation::{epoch_event, Revocation};
use crate::SessionError;

/// A peer's revocation as this datacenter stores and announces it.
struct PeerRecord {
    namespace: &'static str,
    /// What makes two copies (from two replicas, or a replay) one stash entry.
    identity: String,
    record: Vec<u8>,
    keep: Duration,
    event: RevocationEvent,
    /// The sessions it names (none for an epoch).
    sids: Vec<String>,
}

impl Sessions {
    /// Revokes the session `refresh_token` belongs to, if it belongs to `audience` (or
    /// `audience` is empty); how many sessions were revoked (0 or 1). An unknown or ended
    /// refresh token revokes nothing and is no error (RFC 7009).
    pub async fn revoke_by_refresh_token(
        &self,
        refresh_token: &str,
        audience: &str,
    ) -> Result<u64, SessionError> {
        match self.presented(refresh_token, self.clock.now()).await {
            Ok(presented) if audience.is_empty() || presented.record.audience == audience => {
                self.revoke_session(&presented.record.session_id).await
            }
            Ok(_) | Err(SessionError::UnknownRefreshToken | SessionError::SessionEnded(_)) => Ok(0),
            Err(other) => Err(other),
        }
    }

    /// Revokes one session; how many were revoked (0 or 1).
    pub async fn revoke_session(&self, session_id: &str) -> Result<u64, SessionError> {
        self.revoke_sessions(vec![session_id.to_owned()]).await
    }

    /// Revokes a session and every session derived from it.
    /// Sessions derived in other datacenters are ended there, when the revocation of
    /// their parent reaches them.
    pub async fn revoke_family(&self, session_id: &str) -> Result<u64, SessionError> {
        let mut sids = vec![session_id.to_owned()];
        sids.extend(self.children_here(session_id).await?);
        self.revoke_sessions(sids).await
    }

    /// The sessions derived from `session_id` whose records this datacenter holds.
    async fn children_here(&self, session_id: &str) -> Result<Vec<String>, SessionError> {
        let mut children = Vec::new();
        for child_index in self.stash.list("session-id", session_id).await? {
            let Some(record_token) = self.stash.get(&child_index).await? else {
                continue;
            };
            let Ok(record_token) = String::from_utf8(record_token) else {
                continue;
            };
            if let Some(bytes) = self.stash.get(&record_token).await? {
                let child: pb::SessionRecord = decode(&bytes, "session")?;
                children.push(child.session_id);
            }
        }
        Ok(children)
    }

    async fn revoke_sessions(&self, sids: Vec<String>) -> Result<u64, SessionError> {
        let mut revoked = 0;
        for sid in &sids {
            // A session whose record lives in an unreachable datacenter is still revoked
            // everywhere by the announcement below; its home deletes the record when the
            // revocation reaches it.
            match self.record_of(sid).await {
                Ok(Some((token, _))) => match self.stash.delete(&token).await {
                    Ok(true) => revoked += 1,
                    Ok(false) => {}
                    Err(err) => tracing::warn!(session = %sid, %err,
                        "cannot delete the session record now; its datacenter deletes it when the revocation arrives"),
                },
                Ok(None) => {}
                Err(err) => tracing::warn!(session = %sid, %err,
                    "cannot find the session record now; its datacenter deletes it when the revocation arrives"),
            }
        }
        // Tokens of these sessions verify until their soft expiry at the latest.
        let until = self.clock.now().saturating_add(self.settings.soft_ttl);
        let record = pb::SessionsRevoked {
            session_ids: sids.clone(),
            until_unix_ms: until.as_i64(),
            origin_datacenter: String::new(),
        };
        self.stash
            .put(
                "revoked",
                record.encode_to_vec(),
                self.settings.soft_ttl,
                "all",
            )
            .await?;
        self.revocations
            .announce_local(RevocationEvent::Sessions { sids, until });
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
            origin_datacenter: String::new(),
        };
        // An epoch must outlive every session it ends, and every token of them.
        let keep = self.settings.lifetime + self.settings.soft_ttl;
        let stored = self
            .stash
            .put("epoch", record.encode_to_vec(), keep, "all")
            .await?;
        self.revocations.mark_seen("epoch", stored);
        self.revocations
            .announce_local(epoch_event(user_id, before));
        Ok(())
    }

    /// How long ago, by this datacenter's clock, a peer made `event`: a session
    /// revocation's `until` is its making plus a soft expiry, an epoch's `before` is its
    /// making. Clocks of datacenters differ a little; this is the revocation lag.
    pub fn revocation_age(&self, event: &RevocationEvent) -> Duration {
        let soft_ttl = u64::try_from(self.settings.soft_ttl.as_millis()).unwrap_or(u64::MAX);
        let made = match event {
            RevocationEvent::Sessions { until, .. } => UnixMillis(until.0.saturating_sub(soft_ttl)),
            RevocationEvent::User { before, .. } | RevocationEvent::Global { before } => *before,
        };
        self.clock.now().saturating_since(made)
    }

    /// Takes in `revocation`, made in peer datacenter `revocation.origin`: stored here (one
    /// entry whichever replica stores it first), announced to this datacenter's
    /// subscribers, and carried to the sessions derived here from what it revoked.
    /// Whether it was new.
    pub async fn take_in_from_peer(&self, revocation: Revocation) -> Result<bool, SessionError> {
        if !self.revocations.is_new(&revocation.event) {
            return Ok(false);
        }
        let now = self.clock.now();
        let origin = revocation.origin.clone();
        let taken_in = match revocation.event {
            RevocationEvent::Sessions { sids, until } => {
                // The peer's clock judged `until`; keep the revocation at least a soft
                // expiry by this datacenter's clock, in case the peer's runs behind, and
                // no longer than any session can last, whatever the peer said.
                let kept_until = until
                    .max(now.saturating_add(self.settings.soft_ttl))
                    .min(now.saturating_add(self.settings.lifetime + self.settings.soft_ttl));
                let record = pb::SessionsRevoked {
                    session_ids: sids.clone(),
                    until_unix_ms: kept_until.as_i64(),
                    origin_datacenter: origin.clone(),
                };
                PeerRecord {
                    namespace: "revoked",
                    identity: format!("{origin}\0sessions\0{}\0{}", sids.join(","), until.0),
                    record: record.encode_to_vec(),
                    keep: kept_until.saturating_since(now),
                    event: RevocationEvent::Sessions {
                        sids: sids.clone(),
                        until: kept_until,
                    },
                    sids,
                }
            }
            RevocationEvent::User { sub, before } => self.peer_epoch(&origin, sub, before),
            RevocationEvent::Global { before } => self.peer_epoch(&origin, String::new(), before),
        };
        let PeerRecord {
            namespace,
            identity,
            record,
            keep,
            event,
            sids,
        } = taken_in;
        let token = self.derive.token(&format!("peer-{namespace}"), &identity);
        // A replay of what was taken in already (kept under its own, adjusted times).
        if self.revocations.has_seen(namespace, &token) {
            return Ok(false);
        }
        self.stash
            .put_at(
                &token,
                namespace,
                record,
                keep.max(Duration::from_secs(1)),
                "all",
            )
            .await?;
        self.revocations.mark_seen(namespace, token);
        self.revocations.announce(Revocation { event, origin });
        self.end_here(&sids, now).await?;
        Ok(true)
    }

    /// What to store and announce for a peer's epoch of `user_id` (everyone's when empty).
    fn peer_epoch(&self, origin: &str, user_id: String, before: UnixMillis) -> PeerRecord {
        let record = pb::EpochRecord {
            user_id: user_id.clone(),
            before_unix_ms: before.as_i64(),
            origin_datacenter: origin.to_owned(),
        };
        PeerRecord {
            namespace: "epoch",
            identity: format!("{origin}\0epoch\0{user_id}\0{}", before.0),
            record: record.encode_to_vec(),
            keep: self.settings.lifetime + self.settings.soft_ttl,
            event: epoch_event(&user_id, before),
            sids: Vec::new(),
        }
    }

    /// Deletes the records this datacenter holds of `sids` (revoked elsewhere), and
    /// revokes the sessions derived here from them.
    async fn end_here(&self, sids: &[String], now: UnixMillis) -> Result<(), SessionError> {
        let mut children = Vec::new();
        for sid in sids {
            if let Some((token, _)) = self.record_at(&self.datacenters.local, sid).await? {
                self.stash.delete(&token).await?;
            }
            children.extend(
                self.children_here(sid)
                    .await?
                    .into_iter()
                    .filter(|child| !self.revocations.session_revoked(child)),
            );
        }
        if !children.is_empty() {
            tracing::info!(sessions = children.len(), at = %now,
                "ending sessions derived here from sessions a peer datacenter revoked");
            self.revoke_sessions(children).await?;
        }
        Ok(())
    }
}
