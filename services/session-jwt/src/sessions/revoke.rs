//! Ending sessions: one, a family, a user's or everyone's (rule F2). Each revocation is
//! stored in the stash, then announced through the [`crate::revocation::RevocationFeed`].

use prost::Message;
use tessera_proto::session::v1 as pb;
use tessera_verify::RevocationEvent;

use super::{decode_record as decode, Sessions};
use crate::revocation::epoch_event;
use crate::SessionError;

impl Sessions {
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
        self.revocations
            .announce(RevocationEvent::Sessions { sids, until });
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
        self.revocations.mark_seen("epoch", stored);
        self.revocations.announce(epoch_event(user_id, before));
        Ok(())
    }
}
