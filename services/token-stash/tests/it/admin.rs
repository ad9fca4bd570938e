//! The admin port: health, readiness and metrics; and the purge task, observed through it.

use std::time::Duration;

use tessera_proto::stash::v1 as pb;
use tessera_testkit::{http_get, WAIT_LIMIT};
use tessera_token_stash::test_util::put_request;

use crate::support::{served_embedded, served_redis, Served};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer() {
    let s = served_embedded().await;
    let health = http_get(s.harness.admin_addr, "/healthz")
        .await
        .expect("healthz");
    assert_eq!(health.status, 200);
    let ready = http_get(s.harness.admin_addr, "/readyz")
        .await
        .expect("readyz");
    assert_eq!(ready.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_puts_takes_failures_and_put_to_take_time() {
    let s = served_embedded().await;
    let mut client = s.harness.client("login").await.expect("client");
    let token = client
        .put(put_request("code", vec![0; 10], 60, true, ""))
        .await
        .expect("put")
        .into_inner()
        .token;
    s.clock.advance(Duration::from_millis(300));
    client
        .take(pb::TakeRequest {
            token: token.clone(),
        })
        .await
        .expect("take");
    client
        .take(pb::TakeRequest { token })
        .await
        .expect_err("consumed");
    client
        .put(put_request("", vec![], 60, true, ""))
        .await
        .expect_err("invalid");

    let metrics = http_get(s.harness.admin_addr, "/metrics")
        .await
        .expect("metrics")
        .body;
    for line in [
        "tessera_stash_puts_total 1\n",
        "tessera_stash_takes_total 1\n",
        "tessera_stash_failures_total{reason=\"consumed\"} 1\n",
        "tessera_stash_write_failures_total{reason=\"invalid_argument\"} 1\n",
        "tessera_stash_live_entries 0\n",
        "tessera_stash_live_bytes 0\n",
        "tessera_stash_put_to_take_seconds_bucket{le=\"0.25\"} 0\n",
        "tessera_stash_put_to_take_seconds_bucket{le=\"0.5\"} 1\n",
        "tessera_stash_put_to_take_seconds_count 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

async fn expired_entries_are_purged_within_about_a_second(s: Served) {
    let mut client = s.harness.client("session-jwt").await.expect("client");
    client
        .put(put_request("session", vec![1; 7], 1, false, "henry"))
        .await
        .expect("put");
    let mut purged = s.harness.purged.clone();
    s.clock.advance(Duration::from_secs(1));
    // The purge task runs every half second of real time; wait for it to report.
    tokio::time::timeout(WAIT_LIMIT, purged.wait_for(|total| *total >= 1))
        .await
        .expect("purged in time")
        .expect("purge task alive");
    let stats = client
        .stats(pb::StatsRequest {})
        .await
        .expect("stats")
        .into_inner();
    assert_eq!((stats.live_entries, stats.live_bytes), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_expired_entries_are_purged_by_the_background_task() {
    expired_entries_are_purged_within_about_a_second(served_embedded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_expired_entries_are_purged_by_the_background_task() {
    expired_entries_are_purged_within_about_a_second(served_redis().await).await;
}
