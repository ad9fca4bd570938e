use std::future::Future;
use std::sync::Arc;

use tessera_mtls::AccessPolicy;
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_server::TokenStash;
use tonic::{Request, Response, Status};

use super::peers::{forwarded_status, PeerClient, PeerRoute, Peers};
use crate::stash::PutInput;
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
        Local: FnOnce(&'a Stash<S>, Token) -> LocalDone,
        LocalDone: Future<Output = Result<Resp, StashError>>,
        Remote: FnOnce(PeerClient, Req) -> RemoteDone,
        RemoteDone: Future<Output = Result<Response<Resp>, Status>>,
    {
        match self.peers.route(&token)? {
            PeerRoute::Local => Ok(Response::new(local(&self.stash, token).await?)),
            PeerRoute::Remote { datacenter, client } => {
                self.stash.metrics().forwarded.inc(rpc);
                remote(client, request.into_inner())
                    .await
                    .map_err(|status| forwarded_status(&datacenter, status))
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
        let pb::PutRequest {
            namespace,
            value,
            ttl_seconds,
            single_use,
            owner,
            token,
        } = request.into_inner();
        let input = PutInput::parse(&namespace, value, ttl_seconds, single_use, &owner)
            .and_then(|input| match token.as_str() {
                "" => Ok(input),
                chosen => Ok(input.with_token(Token::try_from(chosen)?)),
            })
            .inspect_err(|e| self.stash.metrics().failure("put", e))?;
        let (token, expires_at) = self.stash.put(input).await.inspect_err(|e| {
            // A refused write is what broke logins elsewhere: the audit log must show it.
            if !matches!(e, crate::StashError::AlreadyExists) {
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
        Ok(Response::new(pb::PutResponse {
            token: token.expose().to_owned(),
            expires_at_unix_ms: expires_at.as_i64(),
        }))
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
            |stash, token| async move {
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
            |stash, token| async move {
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
            |stash, token| async move {
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
        let tokens = self.stash.list_by_owner(&namespace, &owner).await?;
        Ok(Response::new(pb::ListByOwnerResponse {
            tokens: tokens.iter().map(|t| t.expose().to_owned()).collect(),
        }))
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
