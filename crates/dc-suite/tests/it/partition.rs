//! Scenario 4: parting the datacenters. A code that could be redeemed twice fails closed,
//! naming the unreachable datacenter; what is local keeps working; after the heal no code
//! was redeemed twice, none acknowledged was lost, and revocations made during the
//! partition are honoured on both sides.

use tessera_dc_suite::DatacenterSpec;
use tessera_proto::session::v1 as session;
use tessera_proto::session::v1::revoke_request::Scope;
use tessera_proto::stash::v1 as pb;
use tessera_testkit::wait_until;

use crate::support::{code_of, deploy, issue, mint, redeem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_fails_closed_keeps_local_work_and_loses_nothing_when_it_heals() {
    let dcs = deploy(DatacenterSpec::embedded(), DatacenterSpec::embedded()).await;
    let stash_a = dcs.stash("dc-a").await.expect("client");
    let stash_b = dcs.stash("dc-b").await.expect("client");
    let mut sessions_a = dcs.sessions("dc-a").await.expect("client");
    let mut sessions_b = dcs.sessions("dc-b").await.expect("client");
    let session_of_a = sessions_a
        .issue(issue("ann"))
        .await
        .expect("issued")
        .into_inner();
    let session_of_b = sessions_b
        .issue(issue("ben"))
        .await
        .expect("issued")
        .into_inner();

    dcs.partition().expect("partition");
    // Minted in A during the partition: acknowledged, so never lost.
    let minted_in_a = mint(&stash_a, 100, 120, "parted-a").await;
    // B cannot redeem them: the error names A, and nothing is answered NOT_FOUND.
    let answers = redeem(&stash_b, &minted_in_a[..10]).await;
    for answer in &answers {
        let status = answer.as_ref().expect_err("fails closed");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(code_of(status).as_deref(), Some("peer_unavailable"));
        assert!(status.message().contains("dc-a"), "{status:?}");
    }
    // Local work in B goes on: its own codes, its own sessions.
    let local_b = mint(&stash_b, 100, 120, "parted-b").await;
    let local_redeemed = redeem(&stash_b, &local_b[..50]).await;
    assert!(
        local_redeemed.iter().all(Result::is_ok),
        "local codes redeem"
    );
    sessions_b
        .issue(issue("bea"))
        .await
        .expect("sign-ins local to dc-b work");
    // Revocations made on both sides during the partition.
    sessions_a
        .revoke(session::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::SessionId(session_of_a.session_id.clone())),
        })
        .await
        .expect("revocations stay available");
    sessions_b
        .revoke(session::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::SessionId(session_of_b.session_id.clone())),
        })
        .await
        .expect("revocations stay available");
    println!("partitioned: dc-b refused {} dc-a codes naming dc-a, redeemed 50 of its own; both revoked a session", answers.len());

    dcs.heal().expect("heal");
    // Every acknowledged code redeems exactly once, wherever it is presented.
    let after_heal = redeem(&stash_b, &minted_in_a).await;
    let redeemed = after_heal.iter().filter(|a| a.is_ok()).count();
    let again = redeem(&stash_a, &minted_in_a).await;
    let twice = again.iter().filter(|a| a.is_ok()).count();
    let rest_of_b = redeem(&stash_a, &local_b).await;
    let b_redeemed = rest_of_b.iter().filter(|a| a.is_ok()).count();
    println!("healed: {redeemed}/100 dc-a codes redeemed in dc-b, {twice} redeemed twice; {b_redeemed}/50 remaining dc-b codes redeemed in dc-a");
    assert_eq!(redeemed, 100, "no acknowledged code was lost");
    assert_eq!(twice, 0, "no code was redeemed twice");
    assert_eq!(
        b_redeemed, 50,
        "the codes dc-b had not redeemed are there, once"
    );

    // Each side honours the other's partition revocation.
    for (client, token, what) in [
        (
            &mut sessions_b,
            &session_of_a.access_token,
            "dc-b honours dc-a's revocation",
        ),
        (
            &mut sessions_a,
            &session_of_b.access_token,
            "dc-a honours dc-b's revocation",
        ),
    ] {
        wait_until(what, || {
            let mut client = client.clone();
            let token = token.clone();
            async move {
                let answer = client
                    .verify(session::VerifyRequest {
                        token,
                        audience: "wiki-a".into(),
                    })
                    .await;
                matches!(answer, Err(status) if code_of(&status).as_deref() == Some("revoked"))
            }
        })
        .await;
    }
    // Taken codes stay taken after the heal, on both sides.
    let retaken = stash_a
        .clone()
        .take(pb::TakeRequest {
            token: local_b[0].0.clone(),
        })
        .await
        .expect_err("a code taken during the partition stays taken");
    assert_eq!(
        code_of(&retaken).as_deref(),
        Some("consumed"),
        "{retaken:?}"
    );
}
