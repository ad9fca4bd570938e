pub use tessera_service::{ServiceError, CODE_METADATA};

use tessera_clock::UnixMillis;

/// Everything the stash can answer instead of a value. Each variant has a stable code
/// and maps to exactly one gRPC status ([`ServiceError`]), so the contract in
/// `stash.proto` is kept in one place.
#[derive(Debug, thiserror::Error)]
pub enum StashError {
    /// A request field is out of bounds.
    #[error("{field} {problem}")]
    InvalidArgument {
        field: &'static str,
        problem: String,
    },
    /// The token is not of the `<dc>.<random>` form.
    #[error("token is malformed: {0}; pass the token exactly as Put returned it")]
    MalformedToken(&'static str),
    /// Take on a reusable entry or Get on a single-use one.
    #[error("this token names a {actual} entry; use {use_instead} to read it")]
    WrongKind {
        actual: &'static str,
        use_instead: &'static str,
    },
    /// The token never existed, or the stash no longer remembers it.
    #[error("token not found: it was never issued here or is long gone; start the flow that issued it again")]
    NotFound,
    /// The token was deleted.
    #[error("token not found: it was deleted (for example by a logout); start the flow that issued it again")]
    Deleted,
    /// The single-use token was already taken.
    #[error(
        "token already used (consumed) at {at}: it works once; start the flow that issued it again"
    )]
    Consumed { at: UnixMillis },
    /// The token's time to live has passed.
    #[error("token expired at {at}: it is no longer valid; start the flow that issued it again")]
    Expired { at: UnixMillis },
    /// A put with a chosen token found it in use, or used within the memory window.
    #[error("token already in use: another caller stored under it first; read that entry instead")]
    AlreadyExists,
    /// Storing the value would exceed the configured capacity.
    #[error("stash is full ({capacity} live entries): nothing was stored and no entry was evicted; retry after entries expire, or raise capacity_entries")]
    CapacityExhausted { capacity: u64 },
    /// The store itself is out of room (Redis reached `maxmemory`).
    #[error("the store is full ({0}): nothing was stored and no entry was evicted; retry after entries expire, or give the store more memory")]
    StoreFull(String),
    /// The token was minted in a datacenter this stash has no peer for.
    #[error("token was minted in datacenter {dc:?}, which this stash has no peer for; add it under [peers]")]
    UnknownDatacenter { dc: String },
    /// The token's home datacenter could not be reached.
    #[error("datacenter {dc:?} is unreachable ({detail}); the token can only be used there, retry shortly")]
    PeerUnavailable { dc: String, detail: String },
    /// The store refused or failed an operation.
    #[error("storage failure: {0}")]
    Storage(String),
    /// A write reached the Redis primary but not the replicas it must reach in time.
    #[error("the write reached the Redis primary but only {acknowledged} of {wanted} replicas confirmed it within {timeout_ms} ms, so it is not answered as done (a failover could undo it); retry shortly, and check the replicas and their links")]
    NotReplicated {
        wanted: u32,
        acknowledged: i64,
        timeout_ms: u128,
    },
    /// The configured Redis may evict keys, which would lose unexpired tokens.
    #[error("Redis maxmemory-policy is {policy:?}, which lets Redis evict unexpired tokens; set `maxmemory-policy noeviction` (CONFIG SET maxmemory-policy noeviction, and in redis.conf) and start again")]
    RedisMayEvict { policy: String },
    /// Configuration is invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// One operation of an Apply was refused, so none of them was applied.
    #[error("operation {index} of the Apply was refused, so nothing in it was written: {refusal}")]
    InOperation {
        index: usize,
        refusal: Box<StashError>,
    },
}

impl ServiceError for StashError {
    /// A stable, machine-readable code; also the `reason` label in metrics.
    fn code(&self) -> &'static str {
        match self {
            StashError::InvalidArgument { .. } => "invalid_argument",
            StashError::MalformedToken(_) => "malformed_token",
            StashError::WrongKind { .. } => "wrong_kind",
            StashError::NotFound => "not_found",
            StashError::Deleted => "deleted",
            StashError::Consumed { .. } => "consumed",
            StashError::Expired { .. } => "expired",
            StashError::AlreadyExists => "already_exists",
            StashError::CapacityExhausted { .. } => "capacity_exhausted",
            StashError::StoreFull(_) => "store_full",
            StashError::UnknownDatacenter { .. } => "unknown_datacenter",
            StashError::PeerUnavailable { .. } => "peer_unavailable",
            StashError::Storage(_) => "storage",
            StashError::NotReplicated { .. } => "not_replicated",
            StashError::RedisMayEvict { .. } => "redis_may_evict",
            StashError::Config(_) => "config",
            StashError::InOperation { refusal, .. } => refusal.code(),
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            StashError::InvalidArgument { .. }
            | StashError::MalformedToken(_)
            | StashError::WrongKind { .. }
            | StashError::UnknownDatacenter { .. } => Code::InvalidArgument,
            StashError::NotFound | StashError::Deleted => Code::NotFound,
            StashError::AlreadyExists => Code::AlreadyExists,
            StashError::Consumed { .. } | StashError::Expired { .. } => Code::FailedPrecondition,
            StashError::CapacityExhausted { .. } | StashError::StoreFull(_) => {
                Code::ResourceExhausted
            }
            StashError::PeerUnavailable { .. } => Code::Unavailable,
            StashError::Storage(_) | StashError::NotReplicated { .. } => Code::Unavailable,
            StashError::RedisMayEvict { .. } | StashError::Config(_) => Code::Internal,
            StashError::InOperation { refusal, .. } => refusal.grpc_code(),
        }
    }
}

impl StashError {
    /// The refusal itself, whether or not it came from inside an Apply.
    pub fn refusal(&self) -> &StashError {
        match self {
            StashError::InOperation { refusal, .. } => refusal,
            other => other,
        }
    }

    pub(crate) fn in_operation(self, index: usize) -> Self {
        match self {
            // Storage failures concern the whole call, not one operation.
            StashError::Storage(_)
            | StashError::NotReplicated { .. }
            | StashError::StoreFull(_) => self,
            refusal => StashError::InOperation {
                index,
                refusal: Box::new(refusal),
            },
        }
    }

    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        StashError::InvalidArgument {
            field,
            problem: problem.into(),
        }
    }
}

impl From<tessera_service::ServeError> for StashError {
    fn from(err: tessera_service::ServeError) -> Self {
        StashError::Config(err.to_string())
    }
}

/// Names the refused operation of an Apply or GetMany by its index (from 0).
pub const OPERATION_METADATA: &str = "tessera-operation";

impl From<StashError> for tonic::Status {
    fn from(err: StashError) -> Self {
        let mut status = err.to_status();
        if let StashError::InOperation { index, .. } = err {
            status.metadata_mut().insert(
                OPERATION_METADATA,
                tonic::metadata::MetadataValue::from(index as u64),
            );
        }
        status
    }
}

impl From<redb::Error> for StashError {
    fn from(err: redb::Error) -> Self {
        StashError::Storage(err.to_string())
    }
}

macro_rules! redb_errors {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StashError {
            fn from(err: $ty) -> Self {
                StashError::Storage(err.to_string())
            }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<redis::RedisError> for StashError {
    fn from(err: redis::RedisError) -> Self {
        // With `noeviction`, a full Redis refuses writes with OOM: that is a refused put,
        // not a broken store.
        if err.code() == Some("OOM") {
            StashError::StoreFull("Redis reached maxmemory".into())
        } else {
            StashError::Storage(format!("redis: {err}"))
        }
    }
}
