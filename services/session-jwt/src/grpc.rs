//! The `tessera.session.v1.SessionJwt` service: authorize, translate, delegate.

use std::pin::Pin;
use std::sync::Arc;
use tessera_service::ServiceError as _;

use tessera_mtls::AccessPolicy;
use tessera_proto::session::v1 as pb;
use tessera_proto::session::v1::session_jwt_server::SessionJwt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::metrics::SessionMetrics;
use crate::revocation::Revocation;
use crate::sessions::Sessions;
use crate::SessionError;

/// The gRPC face of [`Sessions`].
#[derive(Debug)]
pub struct SessionService {
    sessions: Arc<Sessions>,
    access: AccessPolicy,
    metrics: Arc<SessionMetrics>,
    audit: tessera_audit_client::AuditSink,
}

impl SessionService {
    /// Serves `sessions` to the callers `access` allows.
    pub fn new(
        sessions: Arc<Sessions>,
        access: AccessPolicy,
        metrics: Arc<SessionMetrics>,
        audit: tessera_audit_client::AuditSink,
    ) -> Self {
        SessionService {
            sessions,
            access,
            metrics,
            audit,
        }
    }

    fn counted<T>(&self, result: Result<T, SessionError>) -> Result<T, Status> {
        result.map_err(|err| {
            self.metrics.failures.inc(err.code());
            self.witness_failure(&err);
            err.to_status()
        })
    }

    fn witness_failure(&self, err: &SessionError) {
        match err {
            SessionError::RefreshTokenReused => self.audit.record(event(
                "refresh_token_reuse",
                "refresh_token_reused",
                "",
                "",
                "",
                true,
            )),
            SessionError::Rejected(rejection) => {
                // The user and site are what a token that did not verify *claims*:
                // anyone can write them, so the event says so.
                let mut event = event(
                    "jwt_rejected",
                    rejection.code(),
                    rejection.user_id().unwrap_or_default(),
                    rejection.user_name().unwrap_or_default(),
                    rejection.audience().unwrap_or_default(),
                    true,
                );
                event.details.insert("subject".into(), "unverified".into());
                self.audit.record(event);
            }
            _ => {}
        }
    }
}

/// An audit event of this service.
fn event(
    kind: &str,
    reason: &str,
    user_id: &str,
    user_name: &str,
    site: &str,
    failure: bool,
) -> tessera_proto::audit::v1::Event {
    tessera_proto::audit::v1::Event {
        kind: kind.to_owned(),
        outcome: if failure { "failure" } else { "success" }.to_owned(),
        reason: reason.to_owned(),
        user_id: user_id.to_owned(),
        user_name: user_name.chars().take(64).collect(),
        site: site.to_owned(),
        ..Default::default()
    }
}

type RevocationStream = Pin<Box<dyn Stream<Item = Result<pb::Revocation, Status>> + Send>>;

#[tonic::async_trait]
impl SessionJwt for SessionService {
    async fn issue(
        &self,
        request: Request<pb::IssueRequest>,
    ) -> Result<Response<pb::SessionTokens>, Status> {
        self.access.authorize("Issue", &request)?;
        let request = request.into_inner();
        let (user_id, user_name, audience) = (
            request.user_id.clone(),
            request.user_name.clone(),
            request.audience.clone(),
        );
        let tokens = self.counted(self.sessions.issue(request).await)?;
        self.metrics.issued.inc();
        self.audit.record(event(
            "session_issued",
            "",
            &user_id,
            &user_name,
            &audience,
            false,
        ));
        Ok(Response::new(tokens))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::SessionTokens>, Status> {
        self.access.authorize("Refresh", &request)?;
        let request = request.into_inner();
        let tokens = self.counted(
            self.sessions
                .refresh(&request.refresh_token, &request.audience)
                .await,
        )?;
        self.metrics.refreshed.inc();
        self.audit.record(event(
            "session_refreshed",
            "",
            "",
            "",
            &request.audience,
            false,
        ));
        Ok(Response::new(tokens))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        use pb::revoke_request::Scope;
        self.access.authorize("Revoke", &request)?;
        let request = request.into_inner();
        let (scope, result) = match request.scope {
            Some(Scope::RefreshToken(token)) => (
                "session",
                self.sessions
                    .revoke_by_refresh_token(&token, &request.audience)
                    .await,
            ),
            Some(Scope::SessionId(sid)) => ("session", self.sessions.revoke_session(&sid).await),
            Some(Scope::SessionFamilyId(sid)) => {
                ("family", self.sessions.revoke_family(&sid).await)
            }
            Some(Scope::UserId(user)) => {
                ("user", self.sessions.revoke_user(&user).await.map(|()| 0))
            }
            Some(Scope::Everyone(true)) => (
                "everyone",
                self.sessions.revoke_everyone().await.map(|()| 0),
            ),
            Some(Scope::Everyone(false)) | None => {
                return Err(SessionError::invalid(
                    "scope",
                    "is missing: name a session_id, session_family_id, user_id, or set everyone",
                )
                .into())
            }
        };
        let sessions_revoked = self.counted(result)?;
        self.metrics.revoked.inc(scope);
        self.audit
            .record(event("session_revoked", scope, "", "", "", false));
        Ok(Response::new(pb::RevokeResponse { sessions_revoked }))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        self.access.authorize("Verify", &request)?;
        let request = request.into_inner();
        let session = self.counted(self.sessions.verify(&request.token, &request.audience))?;
        Ok(Response::new(pb::VerifyResponse {
            user_id: session.claims.sub,
            session_id: session.claims.sid,
            audience: session.claims.aud,
            expires_at_unix_ms: i64::try_from(session.claims.exp.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }))
    }

    async fn get_jwks(
        &self,
        request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        self.access.authorize("GetJwks", &request)?;
        let jwks = if request.get_ref().own_only {
            self.sessions.own_jwks()
        } else {
            self.sessions.jwks()
        };
        let jwks_json = serde_json::to_string(&jwks)
            .map_err(|e| Status::internal(format!("cannot encode the JWKS: {e}")))?;
        Ok(Response::new(pb::GetJwksResponse { jwks_json }))
    }

    type StreamRevocationsStream = RevocationStream;

    async fn stream_revocations(
        &self,
        request: Request<pb::StreamRevocationsRequest>,
    ) -> Result<Response<Self::StreamRevocationsStream>, Status> {
        self.access.authorize("StreamRevocations", &request)?;
        let (in_force, receiver) = self.sessions.revocations().subscribe();
        let snapshot = tokio_stream::iter(
            in_force
                .iter()
                .map(Revocation::to_proto)
                .map(Ok)
                .collect::<Vec<_>>(),
        );
        let live = BroadcastStream::new(receiver).map(|event| match event {
            Ok(revocation) => Ok(revocation.to_proto()),
            // A subscriber that fell behind must not miss revocations silently: end its
            // stream so it reconnects and receives everything in force again.
            Err(BroadcastStreamRecvError::Lagged(missed)) => Err(Status::data_loss(format!(
                "this subscriber fell {missed} revocations behind; subscribe again to receive every revocation in force"
            ))),
        });
        Ok(Response::new(Box::pin(snapshot.chain(live))))
    }

    async fn rotate_keys(
        &self,
        request: Request<pb::RotateKeysRequest>,
    ) -> Result<Response<pb::RotateKeysResponse>, Status> {
        self.access.authorize("RotateKeys", &request)?;
        let (active_kid, published_kids) = self.counted(self.sessions.rotate_keys())?;
        Ok(Response::new(pb::RotateKeysResponse {
            active_kid,
            published_kids,
        }))
    }
}
