//! Exchanging a refresh token: exactly one rotation per refresh token, recorded before
//! anyone is answered (rule F5).

use std::time::Duration;

use prost::Message;
use tessera_clock::UnixMillis;
use tessera_proto::session::v1 as pb;

use super::{decode_record as decode, Sessions};
use crate::sealed::{Opened, MAX_REFRESH_TOKEN_BYTES};
use crate::stash::{Applied, BatchOp, Lookup};
use crate::SessionError;

/// The session a presented refresh token belongs to, and where its record lives.
#[derive(Debug)]
pub(super) struct Presented {
    pub(super) record: pb::SessionRecord,
    pub(super) record_token: String,
    pub(super) generation: u32,
}

impl Sessions {
    /// Exchanges `refresh_token` for a new pair (see the module documentation). One stash
    /// round trip for a sealed token: one commit at the session's datacenter that requires
    /// the session record to be live and records the rotation, all or nothing. The new
    /// refresh token carries its own grant, so it works the moment the commit is durable:
    /// no caller is ever handed a refresh token that does not work yet, and exactly one
    /// rotation wins. With a non-empty `audience`, only a session of that audience is
    /// refreshed.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        audience: &str,
    ) -> Result<pb::SessionTokens, SessionError> {
        let now = self.clock.now();
        let Presented {
            record,
            record_token,
            generation,
        } = self.presented(refresh_token, now).await?;
        if !audience.is_empty() && record.audience != audience {
            return Err(SessionError::invalid(
                "audience",
                "does not match: this refresh token belongs to another site's session; a site can only refresh its own sessions",
            ));
        }
        if self
            .revocations
            .revoked_by_epoch(&record.user_id, record.created_at_unix_ms)
        {
            return Err(SessionError::SessionEnded(
                "all of the user's sessions were logged out",
            ));
        }
        if self.revocations.session_revoked(&record.session_id) {
            return Err(SessionError::SessionEnded("it was logged out"));
        }

        // Optimistic: mint a candidate pair and try to record it as this refresh token's
        // one rotation. Whoever records first wins; everyone else (a concurrent caller, a
        // retry, a reuse) finds the recorded rotation and is answered from it.
        let rotation_token = self.refresh_record("rotation", refresh_token)?;
        let candidate = self.mint(&record, &record_token, generation.saturating_add(1), now)?;
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
        let rotation = BatchOp::Put {
            token: rotation_token.clone(),
            namespace: "rotation",
            value: rotation.encode_to_vec(),
            ttl: remaining,
            owner: String::new(),
        };
        let ops = vec![BatchOp::Require(record_token), rotation];
        let applied = if same_home(&ops) {
            self.stash.apply(ops).await?
        } else {
            self.apply_in_steps(ops).await?
        };
        match applied {
            Applied::Done => Ok(candidate),
            Applied::Absent { index: 0, .. } => Err(SessionError::SessionEnded(
                "it was logged out or reached its hard lifetime",
            )),
            Applied::AlreadyThere { index: 1 } => {
                // Another refresher got there first: everyone answers with its pair, and
                // nothing of this call's candidate was stored.
                let bytes =
                    self.stash
                        .get(&rotation_token)
                        .await?
                        .ok_or(SessionError::SessionEnded(
                            "it was logged out during the refresh",
                        ))?;
                self.replay(&record, decode(&bytes, "rotation")?, now).await
            }
            refused => Err(SessionError::Stash(format!(
                "a refresh's records were refused: {refused:?}"
            ))),
        }
    }

    /// The session `refresh_token` belongs to: opened from the token itself, or, for a
    /// token minted before refresh tokens were sealed, read from its stored grant.
    pub(super) async fn presented(
        &self,
        refresh_token: &str,
        now: UnixMillis,
    ) -> Result<Presented, SessionError> {
        if refresh_token.is_empty() || refresh_token.len() > MAX_REFRESH_TOKEN_BYTES {
            return Err(SessionError::UnknownRefreshToken);
        }
        let home = self.home_of(refresh_token)?;
        let content = match self.sealer.open(refresh_token) {
            Opened::Sealed(content) => content,
            Opened::Stored => return self.stored_grant(refresh_token).await,
            Opened::Unknown => return Err(SessionError::UnknownRefreshToken),
        };
        if content.idle_until_unix_ms <= now.as_i64() {
            return Err(SessionError::SessionEnded(
                "it was idle too long or reached its hard lifetime",
            ));
        }
        let record = content.record.unwrap_or_default();
        let record_token = if content.session_record.is_empty() {
            self.derive.token_at(home, "session", &record.session_id)
        } else {
            content.session_record
        };
        Ok(Presented {
            record,
            record_token,
            generation: content.generation,
        })
    }

    /// The session of a refresh token minted before refresh tokens were sealed, from the
    /// grant stored for it.
    async fn stored_grant(&self, refresh_token: &str) -> Result<Presented, SessionError> {
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
        let record = match grant.record {
            Some(record) => record,
            // A grant written before grants carried their record.
            None => {
                let record_bytes = self.stash.get(&grant.session_record).await?.ok_or(
                    SessionError::SessionEnded("it was logged out or reached its hard lifetime"),
                )?;
                decode(&record_bytes, "session")?
            }
        };
        Ok(Presented {
            record,
            record_token: grant.session_record,
            generation: grant.generation,
        })
    }

    /// The refresh of a token minted before refresh tokens named their session's
    /// datacenter, whose record and rotation may live in two datacenters: the check
    /// first, then the rotation. A put that a later step refuses is deleted again.
    async fn apply_in_steps(&self, ops: Vec<BatchOp>) -> Result<Applied, SessionError> {
        let mut written = Vec::new();
        for (index, op) in ops.into_iter().enumerate() {
            let put = matches!(op, BatchOp::Put { .. }).then(|| token_of(&op).to_owned());
            let refused = match self.stash.apply(vec![op]).await? {
                Applied::Done => {
                    written.extend(put);
                    continue;
                }
                Applied::AlreadyThere { .. } => Applied::AlreadyThere { index },
                Applied::Absent { why, .. } => Applied::Absent { index, why },
            };
            for token in written {
                let _ = self.stash.delete(&token).await;
            }
            return Ok(refused);
        }
        Ok(Applied::Done)
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

/// Whether every token of `ops` names one datacenter, so one Apply can hold them.
fn same_home(ops: &[BatchOp]) -> bool {
    let home = |op: &BatchOp| token_of(op).split_once('.').map(|(dc, _)| dc.to_owned());
    let mut homes = ops.iter().map(home);
    let first = homes.next().flatten();
    first.is_some() && homes.all(|h| h == first)
}

fn token_of(op: &BatchOp) -> &str {
    match op {
        BatchOp::Put { token, .. } | BatchOp::Require(token) => token,
    }
}
