//! Scenarios 1, 2 and 6: codes minted in one datacenter are redeemed in the other at once,
//! on either backend, and a raced code has exactly one winner across both.

use tessera_dc_suite::DatacenterSpec;
use tessera_proto::stash::v1 as pb;

use crate::support::{code, deploy, in_batches, mint, redeem};

async fn codes_cross_both_ways(a: DatacenterSpec, b: DatacenterSpec, backend: &str) {
    let dcs = deploy(a, b).await;
    for (from, to) in [("dc-a", "dc-b"), ("dc-b", "dc-a")] {
        let minter = dcs.stash(from).await.expect("client");
        let redeemer = dcs.stash(to).await.expect("client");
        let codes = mint(&minter, 1000, 60, from).await;
        assert!(codes
            .iter()
            .all(|(t, _)| t.starts_with(&format!("{from}."))));
        let answers = redeem(&redeemer, &codes).await;
        let redeemed = answers
            .iter()
            .zip(&codes)
            .filter(|(answer, (_, value))| answer.as_ref().is_ok_and(|v| v == value.as_bytes()))
            .count();
        println!("{backend}: {from} minted 1000 codes, {to} redeemed {redeemed} at once");
        assert_eq!(redeemed, 1000, "every code redeems in the other datacenter");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_codes_each_way_redeem_in_the_other_datacenter_on_embedded_stashes() {
    codes_cross_both_ways(
        DatacenterSpec::embedded(),
        DatacenterSpec::embedded(),
        "embedded",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_codes_each_way_redeem_in_the_other_datacenter_on_redis_stashes() {
    codes_cross_both_ways(DatacenterSpec::redis(), DatacenterSpec::redis(), "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_raced_by_fifty_redeemers_in_each_datacenter_has_exactly_one_winner() {
    let dcs = deploy(DatacenterSpec::embedded(), DatacenterSpec::redis()).await;
    let in_a = dcs.stash("dc-a").await.expect("client");
    let in_b = dcs.stash("dc-b").await.expect("client");
    for (round, home) in ["dc-a", "dc-b", "dc-a", "dc-b"].into_iter().enumerate() {
        let mut minter = if home == "dc-a" {
            in_a.clone()
        } else {
            in_b.clone()
        };
        let token = minter
            .put(code(&format!("raced-{round}"), 60))
            .await
            .expect("put")
            .into_inner()
            .token;
        let answers = in_batches(100, |i| {
            let mut client = if i % 2 == 0 {
                in_a.clone()
            } else {
                in_b.clone()
            };
            let token = token.clone();
            async move { client.take(pb::TakeRequest { token }).await.is_ok() }
        })
        .await;
        let winners = answers.iter().filter(|won| **won).count();
        println!("a {home} code raced by 50 redeemers in each datacenter: {winners} winner(s), {} refused", 100 - winners);
        assert_eq!(winners, 1, "exactly one redemption wins");
    }
}
