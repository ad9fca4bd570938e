//! Scenario 4: parting the datacenters. A code that could be redeemed twice fails closed,
//! naming the unreachable datacenter, at the stash and at the login's `/token`; what is
//! local keeps working, a person's sign-in included; after the heal no code
//! was redeemed twice, none acknowledged was lost, and revocations made during the
//! partition are honoured on both sides.

use tessera_dc_suite::web::site_origin;
use tessera_dc_suite::DatacenterSpec;
use tessera_proto::session::v1 as session;
use tessera_proto::session::v1::revoke_request::Scope;
use tessera_proto::stash::v1 as pb;
use tessera_testkit::wait_until;

use crate::people::{sign_in_on_site, Pkce, SiteBackEnd, SIGNED_IN};
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

    // A person near dc-a signs in; dc-a's login mints a code for wiki-b, hosted in dc-b.
    let mut near_a = dcs.browser_near("dc-a").expect("browser");
    let page = sign_in_on_site(&mut near_a, &dcs, &site_origin("wiki-a")).await;
    assert!(page.contains(SIGNED_IN), "{page}");
    let wiki_b = SiteBackEnd::new(dcs.directory.site("wiki-b"));
    let (login_a, login_b) = (
        dcs.login_base("dc-a").expect("login"),
        dcs.login_base("dc-b").expect("login"),
    );
    let pkce = Pkce::new("parted");
    let web_code = wiki_b.code(&login_a, &near_a.cookie_header(), &pkce).await;

    dcs.partition().expect("partition");
    // wiki-b's back end cannot redeem it at dc-b's login: the answer names dc-a.
    let (status, body) = wiki_b.redeem(&login_b, &web_code, &pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains("dc-a"), "{description}");
    // A person near dc-b signs in with the form: the directory is on dc-b's side.
    let mut near_b = dcs.browser_near("dc-b").expect("browser");
    let page = sign_in_on_site(&mut near_b, &dcs, &site_origin("wiki-b")).await;
    assert!(
        page.contains(SIGNED_IN),
        "sign-ins local to dc-b work: {page}"
    );
    println!("partitioned: dc-b's login refused a dc-a code with {status} \"{description}\"; a person signed in on wiki-b in dc-b");
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
    // The code the partition held up redeems once the link is back (within its minute).
    let (status, body) = wiki_b.redeem(&login_b, &web_code, &pkce).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = wiki_b.redeem(&login_a, &web_code, &pkce).await;
    assert_eq!(status, 400, "and only once");
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
