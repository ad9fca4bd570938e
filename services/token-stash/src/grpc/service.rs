use std::future::Future;
use std::sync::Arc;
use tessera_service::ServiceError as _;

use tessera_clock::UnixMillis;
use tessera_mtls::AccessPolicy;
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_server::TokenStash;
use tonic::{Request, Response, Status};

use super::peers::{forwarded_status, PeerClient, PeerRoute, Peers};
use crate::stash::{ApplyInput, PutInput};
use crate::store::Store;
use crate::token::{Namespace, Owner};
use crate::{Stash, StashError, Token};

/// The `tessera.stash.v1.TokenStash` service.
#[derive(Debug)]
pub struct StashService<S> {
    stash: Arc<Stash<S>>,
    access: AccessPolicy,
    peers: Peers,
    audit: tessera_audit_client::AuditSink,
}

impl<S> StashService<S> {
    /// Serves `stash`, letting in the callers `access` allows and forwarding calls about
    /// other datacenters' tokens to `peers`.
    pub fn new(
        stash: Arc<Stash<S>>,
        access: AccessPolicy,
        peers: Peers,
        audit: tessera_audit_client::AuditSink,
    ) -> Self {
        StashService {
            stash,
            access,
            audit,
            peers,
        }
    }
}

impl<S: Store> StashService<S> {
    /// Stores a put in this datacenter's store, under `chosen` if the caller chose it.
    async fn put_here(
        &self,
        request: pb::PutRequest,
        chosen: Option<Token>,
    ) -> Result<pb::PutResponse, StashError> {
        let pb::PutRequest {
            namespace,
            value,
            ttl_seconds,
            single_use,
            owner,
            token: _,
        } = request;
        let input = PutInput::parse(&namespace, value, ttl_seconds, single_use, &owner)
            .map(|input| match chosen {
                Some(token) => input.with_token(token),
                None => input,
            })
            .inspect_err(|e| self.stash.metrics().failure("put", e))?;
        let (token, expires_at) = self.stash.put(input).await.inspect_err(|e| {
            // A refused write is what broke logins elsewhere: the audit log must show it.
            if !matches!(e, StashError::AlreadyExists) {
                self.audit.record(tessera_proto::audit::v1::Event {
                    kind: "stash_write_failed".into(),
                    outcome: "failure".into(),
                    reason: e.code().into(),
                    details: [("namespace".to_owned(), namespace.clone())]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                });
            }
        })?;
        Ok(pb::PutResponse {
            token: token.expose().to_owned(),
            expires_at_unix_ms: expires_at.as_i64(),
        })
    }

    /// The token of operation `index` of an Apply, checked, and the operation.
    fn apply_input(&self, index: usize, op: pb::Operation) -> Result<ApplyInput, StashError> {
        let parsed = match op.kind {
            Some(pb::operation::Kind::Put(put)) => {
                Token::try_from(put.token.as_str()).and_then(|token| {
                    PutInput::parse(
                        &put.namespace,
                        put.value,
                        put.ttl_seconds,
                        put.single_use,
                        &put.owner,
                    )
                    .map(|input| ApplyInput::Put(input.with_token(token)))
                })
            }
            Some(pb::operation::Kind::Require(token)) => {
                Token::try_from(token.as_str()).map(ApplyInput::Require)
            }
            None => Err(StashError::invalid(
                "operations",
                "hold an empty operation; set put or require",
            )),
        };
        parsed.map_err(|e| e.in_operation(index))
    }

    fn parse_token(&self, operation: &'static str, text: &str) -> Result<Token, Status> {
        Token::try_from(text).map_err(|err| {
            self.stash.metrics().failure(operation, &err);
            err.to_status()
        })
    }

    /// Runs a call about `token` where the token lives: `local` here if this datacenter
    /// minted it, otherwise `remote` against the home datacenter's stash, whose answer is
    /// passed back as is (or as UNAVAILABLE naming the datacenter if it cannot be reached).
    async fn at_home<'a, Req, Resp, Local, LocalDone, Remote, RemoteDone>(
        &'a self,
        rpc: &'static str,
        token: Token,
        request: Request<Req>,
        local: Local,
        remote: Remote,
    ) -> Result<Response<Resp>, Status>
    where
        Local: FnOnce(&'a Stash<S>, Token, Req) -> LocalDone,
        LocalDone: Future<Output = Result<Resp, StashError>>,
        Remote: FnOnce(PeerClient, Req) -> RemoteDone,
        RemoteDone: Future<Output = Result<Response<Resp>, Status>>,
    {
        match self.peers.route(&token)? {
            PeerRoute::Local => Ok(Response::new(
                local(&self.stash, token, request.into_inner()).await?,
            )),
            PeerRoute::Remote { datacenter, client } => {
                self.stash.metrics().forwarded.inc(rpc);
                let started = tessera_telemetry::red::Stopwatch::start();
                let answer = remote(client, request.into_inner()).await;
                self.stash
                    .metrics()
                    .forward_seconds
                    .observe(rpc, started.elapsed());
                answer.map_err(|status| forwarded_status(&datacenter, status))
            }
        }
    }
}

#[tonic::async_trait]
impl<S: Store> TokenStash for StashService<S> {
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        self.access.authorize("Put", &request)?;
        if request.get_ref().token.is_empty() {
            return Ok(Response::new(
                self.put_here(request.into_inner(), None).await?,
            ));
        }
        // A chosen token names its home datacenter, and put-if-absent is decided there
        // alone, as takes are: two datacenters can never both store under one token.
        let token = self.parse_token("put", &request.get_ref().token)?;
        self.at_home(
            "Put",
            token,
            request,
            |_, token, request| self.put_here(request, Some(token)),
            |mut peer, request| async move { peer.put(request).await },
        )
        .await
    }

    async fn take(
        &self,
        request: Request<pb::TakeRequest>,
    ) -> Result<Response<pb::TakeResponse>, Status> {
        self.access.authorize("Take", &request)?;
        let token = self.parse_token("take", &request.get_ref().token)?;
        // Single-use takes always run at the home datacenter, so a token can never be
        // taken twice across datacenters.
        self.at_home(
            "Take",
            token,
            request,
            |stash, token, _| async move {
                let entry = stash.take(&token).await?;
                Ok(pb::TakeResponse {
                    value: entry.value,
                    namespace: entry.namespace,
                    owner: entry.owner,
                    expires_at_unix_ms: entry.expires_at.as_i64(),
                })
            },
            |mut peer, request| async move { peer.take(request).await },
        )
        .await
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        self.access.authorize("Get", &request)?;
        let token = self.parse_token("get", &request.get_ref().token)?;
        self.at_home(
            "Get",
            token,
            request,
            |stash, token, _| async move {
                let entry = stash.get(&token).await?;
                Ok(pb::GetResponse {
                    value: entry.value,
                    namespace: entry.namespace,
                    owner: entry.owner,
                    expires_at_unix_ms: entry.expires_at.as_i64(),
                })
            },
            |mut peer, request| async move { peer.get(request).await },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.access.authorize("Delete", &request)?;
        let token = self.parse_token("delete", &request.get_ref().token)?;
        self.at_home(
            "Delete",
            token,
            request,
            |stash, token, _| async move {
                let existed = stash.delete(&token).await?;
                Ok(pb::DeleteResponse { existed })
            },
            |mut peer, request| async move { peer.delete(request).await },
        )
        .await
    }

    async fn list_by_owner(
        &self,
        request: Request<pb::ListByOwnerRequest>,
    ) -> Result<Response<pb::ListByOwnerResponse>, Status> {
        self.access.authorize("ListByOwner", &request)?;
        let request = request.into_inner();
        let namespace = Namespace::try_from(request.namespace.as_str())?;
        let owner = Owner::try_from(request.owner.as_str())?;
        let since = match request.since_unix_ms {
            0 => None,
            since => Some(UnixMillis(u64::try_from(since).map_err(|_| {
                StashError::invalid(
                    "since_unix_ms",
                    "is negative; pass 0 to list all, or the previous answer's next_since_unix_ms",
                )
            })?)),
        };
        let (tokens, next_since) = self.stash.list_since(&namespace, &owner, since).await?;
        Ok(Response::new(pb::ListByOwnerResponse {
            tokens: tokens.iter().map(|t| t.expose().to_owned()).collect(),
            next_since_unix_ms: next_since.as_i64(),
        }))
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        self.access.authorize("Apply", &request)?;
        let Some(home) = request.get_ref().operations.first().map(operation_token) else {
            return Err(invalid_batch(self, "apply", "operations"));
        };
        let home = self.parse_token("apply", home)?;
        // The stash at home judges the whole batch, tokens of other datacenters included.
        self.at_home(
            "Apply",
            home,
            request,
            |stash, _, request| async move {
                let mut ops = Vec::with_capacity(request.operations.len());
                for (index, op) in request.operations.into_iter().enumerate() {
                    ops.push(self.apply_input(index, op)?);
                }
                let expiries = stash.apply(ops).await?;
                Ok(pb::ApplyResponse {
                    expires_at_unix_ms: expiries.iter().map(|at| at.as_i64()).collect(),
                })
            },
            |mut peer, request| async move { peer.apply(request).await },
        )
        .await
    }

    async fn get_many(
        &self,
        request: Request<pb::GetManyRequest>,
    ) -> Result<Response<pb::GetManyResponse>, Status> {
        self.access.authorize("GetMany", &request)?;
        let Some(home) = request.get_ref().tokens.first() else {
            return Err(invalid_batch(self, "get", "tokens"));
        };
        let home = self.parse_token("get", home)?;
        self.at_home(
            "GetMany",
            home,
            request,
            |stash, _, request| async move {
                let mut tokens = Vec::with_capacity(request.tokens.len());
                for (index, text) in request.tokens.iter().enumerate() {
                    tokens.push(Token::try_from(text.as_str()).map_err(|e| e.in_operation(index))?);
                }
                let found = stash.get_many(&tokens).await?;
                Ok(pb::GetManyResponse {
                    entries: found.into_iter().map(entry_of).collect(),
                })
            },
            |mut peer, request| async move { peer.get_many(request).await },
        )
        .await
    }

    async fn stats(
        &self,
        request: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::StatsResponse>, Status> {
        self.access.authorize("Stats", &request)?;
        let stats = self.stash.stats().await?;
        Ok(Response::new(pb::StatsResponse {
            live_entries: stats.live_entries,
            live_bytes: stats.live_bytes,
            capacity_entries: stats.capacity_entries,
        }))
    }
}

fn operation_token(op: &pb::Operation) -> &str {
    match &op.kind {
        Some(pb::operation::Kind::Put(put)) => &put.token,
        Some(pb::operation::Kind::Require(token)) => token,
        None => "",
    }
}

fn invalid_batch<S: Store>(
    service: &StashService<S>,
    operation: &'static str,
    field: &'static str,
) -> Status {
    let err = StashError::invalid(
        field,
        format!("is empty; send 1 to {} per call", crate::stash::MAX_BATCH),
    );
    service.stash.metrics().failure(operation, &err);
    err.to_status()
}

/// A GetMany answer: the entry, or the code of why there is none.
fn entry_of(found: Result<crate::store::StoredEntry, StashError>) -> pb::Entry {
    match found {
        Ok(entry) => pb::Entry {
            absent: String::new(),
            value: entry.value,
            namespace: entry.namespace,
            owner: entry.owner,
            expires_at_unix_ms: entry.expires_at.as_i64(),
        },
        Err(why) => pb::Entry {
            absent: why.code().to_owned(),
            ..Default::default()
        },
    }
}
