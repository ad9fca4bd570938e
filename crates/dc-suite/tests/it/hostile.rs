//! Scenario 8: a token naming a forged or unknown datacenter gets a clear error and is
//! forwarded at most once, never in a loop; a peer presenting another CA's certificate
//! is refused.

use tessera_dc_suite::DatacenterSpec;
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;

use crate::support::{code_of, deploy};

fn forwarded(metrics: &str) -> f64 {
    tessera_testkit::metric_sum(metrics, "tessera_stash_forwarded_total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_datacenters_get_a_clear_error_without_a_loop_and_foreign_cas_are_refused() {
    let dcs = deploy(DatacenterSpec::embedded(), DatacenterSpec::embedded()).await;
    let mut stash_a = dcs.stash("dc-a").await.expect("client");
    let (a_before, b_before) = (
        forwarded(&dcs.stash_metrics("dc-a").await.expect("metrics")),
        forwarded(&dcs.stash_metrics("dc-b").await.expect("metrics")),
    );
    let unknown = stash_a
        .take(pb::TakeRequest {
            token: "dc-zz.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(
        code_of(&unknown).as_deref(),
        Some("unknown_datacenter"),
        "{unknown:?}"
    );
    assert!(unknown.message().contains("dc-zz"), "{unknown:?}");
    // A well-formed dc-b token dc-b never minted: forwarded once, answered there.
    let forged = stash_a
        .take(pb::TakeRequest {
            token: "dc-b.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        })
        .await
        .expect_err("unknown at its home");
    assert_eq!(forged.code(), tonic::Code::NotFound, "{forged:?}");
    let (a_after, b_after) = (
        forwarded(&dcs.stash_metrics("dc-a").await.expect("metrics")),
        forwarded(&dcs.stash_metrics("dc-b").await.expect("metrics")),
    );
    println!(
        "forged tokens: unknown datacenter refused ({}), a forged dc-b token forwarded {} time(s) by dc-a and {} by dc-b",
        code_of(&unknown).unwrap_or_default(),
        a_after - a_before,
        b_after - b_before
    );
    assert_eq!(
        a_after - a_before,
        1.0,
        "forwarded once, the unknown datacenter never"
    );
    assert_eq!(
        b_after - b_before,
        0.0,
        "the home answered without forwarding back"
    );

    // A stash peer from another CA: the handshake fails before any RPC.
    let rogue = dcs
        .pki
        .files_from_another_ca("token-stash")
        .expect("rogue files");
    let addr = dcs.dc("dc-a").stash.host_addr(7401).expect("addr");
    let refused = match dcs.pki.channel_to(&rogue, addr, "token-stash").await {
        Err(_) => true,
        Ok(channel) => TokenStashClient::new(channel)
            .stats(pb::StatsRequest {})
            .await
            .is_err(),
    };
    println!("a peer presenting another CA's certificate refused: {refused}");
    assert!(refused, "a certificate of another CA is refused");
}
