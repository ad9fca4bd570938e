//! Exchanging a refresh token: exactly one rotation per refresh token, recorded before
//! anyone is answered (rule F5).

use std::time::Duration;

use prost::Message;
use tessera_clock::UnixMillis;
use tessera_proto::session::v1 as pb;

use super::{decode_record as decode, Sessions};
use crate::stash::{Lookup, Stored};
use crate::SessionError;

impl Sessions {
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
        if self
            .revocations
            .revoked_by_epoch(&record.user_id, record.created_at_unix_ms)
        {
            return Err(SessionError::SessionEnded(
                "all of the user's sessions were logged out",
            ));
        }

        // Optimistic: mint a candidate pair and try to record it as this refresh token's
        // one rotation. Whoever records first wins; everyone else (a concurrent caller, a
        // retry, a reuse) finds the recorded rotation and is answered from it.
        if self.revocations.session_revoked(&record.session_id) {
            return Err(SessionError::SessionEnded("it was logged out"));
        }
        let rotation_token = self.refresh_record("rotation", refresh_token)?;
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
                    .delete(&self.refresh_record("refresh", &candidate.refresh_token)?)
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

    /// The refresh grant of `refresh_token` and the session it belongs to.
    pub(super) async fn grant_and_record(
        &self,
        refresh_token: &str,
    ) -> Result<(pb::RefreshGrant, pb::SessionRecord), SessionError> {
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(SessionError::UnknownRefreshToken);
        }
        let grant_bytes = match self
            .stash
            .lookup(&self.refresh_record("refresh", refresh_token)?)
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
}
