//! Scenario 3 at the session tier: sessions revoked in dc-a reach dc-b's revocation stream;
//! the lag of each of 100 revocations is recorded (p50/p99 printed, never asserted), on
//! a bare link and over a WAN of 50 ms each way.

use std::time::Duration;

use tessera_clock::{Clock as _, SystemClock};

use tessera_dc_suite::DatacenterSpec;
use tessera_proto::session::v1 as session;
use tessera_proto::session::v1::revoke_request::Scope;

use crate::support::{deploy_over_wan, issue, mint, redeem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_revocations_in_one_datacenter_reach_the_other_and_their_lag_is_recorded() {
    revocation_lag(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_wan_of_50_ms_each_way_codes_and_revocations_cross_and_their_lag_is_recorded() {
    revocation_lag(Duration::from_millis(50)).await;
}

async fn revocation_lag(one_way: Duration) {
    let dcs = deploy_over_wan(
        DatacenterSpec::embedded(),
        DatacenterSpec::embedded(),
        one_way,
    )
    .await;
    let wan = format!("WAN {} ms each way", one_way.as_millis());
    let codes = mint(&dcs.stash("dc-a").await.expect("client"), 100, 60, "wan").await;
    let redeemed = redeem(&dcs.stash("dc-b").await.expect("client"), &codes)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count();
    println!("{wan}: 100 dc-a codes, {redeemed} redeemed in dc-b");
    assert_eq!(redeemed, 100);
    let mut in_a = dcs.sessions("dc-a").await.expect("client");
    let mut stream_b = dcs
        .sessions("dc-b")
        .await
        .expect("client")
        .stream_revocations(session::StreamRevocationsRequest {})
        .await
        .expect("subscribed to dc-b")
        .into_inner();
    let mut lags = Vec::with_capacity(100);
    for i in 0..100 {
        let minted = in_a
            .issue(issue(&format!("user-{i}")))
            .await
            .expect("issued")
            .into_inner();
        let started = SystemClock.instant();
        in_a.revoke(session::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::SessionFamilyId(minted.session_id.clone())),
        })
        .await
        .expect("signed out in dc-a");
        loop {
            let message = tokio::time::timeout(tessera_testkit::WAIT_LIMIT, stream_b.message())
                .await
                .expect("the revocation reaches dc-b")
                .expect("stream open")
                .expect("stream open");
            let names_it = matches!(
                &message.kind,
                Some(session::revocation::Kind::Sessions(s)) if s.session_ids.contains(&minted.session_id)
            );
            if names_it {
                assert_eq!(message.origin_datacenter, "dc-a");
                break;
            }
        }
        lags.push(started.elapsed());
    }
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{wan}: 100 sign-outs in dc-a reached dc-b's stream: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(lags[lags.len() - 1])
    );
    assert_eq!(lags.len(), 100);

    // Nothing outlives the deployment: its containers and networks are gone.
    let networks = dcs.network_names();
    drop(dcs);
    for network in networks {
        assert!(
            tessera_dc_suite::docker::docker(&["network", "inspect", &network]).is_err(),
            "network {network} was left behind"
        );
    }
}
