//! Scenario 7: dc-b's clock runs five minutes ahead. Codes and sessions are judged by the
//! datacenter that minted them, so nothing minted in dc-a looks expired in dc-b.

use tessera_dc_suite::DatacenterSpec;
use tessera_proto::session::v1 as session;

use crate::support::{deploy, issue, mint, redeem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_datacenter_five_minutes_ahead_codes_and_sessions_are_judged_at_home() {
    let dcs = deploy(
        DatacenterSpec::embedded(),
        DatacenterSpec::embedded().skewed(300),
    )
    .await;
    let stash_a = dcs.stash("dc-a").await.expect("client");
    let stash_b = dcs.stash("dc-b").await.expect("client");
    // Sixty-second codes from dc-a: by dc-b's clock they expired four minutes ago.
    let from_a = mint(&stash_a, 100, 60, "skew-a").await;
    let redeemed_in_b = redeem(&stash_b, &from_a)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count();
    // And dc-b's codes, which dc-a's clock would call five minutes young.
    let from_b = mint(&stash_b, 100, 60, "skew-b").await;
    let redeemed_in_a = redeem(&stash_a, &from_b)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count();
    println!("dc-b 300 s ahead: {redeemed_in_b}/100 dc-a codes redeemed in dc-b, {redeemed_in_a}/100 dc-b codes in dc-a");
    assert_eq!(redeemed_in_b, 100);
    assert_eq!(redeemed_in_a, 100);

    // A dc-a session refreshed in dc-b: its record is judged by dc-a's stash.
    let minted = dcs
        .sessions("dc-a")
        .await
        .expect("client")
        .issue(issue("skewed"))
        .await
        .expect("issued")
        .into_inner();
    let renewed = dcs
        .sessions("dc-b")
        .await
        .expect("client")
        .refresh(session::RefreshRequest {
            refresh_token: minted.refresh_token.clone(),
            audience: String::new(),
        })
        .await
        .expect("dc-b refreshes a dc-a session despite its clock")
        .into_inner();
    assert_eq!(renewed.session_id, minted.session_id);
    println!(
        "a dc-a session refreshed in dc-b (300 s ahead): same session, new pair signed in dc-b"
    );
}
