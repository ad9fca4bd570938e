//! Keys and revocations from the session service over gRPC (feature `grpc`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::UnixMillis;
use tessera_proto::session::v1 as pb;
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tonic::transport::Channel;

use crate::{Jwks, KeySource, RevocationEvent, Verifier};

/// The session service as a source of keys and revocations.
#[derive(Debug, Clone)]
pub struct SessionServiceSource {
    client: SessionJwtClient<Channel>,
}

impl SessionServiceSource {
    /// A source over a (mutual TLS) channel to the session service.
    pub fn new(channel: Channel) -> Self {
        SessionServiceSource {
            client: SessionJwtClient::new(channel),
        }
    }

    /// Follows the revocation stream for as long as the returned future runs, applying
    /// every revocation to `verifier` and calling `applied` after each. On a broken stream
    /// it reconnects with backoff; each new subscription replays every revocation in
    /// force, so nothing is missed. While disconnected, the tokens' soft expiry bounds how
    /// stale the verifier can be.
    pub async fn follow(&self, verifier: Arc<Verifier>, applied: impl Fn() + Send + Sync) {
        const FIRST_RETRY: Duration = Duration::from_millis(100);
        const LAST_RETRY: Duration = Duration::from_secs(10);
        let mut retry = FIRST_RETRY;
        loop {
            match self
                .client
                .clone()
                .stream_revocations(pb::StreamRevocationsRequest {})
                .await
            {
                Ok(response) => {
                    retry = FIRST_RETRY;
                    let mut stream = response.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(message)) => {
                                if let Some(event) = from_proto(message) {
                                    verifier.apply(event);
                                    applied();
                                }
                            }
                            Ok(None) => break,
                            Err(status) => {
                                tracing::warn!(%status, "revocation stream broke; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(status) => tracing::warn!(%status, "cannot subscribe to revocations; retrying"),
            }
            // Backoff between reconnects: the service is down or restarting, and hammering
            // it helps nobody.
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(LAST_RETRY);
        }
    }
}

impl KeySource for SessionServiceSource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Jwks, String>> + Send + '_>> {
        Box::pin(async move {
            let reply = self
                .client
                .clone()
                .get_jwks(pb::GetJwksRequest::default())
                .await
                .map_err(|status| status.to_string())?;
            serde_json::from_str(&reply.into_inner().jwks_json).map_err(|e| e.to_string())
        })
    }
}

/// The protobuf form of a revocation, as the session service streams it.
pub fn to_proto(event: &RevocationEvent) -> pb::Revocation {
    use pb::revocation::Kind;
    let kind = match event {
        RevocationEvent::Sessions { sids, until } => Kind::Sessions(pb::SessionsRevoked {
            session_ids: sids.clone(),
            until_unix_ms: until.as_i64(),
            origin_datacenter: String::new(),
        }),
        RevocationEvent::User { sub, before } => Kind::User(pb::UserRevoked {
            user_id: sub.clone(),
            before_unix_ms: before.as_i64(),
        }),
        RevocationEvent::Global { before } => Kind::Everyone(pb::EveryoneRevoked {
            before_unix_ms: before.as_i64(),
        }),
    };
    pb::Revocation {
        kind: Some(kind),
        origin_datacenter: String::new(),
    }
}

/// The revocation a streamed message describes; `None` for a message of a kind this
/// version does not know.
pub fn from_proto(message: pb::Revocation) -> Option<RevocationEvent> {
    use pb::revocation::Kind;
    let at = |ms: i64| UnixMillis(u64::try_from(ms).unwrap_or(0));
    Some(match message.kind? {
        Kind::Sessions(s) => RevocationEvent::Sessions {
            sids: s.session_ids,
            until: at(s.until_unix_ms),
        },
        Kind::User(u) => RevocationEvent::User {
            sub: u.user_id,
            before: at(u.before_unix_ms),
        },
        Kind::Everyone(e) => RevocationEvent::Global {
            before: at(e.before_unix_ms),
        },
    })
}
