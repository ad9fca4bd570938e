//! Starting a session and minting its tokens.

use std::time::Duration;

use prost::Message;
use tessera_clock::UnixMillis;
use tessera_proto::session::v1 as pb;
use tessera_verify::Claims;

use super::{check_len, Sessions};
use crate::derive::random_text;
use crate::SessionError;

impl Sessions {
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
    pub(super) async fn mint(
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
        // The refresh token names this datacenter: its exchange is decided here alone.
        let refresh_token = format!("{}.{}", self.datacenters.local, random_text(24)?);
        let grant = pb::RefreshGrant {
            session_record: record_token.to_owned(),
            session_id: record.session_id.clone(),
            generation,
        };
        let grant_token = self.refresh_record("refresh", &refresh_token)?;
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
        let latest = self.revocations.latest_epoch(user_id);
        (now.0 / 1000).max(latest.0.div_ceil(1000))
    }
}
