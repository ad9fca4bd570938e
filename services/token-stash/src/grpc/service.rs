use std::sync::Arc;

use tessera_mtls::AccessPolicy;
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_server::TokenStash;
use tonic::{Request, Response, Status};

use super::peers::{forwarded_status, PeerRoute, Peers};
use crate::stash::PutInput;
use crate::store::{Store, StoredEntry};
use crate::token::{Namespace, Owner};
use crate::{Stash, Token};

/// The `tessera.stash.v1.TokenStash` service.
#[derive(Debug)]
pub struct StashService<S> {
    stash: Arc<Stash<S>>,
    access: AccessPolicy,
    peers: Peers,
}

impl<S> StashService<S> {
    /// Serves `stash`, letting in the callers `access` allows and forwarding calls about
    /// other datacenters' tokens to `peers`.
    pub fn new(stash: Arc<Stash<S>>, access: AccessPolicy, peers: Peers) -> Self {
        StashService {
            stash,
            access,
            peers,
        }
    }
}

fn parse_token(text: &str) -> Result<Token, Status> {
    Token::try_from(text).map_err(|e| e.to_status())
}

fn entry_fields(entry: StoredEntry) -> (Vec<u8>, String, String, i64) {
    (
        entry.value,
        entry.namespace,
        entry.owner,
        entry.expires_at.as_i64(),
    )
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
        } = request.into_inner();
        let input = PutInput::parse(&namespace, value, ttl_seconds, single_use, &owner)
            .inspect_err(|e| self.stash.metrics().failure("put", e))?;
        let (token, expires_at) = self.stash.put(input).await?;
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
        let token = parse_token(&request.get_ref().token)?;
        // Single-use takes always run at the home datacenter, so a token can never be
        // taken twice across datacenters.
        match self.peers.route(&token)? {
            PeerRoute::Local => {
                let (value, namespace, owner, expires_at_unix_ms) =
                    entry_fields(self.stash.take(&token).await?);
                Ok(Response::new(pb::TakeResponse {
                    value,
                    namespace,
                    owner,
                    expires_at_unix_ms,
                }))
            }
            PeerRoute::Remote {
                datacenter,
                mut client,
            } => {
                self.stash.metrics().forwarded.inc("Take");
                client
                    .take(request.into_inner())
                    .await
                    .map_err(|s| forwarded_status(&datacenter, s))
            }
        }
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        self.access.authorize("Get", &request)?;
        let token = parse_token(&request.get_ref().token)?;
        match self.peers.route(&token)? {
            PeerRoute::Local => {
                let (value, namespace, owner, expires_at_unix_ms) =
                    entry_fields(self.stash.get(&token).await?);
                Ok(Response::new(pb::GetResponse {
                    value,
                    namespace,
                    owner,
                    expires_at_unix_ms,
                }))
            }
            PeerRoute::Remote {
                datacenter,
                mut client,
            } => {
                self.stash.metrics().forwarded.inc("Get");
                client
                    .get(request.into_inner())
                    .await
                    .map_err(|s| forwarded_status(&datacenter, s))
            }
        }
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.access.authorize("Delete", &request)?;
        let token = parse_token(&request.get_ref().token)?;
        match self.peers.route(&token)? {
            PeerRoute::Local => {
                let existed = self.stash.delete(&token).await?;
                Ok(Response::new(pb::DeleteResponse { existed }))
            }
            PeerRoute::Remote {
                datacenter,
                mut client,
            } => {
                self.stash.metrics().forwarded.inc("Delete");
                client
                    .delete(request.into_inner())
                    .await
                    .map_err(|s| forwarded_status(&datacenter, s))
            }
        }
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
