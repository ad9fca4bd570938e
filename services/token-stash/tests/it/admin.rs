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

/// A refresh of a logged-out session is refused by a `require` of its Apply: that is the
/// session's answer, not a write the stash could not store, so operators' write-failure
/// alarms stay quiet; a put that collides still counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_refused_by_a_missing_required_entry_is_no_write_failure() {
    let s = served_embedded().await;
    let mut client = s.harness.client("session-jwt").await.expect("client");
    let put_at = |token: &str| {
        let mut request = put_request("refresh", vec![7; 4], 60, false, "");
        request.token = token.into();
        pb::Operation {
            kind: Some(pb::operation::Kind::Put(request)),
        }
    };
    let require = |token: &str| pb::Operation {
        kind: Some(pb::operation::Kind::Require(token.into())),
    };
    let (stored, ended) = (
        "dc1.c3RvcmVkLWJ5LWFwcGx5LWZpcnN0",
        "dc1.ZW5kZWQtc2Vzc2lvbi1yZWNvcmQ",
    );
    client
        .apply(pb::ApplyRequest {
            operations: vec![put_at(stored)],
        })
        .await
        .expect("applied");
    let status = client
        .apply(pb::ApplyRequest {
            operations: vec![require(ended), put_at("dc1.bmV4dC1ncmFudC1mb3ItaXQ")],
        })
        .await
        .expect_err("the required entry is missing");
    assert_eq!(status.code(), tonic::Code::NotFound);
    client
        .apply(pb::ApplyRequest {
            operations: vec![put_at(stored)],
        })
        .await
        .expect_err("collides");

    let metrics = http_get(s.harness.admin_addr, "/metrics")
        .await
        .expect("metrics")
        .body;
    for line in [
        "tessera_stash_applies_total 1\n",
        "tessera_stash_failures_total{reason=\"not_found\"} 1\n",
        "tessera_stash_write_failures_total{reason=\"already_exists\"} 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    assert!(
        !metrics.contains("tessera_stash_write_failures_total{reason=\"not_found\"}"),
        "a missing required entry counted as a write failure:\n{metrics}"
    );
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
