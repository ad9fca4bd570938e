//! The Tessera token stash: short-lived values behind opaque tokens.
//!
//! Login codes, session records and refresh-token families live here. The stash's promise
//! is exactness: an acknowledged value is readable until its expiry (never evicted, never
//! lost on a crash), never after it, a single-use value is taken exactly once, and a
//! token that is gone is reported as consumed, expired or unknown so callers can tell
//! people what happened.
//!
//! The library holds everything; the `tessera-token-stash` binary only parses
//! configuration and calls [`server::start`].

pub mod config;
pub mod grpc;
pub mod metrics;
pub mod server;
pub mod store;

mod error;
mod seal;
mod stash;
mod token;

pub use error::{ServiceError, StashError, CODE_METADATA, OPERATION_METADATA};
pub use metrics::StashMetrics;
pub use seal::TokenSealer;
pub use stash::{ApplyInput, PutInput, Stash, StashStats, LIST_OVERLAP, MAX_BATCH};
pub use token::{
    DatacenterId, Namespace, Owner, Token, TokenKey, Ttl, MAX_OWNER_BYTES, MAX_TTL,
    MAX_VALUE_BYTES, MIN_TTL,
};
#[cfg(feature = "test-util")]
pub mod test_util;
