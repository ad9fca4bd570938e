//! A connection to the stash that goes silent, as when the stash's host dies without a
//! reset, is replaced within seconds by every Tessera client of the stash; without that,
//! each call would wait on the dead connection until the kernel gave up on it, a quarter
//! of an hour later.

use std::time::Duration;

use tessera_clock::{Clock as _, SystemClock};
use tessera_mtls::ServiceIdentity;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_testkit::Link;
use tessera_token_stash::test_util::put_request;

use crate::support::served_embedded;

/// Calls allowed to fail meanwhile: each waits at most its 5 s timeout, and the
/// keep-alive drops the silent connection 10 s after it last carried anything, so two or
/// three fail; without the keep-alive every one would, for a quarter of an hour.
const FAILED_CALLS_ALLOWED: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_gone_silent_is_replaced_and_calls_succeed_again() {
    let s = served_embedded().await;
    let link = Link::to(s.harness.grpc_addr).await.expect("link");
    // The channel every Tessera service uses to call another.
    let channel = s
        .harness
        .pki()
        .files("login")
        .connector_to(&ServiceIdentity::token_stash())
        .expect("connector")
        .lazy_channel(
            &format!("https://{}", link.addr()),
            Duration::from_secs(2),
            Duration::from_secs(5),
        )
        .expect("channel");
    let mut stash = TokenStashClient::new(channel);
    let a_put = || put_request("code", b"v".to_vec(), 60, true, "");
    stash.put(a_put()).await.expect("a put over a live link");
    assert_eq!(link.connections(), 1);

    link.strand();
    let stranded_at = SystemClock.instant();
    let mut failures = Vec::new();
    while let Err(status) = stash.put(a_put()).await {
        failures.push(status.message().to_owned());
        assert!(
            failures.len() <= FAILED_CALLS_ALLOWED,
            "the connection went silent and every call since failed: {failures:?}"
        );
    }
    assert_eq!(
        link.connections(),
        2,
        "the put that succeeded went over a new connection"
    );
    println!(
        "a silent connection was replaced after {:?}; the calls that failed meanwhile: {failures:?}",
        SystemClock.instant() - stranded_at
    );
}
