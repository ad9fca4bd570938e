//! Scenario 5: dc-a's stash is killed with SIGKILL in the middle of a thousand sign-ins'
//! worth of codes, then started again: every code it acknowledged is still redeemable,
//! exactly once; nothing that expired comes back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_dc_suite::{Backend, DatacenterSpec};
use tessera_proto::stash::v1 as pb;

use crate::support::{code, code_of, deploy, in_batches, mint, redeem};

async fn killed_mid_flight(backend: Backend) {
    let spec = match backend {
        Backend::Embedded => DatacenterSpec::embedded(),
        Backend::Redis => DatacenterSpec::redis(),
    };
    let dcs = deploy(spec, DatacenterSpec::embedded()).await;
    let stash_a = dcs.stash("dc-a").await.expect("client");
    // Short-lived codes acknowledged before the kill: expired by the time they are read.
    let short_lived = mint(&stash_a, 20, 1, "short").await;
    let expires_at = tokio::time::Instant::now() + Duration::from_secs(2);

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let killer = {
        let acknowledged = acknowledged.clone();
        let stash = dcs.dc("dc-a").stash.name().to_owned();
        tokio::spawn(async move {
            tessera_testkit::wait_until("300 acknowledged codes before the kill", || {
                let acknowledged = acknowledged.clone();
                async move { acknowledged.load(Ordering::SeqCst) >= 300 }
            })
            .await;
            tessera_dc_suite::docker::docker(&["kill", "--signal", "KILL", &stash])
                .expect("SIGKILL");
        })
    };
    let answers = in_batches(1000, |i| {
        let mut client = stash_a.clone();
        let acknowledged = acknowledged.clone();
        async move {
            let value = format!("sign-in-{i}");
            let put = client.put(code(&value, 300)).await;
            if put.is_ok() {
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            put.map(|r| (r.into_inner().token, value))
        }
    })
    .await;
    killer.await.expect("killed");
    let acked: Vec<(String, String)> = answers.into_iter().filter_map(Result::ok).collect();
    println!(
        "{backend:?}: dc-a's stash killed (SIGKILL) after {} of 1000 puts were acknowledged",
        acked.len()
    );
    assert!(
        acked.len() >= 300 && acked.len() < 1000,
        "killed mid-flight: {}",
        acked.len()
    );

    let stash = &dcs.dc("dc-a").stash;
    tokio::task::block_in_place(|| stash.restart_after_kill()).expect("dc-a's stash restarts");
    tokio::time::sleep_until(expires_at).await;
    let stash_a = dcs.stash("dc-a").await.expect("client after restart");
    let stash_b = dcs.stash("dc-b").await.expect("client");
    // Half redeemed in dc-b (through dc-a), half in dc-a; then all again: none twice.
    let (via_b, here) = acked.split_at(acked.len() / 2);
    let first: Vec<_> = redeem(&stash_b, via_b)
        .await
        .into_iter()
        .chain(redeem(&stash_a, here).await)
        .collect();
    let intact = first
        .iter()
        .zip(&acked)
        .filter(|(answer, (_, value))| answer.as_ref().is_ok_and(|v| v == value.as_bytes()))
        .count();
    let twice = redeem(&stash_a, &acked)
        .await
        .iter()
        .filter(|a| a.is_ok())
        .count();
    let resurrected = redeem(&stash_a, &short_lived)
        .await
        .iter()
        .filter(|a| a.is_ok())
        .count();
    println!(
        "{backend:?}: after the restart {intact}/{} acknowledged codes redeemed intact, {twice} twice; {resurrected}/20 expired codes came back",
        acked.len()
    );
    assert_eq!(
        intact,
        acked.len(),
        "every acknowledged code survived the kill"
    );
    assert_eq!(twice, 0);
    assert_eq!(resurrected, 0, "nothing expired comes back");
    let after = stash_a
        .clone()
        .take(pb::TakeRequest {
            token: short_lived[0].0.clone(),
        })
        .await
        .expect_err("expired");
    assert_eq!(code_of(&after).as_deref(), Some("expired"), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stash_killed_mid_flight_keeps_every_code_it_acknowledged_on_the_embedded_store() {
    killed_mid_flight(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stash_killed_mid_flight_keeps_every_code_it_acknowledged_on_redis() {
    killed_mid_flight(Backend::Redis).await;
}
