//! Where entries live. One trait, [`Store`], two backends: [`EmbeddedStore`] (the default,
//! a data directory) and [`RedisStore`] (production). Both pass the same conformance suite
//! (`tests/it/conformance.rs`).
//!
//! Every operation takes the current time from its caller, so expiry is judged by the
//! stash's [`Clock`](tessera_clock::Clock) and tests move time instead of waiting.

mod embedded;
mod record;
mod redis;

use std::future::Future;
use std::time::Duration;

use tessera_clock::UnixMillis;

pub use self::embedded::{EmbeddedStore, EmbeddedStoreOptions};
pub use self::redis::{RedisStore, RedisStoreOptions};
use crate::token::{Namespace, Owner, TokenKey};
use crate::StashError;

/// How long the stash remembers that a token was consumed or expired, by default.
pub const DEFAULT_REMEMBER_FOR: Duration = Duration::from_secs(10 * 60);

/// An entry to store.
#[derive(Clone, Debug)]
pub struct NewEntry {
    /// The kind of value.
    pub namespace: Namespace,
    /// Who the entry belongs to, if anyone; owned entries are listed by owner.
    pub owner: Option<Owner>,
    /// The value itself.
    pub value: Vec<u8>,
    /// Single-use entries are read with take; reusable ones with get.
    pub single_use: bool,
    /// When the entry was stored.
    pub created_at: UnixMillis,
    /// When the entry stops being readable.
    pub expires_at: UnixMillis,
    /// The entry's token, sealed (see [`crate::TokenSealer`]); kept for ListByOwner.
    pub sealed_token: Vec<u8>,
}

/// An entry read back from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// The kind of value.
    pub namespace: String,
    /// The owner, or the empty string.
    pub owner: String,
    /// The value.
    pub value: Vec<u8>,
    /// When the entry was stored.
    pub created_at: UnixMillis,
    /// When the entry stops being readable.
    pub expires_at: UnixMillis,
}

/// One operation of an atomic [`Store::apply`].
#[derive(Clone, Debug)]
pub enum StoreOp {
    /// Store `entry` under `key` if nothing is or was there (as [`Store::put`]).
    Put {
        /// Where.
        key: TokenKey,
        /// What.
        entry: NewEntry,
    },
    /// Refuse the whole apply unless a live reusable entry is under `key`.
    Require {
        /// Where.
        key: TokenKey,
    },
}

impl StoreOp {
    /// The key the operation concerns.
    pub fn key(&self) -> &TokenKey {
        match self {
            StoreOp::Put { key, .. } | StoreOp::Require { key } => key,
        }
    }
}

/// Counts of what a store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Entries not yet expired.
    pub live_entries: u64,
    /// Bytes of values in those entries.
    pub live_bytes: u64,
}

/// Why a token that is no longer stored is gone, remembered for a bounded time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GoneReason {
    Consumed,
    Expired,
    Deleted,
}

impl GoneReason {
    pub(crate) fn as_byte(self) -> u8 {
        match self {
            GoneReason::Consumed => 1,
            GoneReason::Expired => 2,
            GoneReason::Deleted => 3,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(GoneReason::Consumed),
            2 => Some(GoneReason::Expired),
            3 => Some(GoneReason::Deleted),
            _ => None,
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "consumed" => Some(GoneReason::Consumed),
            "expired" => Some(GoneReason::Expired),
            "deleted" => Some(GoneReason::Deleted),
            _ => None,
        }
    }

    /// The error a read of a token gone for this reason answers with; `at` is when it went.
    pub(crate) fn into_error(self, at: UnixMillis) -> StashError {
        match self {
            GoneReason::Consumed => StashError::Consumed { at },
            GoneReason::Expired => StashError::Expired { at },
            GoneReason::Deleted => StashError::Deleted,
        }
    }
}

/// The operations a stash backend provides.
///
/// Guarantees every backend keeps (pinned by the conformance suite):
/// - an acknowledged `put` is readable until `expires_at`: never evicted; at capacity the
///   *put* fails and nothing stored is touched;
/// - no read returns an entry at or past its `expires_at`;
/// - `take` is atomic: of any number of concurrent takes of one token, exactly one wins;
/// - a consumed or expired token is reported as such for at least the configured memory
///   time (bounded in count), then as not found;
/// - `list_by_owner` lists only live entries;
/// - `put` never overwrites: a key that is stored or remembered gets `AlreadyExists`;
/// - `apply` is all or nothing, in one durable commit.
pub trait Store: Send + Sync + 'static {
    /// Stores `entry` under `key`, unless that would exceed `capacity` live entries or
    /// `key` is in use or remembered (a token is never used twice): put-if-absent.
    fn put(
        &self,
        key: TokenKey,
        entry: NewEntry,
        now: UnixMillis,
    ) -> impl Future<Output = Result<(), StashError>> + Send;

    /// Atomically reads and removes the single-use entry under `key`.
    fn take(
        &self,
        key: TokenKey,
        now: UnixMillis,
    ) -> impl Future<Output = Result<StoredEntry, StashError>> + Send;

    /// Reads the reusable entry under `key`.
    fn get(
        &self,
        key: TokenKey,
        now: UnixMillis,
    ) -> impl Future<Output = Result<StoredEntry, StashError>> + Send;

    /// Applies `ops` (distinct keys) in one atomic, durable step: either every check
    /// passes and every put is stored, or nothing is written and the error is the first
    /// refusal, as [`StashError::InOperation`] naming its index.
    fn apply(
        &self,
        ops: Vec<StoreOp>,
        now: UnixMillis,
    ) -> impl Future<Output = Result<(), StashError>> + Send;

    /// Reads the reusable entries under `keys`, each as [`Store::get`] would.
    fn get_many(
        &self,
        keys: Vec<TokenKey>,
        now: UnixMillis,
    ) -> impl Future<Output = Result<Vec<Result<StoredEntry, StashError>>, StashError>> + Send;

    /// Removes the entry under `key`; whether a live entry was there.
    fn delete(
        &self,
        key: TokenKey,
        now: UnixMillis,
    ) -> impl Future<Output = Result<bool, StashError>> + Send;

    /// The keys and sealed tokens of live entries owned by `owner` in `namespace`; with
    /// `since`, only those created at or after it, found without reading the others.
    fn list_by_owner(
        &self,
        namespace: &Namespace,
        owner: &Owner,
        since: Option<UnixMillis>,
        now: UnixMillis,
    ) -> impl Future<Output = Result<Vec<(TokenKey, Vec<u8>)>, StashError>> + Send;

    /// Counts live entries and bytes.
    fn stats(&self, now: UnixMillis)
        -> impl Future<Output = Result<StoreStats, StashError>> + Send;

    /// Removes entries that expired at or before `now` (remembering them as expired), and
    /// forgets tombstones past their memory time. Returns how many entries it removed.
    fn purge_expired(
        &self,
        now: UnixMillis,
    ) -> impl Future<Output = Result<u64, StashError>> + Send;

    /// The most live entries this store accepts.
    fn capacity(&self) -> u64;

    /// Finishes pending writes and releases the store, so it can be opened again.
    fn close(self) -> impl Future<Output = ()> + Send
    where
        Self: Sized;
}
