//! Redis failover: with `wait_replicas` set, a take the stash acknowledged is on the replica
//! before the answer, so promoting that replica after the primary dies cannot bring the
//! code back. The replica follows its primary through a [`Link`] the test can hold and
//! cut, which is how replication falls behind in production.

use std::sync::Arc;
use std::time::Duration;
use tessera_token_stash::ServiceError as _;

use tessera_clock::ManualClock;
use tessera_testkit::{Link, RedisServer};
use tessera_token_stash::store::{RedisStore, RedisStoreOptions};
use tessera_token_stash::{Stash, StashError, StashMetrics};

use crate::support::{dc, input, sealer};

/// How long a write waits for the replica where the replica is expected to confirm: long
/// enough for a loaded machine, since an unconfirmed put would fail the test for nothing.
const CONFIRM_WITHIN: Duration = Duration::from_secs(3);

fn options(url: String, wait_replicas: u32, wait_timeout: Duration) -> RedisStoreOptions {
    let mut options = RedisStoreOptions::new(url);
    options.wait_replicas = wait_replicas;
    options.wait_timeout = wait_timeout;
    options
}

async fn stash_on(options: RedisStoreOptions, clock: &ManualClock) -> Stash<RedisStore> {
    let store = RedisStore::open(options, clock.shared().now())
        .await
        .expect("redis store opens");
    Stash::new(
        store,
        dc(),
        sealer(),
        clock.shared(),
        Arc::new(StashMetrics::new()),
    )
}

/// A replica that follows `primary` through a link the test controls.
async fn follower_of(primary: &RedisServer) -> (Link, RedisServer) {
    let link = Link::to(primary.tcp_addr().expect("tcp"))
        .await
        .expect("link");
    let replica = RedisServer::start_replica_of(link.addr())
        .await
        .expect("replica");
    (link, replica)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_take_survives_the_primary_dying_and_the_replica_taking_over() {
    let primary = RedisServer::start_primary().await.expect("primary");
    let (link, replica) = follower_of(&primary).await;
    let clock = ManualClock::starting_now();
    let stash =
        Arc::new(stash_on(options(primary.url(), 1, Duration::from_secs(20)), &clock).await);
    let (code, _) = stash
        .put(input("code", b"grant", 60, true, ""))
        .await
        .expect("put, confirmed by the replica");

    // Replication stalls; the take is made meanwhile.
    link.hold();
    let mut take = tokio::spawn({
        let stash = stash.clone();
        let code = code.clone();
        async move { stash.take(&code).await }
    });
    // Waiting for the replica, the take cannot be answered while the link holds; without
    // waiting it is answered at once. Half a second tells the two apart.
    let answered_while_replication_stalled =
        tokio::time::timeout(Duration::from_millis(500), &mut take)
            .await
            .is_ok();
    if answered_while_replication_stalled {
        // Answered on the primary's word alone: the primary dies before the replica
        // hears of the take.
        primary.stop().await;
        link.cut();
    } else {
        // Waiting for the replica: the answer comes once the link carries the take.
        link.release();
        take.await
            .expect("joined")
            .expect("the take was acknowledged");
        primary.stop().await;
    }

    replica.promote().await.expect("promote the replica");
    let after_failover = stash_on(options(replica.url(), 0, Duration::from_secs(1)), &clock).await;
    let again = after_failover.take(&code).await;
    assert!(
        matches!(again, Err(StashError::Consumed { .. })),
        "the code came back after failover: {again:?}"
    );
    assert!(
        !answered_while_replication_stalled,
        "the take was acknowledged before any replica held it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_no_replica_confirms_in_time_is_unavailable_and_a_primary_without_replicas_is_refused(
) {
    let primary = RedisServer::start_primary().await.expect("primary");
    let clock = ManualClock::starting_now();
    let refused = RedisStore::open(
        options(primary.url(), 1, Duration::from_millis(200)),
        clock.shared().now(),
    )
    .await
    .expect_err("no replica attached");
    assert!(
        refused.to_string().contains("redis_wait_replicas"),
        "{refused}"
    );

    let (link, replica) = follower_of(&primary).await;
    let stash = stash_on(options(primary.url(), 1, CONFIRM_WITHIN), &clock).await;
    let (code, _) = stash
        .put(input("code", b"grant", 60, true, ""))
        .await
        .expect("confirmed put");
    link.hold();
    let unconfirmed = stash.take(&code).await.expect_err("not confirmed in time");
    assert_eq!(unconfirmed.code(), "not_replicated", "{unconfirmed}");
    assert_eq!(unconfirmed.to_status().code(), tonic::Code::Unavailable);
    // Unconfirmed is never "done twice": the primary consumed it, so no retry gets it.
    link.release();
    let retried = stash.take(&code).await;
    assert!(
        matches!(retried, Err(StashError::Consumed { .. })),
        "{retried:?}"
    );

    // A replica is not a primary: pointing the stash at it is refused.
    let at_replica = RedisStore::open(
        options(replica.url(), 1, Duration::from_millis(200)),
        clock.shared().now(),
    )
    .await
    .expect_err("a replica is not a primary");
    assert!(at_replica.to_string().contains("primary"), "{at_replica}");
}
