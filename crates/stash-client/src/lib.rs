//! The token stash as the other services see it: typed calls over mutual TLS, with the
//! stash's refusals turned into answers a caller can act on (`expired` is not `consumed`
//! is not `unknown`), and W3C trace context passed along on every call.

mod derive;

use std::time::Duration;

use tessera_mtls::{ServiceIdentity, TlsFiles};
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Code;

pub use derive::Derivation;

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// Why a stash call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum StashClientError {
    /// The client could not be set up (bad URL or TLS settings).
    #[error("stash client configuration: {0}")]
    Config(String),
    /// The stash refused the call or could not be reached.
    #[error("token stash {code:?}: {message}")]
    Failed {
        /// The gRPC status code.
        code: Code,
        /// The stash's message (it says what to do next).
        message: String,
    },
}

impl StashClientError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            StashClientError::Config(_) => "stash_config",
            StashClientError::Failed { .. } => "stash_failed",
        }
    }
}

fn failed(status: tonic::Status) -> StashClientError {
    StashClientError::Failed {
        code: status.code(),
        message: status.message().to_owned(),
    }
}

/// What a read or a take found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The value (for a take: this caller consumed it).
    Found(Vec<u8>),
    /// The entry reached its expiry.
    Expired,
    /// A single-use entry was already taken.
    Consumed,
    /// The entry was deleted.
    Deleted,
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

/// What a put under a caller-chosen token found.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// This call stored the value.
    Stored,
    /// Another caller stored under the token first.
    AlreadyThere,
}

/// One operation of an atomic [`StashClient::apply`].
#[derive(Debug, Clone)]
pub enum BatchOp {
    /// Store a reusable value under `token` unless something is or was there.
    Put {
        /// The chosen token (it names the datacenter that stores it).
        token: String,
        /// The kind of value.
        namespace: &'static str,
        /// The value.
        value: Vec<u8>,
        /// How long it stays readable.
        ttl: Duration,
        /// Who it belongs to, or empty.
        owner: String,
    },
    /// The live reusable entry under `token` must still be there.
    Require(String),
}

/// What an [`StashClient::apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Every check passed and every put is stored, durably.
    Done,
    /// Nothing was written: the put at `index` found its token in use.
    AlreadyThere {
        /// The operation's index in the call.
        index: usize,
    },
    /// Nothing was written: the entry the check at `index` requires is gone.
    Absent {
        /// The operation's index in the call.
        index: usize,
        /// Why it is gone.
        why: Lookup,
    },
}

/// A stash client presenting the caller's certificate. Cheap to clone; connects on first
/// use and reconnects by itself.
#[derive(Debug, Clone)]
pub struct StashClient {
    client: TokenStashClient<InterceptedService<Channel, Interceptor>>,
}

impl StashClient {
    /// A client of the stash at `url` (e.g. `https://127.0.0.1:7401`), presenting `tls`'s
    /// certificate and accepting only a server that proves it is the token stash.
    pub fn connect(url: &str, tls: &TlsFiles) -> Result<Self, StashClientError> {
        let channel = tls
            .connector_to(&ServiceIdentity::token_stash())
            .and_then(|connector| {
                connector.lazy_channel(url, Duration::from_secs(2), Duration::from_secs(5))
            })
            .map_err(|e| StashClientError::Config(format!("stash: {e}")))?;
        let interceptor: Interceptor = tessera_telemetry::trace_context::propagate;
        Ok(StashClient {
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
    ) -> Result<String, StashClientError> {
        let request = put_request(namespace, value, ttl, owner, String::new(), false);
        Ok(self
            .client
            .clone()
            .put(request)
            .await
            .map_err(failed)?
            .into_inner()
            .token)
    }

    /// Stores a value that exactly one [`StashClient::take`] can read; its new token.
    pub async fn put_single_use(
        &self,
        namespace: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<String, StashClientError> {
        let request = put_request(namespace, value, ttl, "", String::new(), true);
        Ok(self
            .client
            .clone()
            .put(request)
            .await
            .map_err(failed)?
            .into_inner()
            .token)
    }

    /// Stores a reusable value under `token` unless something is or was there.
    pub async fn put_at(
        &self,
        token: &str,
        namespace: &str,
        value: Vec<u8>,
        ttl: Duration,
        owner: &str,
    ) -> Result<Stored, StashClientError> {
        let request = put_request(namespace, value, ttl, owner, token.to_owned(), false);
        match self.client.clone().put(request).await {
            Ok(_) => Ok(Stored::Stored),
            Err(status) if status.code() == Code::AlreadyExists => Ok(Stored::AlreadyThere),
            Err(status) => Err(failed(status)),
        }
    }

    /// The value under `token`, or `None` if it is gone (unknown, deleted, expired).
    pub async fn get(&self, token: &str) -> Result<Option<Vec<u8>>, StashClientError> {
        Ok(self.lookup(token).await?.found())
    }

    /// The value under `token`, or why there is none.
    pub async fn lookup(&self, token: &str) -> Result<Lookup, StashClientError> {
        let request = pb::GetRequest {
            token: token.to_owned(),
        };
        match self.client.clone().get(request).await {
            Ok(reply) => Ok(Lookup::Found(reply.into_inner().value)),
            Err(status) => absent(status),
        }
    }

    /// Consumes the single-use value under `token`: exactly one caller ever gets it.
    pub async fn take(&self, token: &str) -> Result<Lookup, StashClientError> {
        let request = pb::TakeRequest {
            token: token.to_owned(),
        };
        match self.client.clone().take(request).await {
            Ok(reply) => Ok(Lookup::Found(reply.into_inner().value)),
            Err(status) => absent(status),
        }
    }

    /// Applies `ops` (at most 16, all of one datacenter, each token once) in one durable
    /// commit at that datacenter: all of them, or none and the reason.
    pub async fn apply(&self, ops: Vec<BatchOp>) -> Result<Applied, StashClientError> {
        let operations = ops
            .into_iter()
            .map(|op| pb::Operation {
                kind: Some(match op {
                    BatchOp::Put {
                        token,
                        namespace,
                        value,
                        ttl,
                        owner,
                    } => pb::operation::Kind::Put(put_request(
                        namespace, value, ttl, &owner, token, false,
                    )),
                    BatchOp::Require(token) => pb::operation::Kind::Require(token),
                }),
            })
            .collect();
        let status = match self
            .client
            .clone()
            .apply(pb::ApplyRequest { operations })
            .await
        {
            Ok(_) => return Ok(Applied::Done),
            Err(status) => status,
        };
        let Some(index) = status
            .metadata()
            .get(OPERATION_METADATA)
            .and_then(|v| v.to_str().ok()?.parse().ok())
        else {
            return Err(failed(status));
        };
        if status.code() == Code::AlreadyExists {
            return Ok(Applied::AlreadyThere { index });
        }
        match absent(status)? {
            Lookup::Found(_) => Err(StashClientError::Failed {
                code: Code::Internal,
                message: "the stash refused an Apply without saying why".into(),
            }),
            why => Ok(Applied::Absent { index, why }),
        }
    }

    /// The reusable values under `tokens` (at most 16, all of one datacenter), in order,
    /// each found or why not, in one call.
    pub async fn get_many(&self, tokens: Vec<String>) -> Result<Vec<Lookup>, StashClientError> {
        let count = tokens.len();
        let reply = self
            .client
            .clone()
            .get_many(pb::GetManyRequest { tokens })
            .await
            .map_err(failed)?
            .into_inner();
        if reply.entries.len() != count {
            return Err(StashClientError::Failed {
                code: Code::Internal,
                message: format!(
                    "the stash answered {} of {count} reads",
                    reply.entries.len()
                ),
            });
        }
        reply
            .entries
            .into_iter()
            .map(|entry| match entry.absent.as_str() {
                "" => Ok(Lookup::Found(entry.value)),
                code => lookup_of_code(code).ok_or_else(|| StashClientError::Failed {
                    code: Code::Internal,
                    message: format!("the stash answered a read with an unknown code {code:?}"),
                }),
            })
            .collect()
    }

    /// Deletes the entry under `token`; whether it was there.
    pub async fn delete(&self, token: &str) -> Result<bool, StashClientError> {
        let request = pb::DeleteRequest {
            token: token.to_owned(),
        };
        let reply = self.client.clone().delete(request).await.map_err(failed)?;
        Ok(reply.into_inner().existed)
    }

    /// The live tokens of `owner` in `namespace`.
    pub async fn list(
        &self,
        namespace: &str,
        owner: &str,
    ) -> Result<Vec<String>, StashClientError> {
        Ok(self.list_since(namespace, owner, 0).await?.0)
    }

    /// The live tokens of `owner` in `namespace` stored since `since_unix_ms` (the stash's
    /// clock; 0 for all), and the `since_unix_ms` that follows on from this list. Lists
    /// that follow one another overlap: skip tokens already seen.
    pub async fn list_since(
        &self,
        namespace: &str,
        owner: &str,
        since_unix_ms: i64,
    ) -> Result<(Vec<String>, i64), StashClientError> {
        let request = pb::ListByOwnerRequest {
            namespace: namespace.to_owned(),
            owner: owner.to_owned(),
            since_unix_ms,
        };
        let reply = self
            .client
            .clone()
            .list_by_owner(request)
            .await
            .map_err(failed)?
            .into_inner();
        Ok((reply.tokens, reply.next_since_unix_ms))
    }

    /// How many entries are live.
    pub async fn live_entries(&self) -> Result<u64, StashClientError> {
        let reply = self
            .client
            .clone()
            .stats(pb::StatsRequest {})
            .await
            .map_err(failed)?;
        Ok(reply.into_inner().live_entries)
    }
}

/// A refusal that means "no value here", told apart by the stash's stable code; any other
/// refusal is an error.
fn absent(status: tonic::Status) -> Result<Lookup, StashClientError> {
    // A malformed token is as good as unknown to a caller holding user input.
    if !matches!(
        status.code(),
        Code::NotFound | Code::FailedPrecondition | Code::InvalidArgument
    ) {
        return Err(failed(status));
    }
    let code = tessera_service::code_of(&status).unwrap_or_default();
    lookup_of_code(code).ok_or_else(|| failed(status))
}

/// The lookup a stable refusal code means, if it means "no value here".
fn lookup_of_code(code: &str) -> Option<Lookup> {
    Some(match code {
        "expired" => Lookup::Expired,
        "consumed" => Lookup::Consumed,
        "deleted" => Lookup::Deleted,
        "not_found" | "malformed_token" | "wrong_kind" | "unknown_datacenter" => Lookup::Unknown,
        _ => return None,
    })
}

/// The metadata key naming the refused operation of a batch (the stash's
/// `OPERATION_METADATA`).
const OPERATION_METADATA: &str = "tessera-operation";

fn put_request(
    namespace: &str,
    value: Vec<u8>,
    ttl: Duration,
    owner: &str,
    token: String,
    single_use: bool,
) -> pb::PutRequest {
    pb::PutRequest {
        namespace: namespace.to_owned(),
        value,
        // The stash takes 1 s to 24 h; callers stay inside that.
        ttl_seconds: u32::try_from(ttl.as_secs().clamp(1, 86_400)).unwrap_or(86_400),
        single_use,
        owner: owner.to_owned(),
        token,
    }
}
