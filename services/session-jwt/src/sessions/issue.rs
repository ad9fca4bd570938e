//! Starting a session and minting its tokens.

use prost::Message;
use tessera_clock::UnixMillis;
use tessera_proto::session::v1 as pb;
use tessera_verify::Claims;

use super::{check_len, Sessions};
use crate::derive::random_text;
use crate::stash::{Applied, BatchOp};
use crate::SessionError;

/// Fresh random tokens collided with stored ones: practically impossible, never ignored.
fn refused_new(refused: Applied) -> SessionError {
    SessionError::Stash(format!("a new session's records were refused: {refused:?}"))
}

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
        // The record and its index: one commit, one round trip. The refresh token carries
        // its own grant, sealed, so nothing more is stored for it.
        let record_token = self.derive.token("session", &record.session_id);
        let index = self.derive.token("session-id", &record.session_id);
        let tokens = self.mint(&record, &record_token, 0, now)?;
        let lifetime = self.settings.lifetime;
        let ops = vec![
            BatchOp::Put {
                token: record_token.clone(),
                namespace: "session",
                value: record.encode_to_vec(),
                ttl: lifetime,
                owner: record.user_id.clone(),
            },
            // The index entry of a derived session is owned by its parent, so the family
            // is listed from the parent without a write of its own.
            BatchOp::Put {
                token: index,
                namespace: "session-id",
                value: record_token.into_bytes(),
                ttl: lifetime,
                owner: record.parent_session_id.clone(),
            },
        ];
        let parent = &request.parent_session_id;
        if parent.is_empty() {
            return self.store_new(ops, tokens).await;
        }
        // The parent's record is checked in the same commit when this datacenter holds
        // it; otherwise (a peer's session) it is looked up first.
        let mut with_parent = ops.clone();
        with_parent.push(BatchOp::Require(self.derive.token("session", parent)));
        match self.stash.apply(with_parent).await? {
            Applied::Done => Ok(tokens),
            Applied::Absent { index: 2, .. } if self.record_of(parent).await?.is_some() => {
                self.store_new(ops, tokens).await
            }
            Applied::Absent { index: 2, .. } => Err(SessionError::SessionEnded(
                "the central session it derives from has ended",
            )),
            refused => Err(refused_new(refused)),
        }
    }

    async fn store_new(
        &self,
        ops: Vec<BatchOp>,
        tokens: pb::SessionTokens,
    ) -> Result<pb::SessionTokens, SessionError> {
        match self.stash.apply(ops).await? {
            Applied::Done => Ok(tokens),
            refused => Err(refused_new(refused)),
        }
    }

    /// Signs an access token for `record` and seals a refresh token of generation
    /// `generation` for it. Nothing is stored: the caller commits whatever must be
    /// durable before the pair is handed out.
    pub(super) fn mint(
        &self,
        record: &pb::SessionRecord,
        record_token: &str,
        generation: u32,
        now: UnixMillis,
    ) -> Result<pb::SessionTokens, SessionError> {
        let expires_at = UnixMillis(u64::try_from(record.expires_at_unix_ms).unwrap_or(0));
        if expires_at <= now {
            return Err(SessionError::SessionEnded("it reached its hard lifetime"));
        }
        // The refresh token names the session's datacenter, which holds its record: the
        // exchange and the check that the session lives are decided there, in one commit.
        let home = record_token
            .split_once('.')
            .map_or(self.datacenters.local.as_str(), |(dc, _)| dc);
        let derived = self.derive.token_at(home, "session", &record.session_id);
        let content = pb::SealedRefresh {
            record: Some(pb::SessionRecord {
                // Never shown by a refresh; left out to keep the token small.
                user_name: String::new(),
                ..record.clone()
            }),
            generation,
            // A refresh token unused this long no longer works.
            idle_until_unix_ms: now
                .saturating_add(self.settings.idle)
                .min(expires_at)
                .as_i64(),
            session_record: if derived == record_token {
                String::new()
            } else {
                record_token.to_owned()
            },
        };
        let refresh_token = self.sealer.seal(home, &content)?;
        let soft_expiry = now.saturating_add(self.settings.soft_ttl).min(expires_at);
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
