//! The gRPC face of the stash: authorize the caller, route the call to the token's home
//! datacenter, translate between protobuf and the stash's types.

mod peers;
mod service;

pub use peers::{forwarded_status, PeerClient, PeerRoute, Peers};
pub use service::StashService;
