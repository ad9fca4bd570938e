//! Fixtures shared by this binary's modules.

use std::sync::Arc;
use std::time::Duration;

use tessera_clock::ManualClock;
use tessera_testkit::{RedisServer, TestPki};
use tessera_token_stash::store::{
    EmbeddedStore, EmbeddedStoreOptions, RedisStore, RedisStoreOptions,
};
use tessera_token_stash::test_util::StashHarness;
use tessera_token_stash::{DatacenterId, PutInput, Stash, StashMetrics, TokenSealer};

/// The capacity of conformance fixtures.
pub const FIXTURE_CAPACITY: u64 = 8;

/// A stash over one backend, driven by a manual clock.
pub struct Fixture<S> {
    pub stash: Stash<S>,
    pub clock: ManualClock,
    /// Keeps the backend's data (directory or server) alive for the test.
    pub _guard: Box<dyn std::any::Any + Send>,
}

pub fn sealer() -> TokenSealer {
    TokenSealer::random().expect("OS randomness")
}

pub fn dc() -> DatacenterId {
    DatacenterId::try_from("dc1").expect("valid")
}

pub async fn embedded_fixture() -> Fixture<EmbeddedStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::starting_now();
    let mut options = EmbeddedStoreOptions::new(dir.path().join("data"));
    options.capacity = FIXTURE_CAPACITY;
    let store = EmbeddedStore::open(options, clock.shared().now())
        .await
        .expect("embedded store opens");
    Fixture {
        stash: Stash::new(
            store,
            dc(),
            sealer(),
            clock.shared(),
            Arc::new(StashMetrics::new()),
        ),
        clock,
        _guard: Box::new(dir),
    }
}

pub async fn redis_fixture() -> Fixture<RedisStore> {
    let redis = RedisServer::start().await.expect("redis-server starts");
    let clock = ManualClock::starting_now();
    let mut options = RedisStoreOptions::new(redis.url());
    options.capacity = FIXTURE_CAPACITY;
    let store = RedisStore::open(options, clock.shared().now())
        .await
        .expect("redis store opens");
    Fixture {
        stash: Stash::new(
            store,
            dc(),
            sealer(),
            clock.shared(),
            Arc::new(StashMetrics::new()),
        ),
        clock,
        _guard: Box::new(redis),
    }
}

/// A put request.
pub fn input(
    namespace: &str,
    value: &[u8],
    ttl_seconds: u32,
    single_use: bool,
    owner: &str,
) -> PutInput {
    PutInput::parse(namespace, value.to_vec(), ttl_seconds, single_use, owner).expect("valid input")
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Which backend an in-process harness uses.
#[derive(Clone, Copy, Debug)]
pub enum BackendKind {
    Embedded,
    Redis,
}

/// A stash served over gRPC, with what it depends on kept alive.
pub struct Served {
    pub harness: StashHarness,
    pub clock: ManualClock,
    pub _redis: Option<RedisServer>,
}

/// Starts a stash over gRPC on `backend` with a manual clock.
pub async fn serve(backend: BackendKind, capacity: u64) -> Served {
    let pki = Arc::new(TestPki::new().expect("test PKI"));
    let clock = ManualClock::starting_now();
    let builder = StashHarness::builder(pki)
        .clock(clock.shared())
        .capacity(capacity);
    let (builder, redis) = match backend {
        BackendKind::Embedded => (builder, None),
        BackendKind::Redis => {
            let redis = RedisServer::start().await.expect("redis-server starts");
            (builder.redis(&redis.url(), "test:"), Some(redis))
        }
    };
    Served {
        harness: builder.start().await.expect("stash starts"),
        clock,
        _redis: redis,
    }
}

/// A gRPC stash on the embedded backend, capacity [`FIXTURE_CAPACITY`].
pub async fn served_embedded() -> Served {
    serve(BackendKind::Embedded, FIXTURE_CAPACITY).await
}

/// A gRPC stash on the Redis backend, capacity [`FIXTURE_CAPACITY`].
pub async fn served_redis() -> Served {
    serve(BackendKind::Redis, FIXTURE_CAPACITY).await
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn case(fixture)`:
/// `for_each_backend!(embedded_fixture_fn, redis_fixture_fn: case_a, case_b);`
macro_rules! for_each_backend {
    ($embedded:ident, $redis:ident: $($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::support::$embedded().await).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::support::$redis().await).await
                }
            )*
        }
    };
}
pub(crate) use for_each_backend;
