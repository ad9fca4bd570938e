//! The internal services the login service calls over mutual TLS: the session service
//! and the token stash.

use std::time::Duration;

use tessera_mtls::{ServiceIdentity, TlsFiles};
use tessera_proto::session::v1 as pb;
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tessera_stash_client::{Derivation, StashClient};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::config::LoginConfig;
use crate::LoginError;

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// A refusal from the session service: its stable code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRefusal {
    /// gRPC status code.
    pub status: tonic::Code,
    /// The session service's stable code (its `tessera-code` metadata), e.g. `soft_expired`.
    pub code: String,
    /// What happened and what to do, for people.
    pub message: String,
}

impl SessionRefusal {
    fn from_status(status: tonic::Status) -> Self {
        SessionRefusal {
            status: status.code(),
            code: tessera_service::code_of(&status)
                .unwrap_or_default()
                .to_owned(),
            message: status.message().to_owned(),
        }
    }

    /// Whether the service could not answer (as opposed to refusing).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.status,
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Internal
                | tonic::Code::Unknown
        )
    }
}

impl From<SessionRefusal> for LoginError {
    fn from(refusal: SessionRefusal) -> Self {
        LoginError::Backend {
            service: "the session service",
            message: format!("{:?} {}: {}", refusal.status, refusal.code, refusal.message),
        }
    }
}

/// Clients of the session service and the stash. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Backends {
    sessions: SessionJwtClient<InterceptedService<Channel, Interceptor>>,
    /// The token stash.
    pub stash: StashClient,
    /// Stash tokens the login service can compute again (code redemption records).
    pub derive: Derivation,
}

impl Backends {
    /// Clients for the upstreams in `config`, presenting `tls`.
    pub fn connect(config: &LoginConfig, tls: &TlsFiles) -> Result<Self, LoginError> {
        let channel = tls
            .connector_to(&ServiceIdentity::session_jwt())
            .and_then(|connector| {
                connector.lazy_channel(
                    &config.session_jwt.url,
                    Duration::from_secs(2),
                    Duration::from_secs(5),
                )
            })
            .map_err(|e| LoginError::Config(format!("session_jwt: {e}")))?;
        let interceptor: Interceptor = tessera_telemetry::trace_context::propagate;
        let stash = StashClient::connect(&config.stash.url, tls)?;
        let (derive, created) = Derivation::load_or_create(
            &config.secrets_dir.join("derive.key"),
            &config.stash.datacenter,
        )?;
        if created {
            tracing::warn!(
                "generated a new login derivation secret; replicas must share the secrets folder"
            );
        }
        Ok(Backends {
            sessions: SessionJwtClient::with_interceptor(channel, interceptor),
            stash,
            derive,
        })
    }

    /// Starts a session.
    pub async fn issue(
        &self,
        request: pb::IssueRequest,
    ) -> Result<pb::SessionTokens, SessionRefusal> {
        self.sessions
            .clone()
            .issue(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(SessionRefusal::from_status)
    }

    /// Refreshes a session of `audience`.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        audience: &str,
    ) -> Result<pb::SessionTokens, SessionRefusal> {
        self.sessions
            .clone()
            .refresh(pb::RefreshRequest {
                refresh_token: refresh_token.to_owned(),
                audience: audience.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(SessionRefusal::from_status)
    }

    /// Verifies a session token for `audience` against the service's current revocations.
    pub async fn verify(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<pb::VerifyResponse, SessionRefusal> {
        self.sessions
            .clone()
            .verify(pb::VerifyRequest {
                token: token.to_owned(),
                audience: audience.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(SessionRefusal::from_status)
    }

    /// Revokes; how many sessions were named.
    pub async fn revoke(&self, request: pb::RevokeRequest) -> Result<u64, SessionRefusal> {
        self.sessions
            .clone()
            .revoke(request)
            .await
            .map(|r| r.into_inner().sessions_revoked)
            .map_err(SessionRefusal::from_status)
    }

    /// Every revocation in force at the session service, then each new one as it is made.
    pub async fn revocations(&self) -> Result<tonic::Streaming<pb::Revocation>, SessionRefusal> {
        self.sessions
            .clone()
            .stream_revocations(pb::StreamRevocationsRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(SessionRefusal::from_status)
    }

    /// The session service's published keys.
    pub async fn session_jwks(&self) -> Result<tessera_verify::Jwks, LoginError> {
        let reply = self
            .sessions
            .clone()
            .get_jwks(pb::GetJwksRequest::default())
            .await
            .map_err(SessionRefusal::from_status)?;
        serde_json::from_str(&reply.into_inner().jwks_json).map_err(|e| LoginError::Backend {
            service: "the session service",
            message: format!("unreadable JWKS: {e}"),
        })
    }
}

/// Revocation scopes, spelled once.
pub fn revoke_session(session_id: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        scope: Some(pb::revoke_request::Scope::SessionId(session_id.to_owned())),
        audience: String::new(),
    }
}

/// Revokes every session of a user (one epoch at the session service).
pub fn revoke_user(user_id: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        scope: Some(pb::revoke_request::Scope::UserId(user_id.to_owned())),
        audience: String::new(),
    }
}

/// Revokes a central session and every site session derived from it.
pub fn revoke_family(central_session_id: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        scope: Some(pb::revoke_request::Scope::SessionFamilyId(
            central_session_id.to_owned(),
        )),
        audience: String::new(),
    }
}

/// Revokes the session of a refresh token, if it belongs to `audience`.
pub fn revoke_refresh_token(refresh_token: &str, audience: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        scope: Some(pb::revoke_request::Scope::RefreshToken(
            refresh_token.to_owned(),
        )),
        audience: audience.to_owned(),
    }
}
