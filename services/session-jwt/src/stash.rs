//! The session service's view of the token stash: typed calls over mutual TLS.

use std::time::Duration;

use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use crate::SessionError;

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The value.
    Found(Vec<u8>),
    /// The entry reached its expiry.
    Expired,
    /// The entry was deleted or consumed.
    Ended,
    /// No such entry (never stored, or long forgotten).
    Unknown,
}

impl Lookup {
    /// The value, if found.
    pub fn found(self) -> Option<Vec<u8>> {
        match self {
            Lookup::Found(value) => Some(value),
            _ => None,
        }
    }
}

/// What a put under a derived token found.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// This call stored the value.
    Stored,
    /// Another caller stored under the token first.
    AlreadyThere,
}

/// A stash client presenting the session service's certificate.
#[derive(Debug, Clone)]
pub struct Stash {
    client: TokenStashClient<InterceptedService<Channel, Interceptor>>,
}

fn stash_error(status: tonic::Status) -> SessionError {
    SessionError::Stash(format!("{:?}: {}", status.code(), status.message()))
}

impl Stash {
    /// A client of the stash at `url`, connecting on first use.
    pub fn connect(
        url: &str,
        tls: tonic::transport::ClientTlsConfig,
    ) -> Result<Self, SessionError> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| SessionError::Config(format!("stash.url {url:?}: {e}")))?
            .tls_config(tls)
            .map_err(|e| SessionError::Config(format!("stash tls: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        let interceptor: Interceptor = tessera_telemetry::trace_context::propagate;
        Ok(Stash {
            client: TokenStashClient::with_interceptor(channel, interceptor),
        })
    }

    /// Stores a reusable value; its new token.
    pub async fn put(
        &self,
        namespace: &str,
        value: Vec<u8>,
        ttl: Duration,
        owner: &str,
    ) -> Result<String, SessionError> {
        let reply = self
            .client
            .clone()
            .put(request(namespace, value, ttl, owner, String::new()))
            .await
            .map_err(stash_error)?;
        Ok(reply.into_inner().token)
    }

    /// Stores a reusable value under `token` unless something is or was there.
    pub async fn put_at(
        &self,
        token: &str,
        namespace: &str,
        value: Vec<u8>,
        ttl: Duration,
        owner: &str,
    ) -> Result<Stored, SessionError> {
        match self
            .client
            .clone()
            .put(request(namespace, value, ttl, owner, token.to_owned()))
            .await
        {
            Ok(_) => Ok(Stored::Stored),
            Err(status) if status.code() == Code::AlreadyExists => Ok(Stored::AlreadyThere),
            Err(status) => Err(stash_error(status)),
        }
    }

    /// The value under `token`, or `None` if it is gone (unknown, deleted, expired).
    pub async fn get(&self, token: &str) -> Result<Option<Vec<u8>>, SessionError> {
        Ok(self.lookup(token).await?.found())
    }

    /// The value under `token`, or why there is none.
    pub async fn lookup(&self, token: &str) -> Result<Lookup, SessionError> {
        match self
            .client
            .clone()
            .get(pb::GetRequest {
                token: token.to_owned(),
            })
            .await
        {
            Ok(reply) => Ok(Lookup::Found(reply.into_inner().value)),
            Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {
                let code = status
                    .metadata()
                    .get("tessera-code")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                Ok(match code {
                    "expired" => Lookup::Expired,
                    "consumed" | "deleted" => Lookup::Ended,
                    _ => Lookup::Unknown,
                })
            }
            Err(status) => Err(stash_error(status)),
        }
    }

    /// Deletes the entry under `token`; whether it was there.
    pub async fn delete(&self, token: &str) -> Result<bool, SessionError> {
        let reply = self
            .client
            .clone()
            .delete(pb::DeleteRequest {
                token: token.to_owned(),
            })
            .await
            .map_err(stash_error)?;
        Ok(reply.into_inner().existed)
    }

    /// The live tokens of `owner` in `namespace`.
    pub async fn list(&self, namespace: &str, owner: &str) -> Result<Vec<String>, SessionError> {
        let reply = self
            .client
            .clone()
            .list_by_owner(pb::ListByOwnerRequest {
                namespace: namespace.to_owned(),
                owner: owner.to_owned(),
            })
            .await
            .map_err(stash_error)?;
        Ok(reply.into_inner().tokens)
    }
}

fn request(
    namespace: &str,
    value: Vec<u8>,
    ttl: Duration,
    owner: &str,
    token: String,
) -> pb::PutRequest {
    pb::PutRequest {
        namespace: namespace.to_owned(),
        value,
        // The stash takes 1 s to 24 h; callers stay inside that.
        ttl_seconds: u32::try_from(ttl.as_secs().clamp(1, 86_400)).unwrap_or(86_400),
        single_use: false,
        owner: owner.to_owned(),
        token,
    }
}
