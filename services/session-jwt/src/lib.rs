//! The Tessera session service: issues, refreshes and revokes Ed25519 session JWTs.
//!
//! - Tokens are compact EdDSA JWS of at most 300 bytes, verified by sites locally with
//!   `tessera-verify`.
//! - Refresh tokens rotate on every use; concurrent refreshes with one refresh token
//!   inside the grace window all get the identical pair, which is stored before it is
//!   returned; reuse after the window revokes the whole session family (rule F5).
//! - Revocation of a session, a session family, a user (epoch) or everyone (epoch) is
//!   announced on a stream; user and global revocations are O(1) (rule F2).
//! - Session state lives in the token stash, so its expiry and durability carry over.
//! - With peer datacenters, each publishes the others' keys and follows their revocation
//!   streams; a refresh token is exchanged only at the datacenter that issued it.

pub mod config;
pub mod grpc;
pub mod keys;
pub mod metrics;
pub mod peer_keys;
pub mod peers;
pub mod revocation;
pub mod server;
pub mod sessions;

mod derive;
mod error;
mod sealed;
mod stash;

pub use derive::Derivation;
pub use error::{ServiceError, SessionError};
pub use sessions::{Datacenters, Sessions, Settings};
pub use stash::Stash;
#[cfg(feature = "test-util")]
pub mod test_util;
