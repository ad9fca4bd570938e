//! Revocation (rule F2): one session, a family, a user, everyone; a subscribed verifier
//! rejects the tokens as soon as it receives the event.

use std::sync::Arc;

use tessera_clock::Clock as _;

use tessera_proto::session::v1 as pb;
use tessera_proto::session::v1::revoke_request::Scope;

use crate::support::{issue, stack, wait_for_event};

async fn issue_many(stack: &crate::support::Stack, user: &str, count: usize) -> Vec<String> {
    let login = stack.login().await;
    let mut tokens = Vec::with_capacity(count);
    let mut batch = Vec::new();
    for i in 0..count {
        let mut login = login.clone();
        let user = user.to_owned();
        batch.push(tokio::spawn(async move {
            login
                .issue(issue(&user, "wiki-a", ""))
                .await
                .expect("issued")
                .into_inner()
                .access_token
        }));
        if batch.len() == 32 || i + 1 == count {
            for task in batch.drain(..) {
                tokens.push(task.await.expect("task"));
            }
        }
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_user_with_10000_sessions_rejects_every_one_once_the_event_arrives() {
    let stack = stack().await;
    let site = stack.site_verifier("wiki-a").await;
    let many = issue_many(&stack, "busy-user", 10_000).await;
    let others = issue_many(&stack, "bystander", 5).await;
    let now = stack.clock.shared().now();
    assert!(
        many.iter().all(|t| site.verify(t, now).is_ok()),
        "all valid before"
    );
    let mut applied = stack.follow(site.clone()).await;

    let reply = stack
        .login()
        .await
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::UserId("busy-user".into())),
        })
        .await
        .expect("revoked")
        .into_inner();
    assert_eq!(reply.sessions_revoked, 0, "an epoch, not 10,000 deletions");
    wait_for_event(&mut applied).await;

    let now = stack.clock.shared().now();
    for token in &many {
        assert_eq!(
            site.verify(token, now).expect_err("revoked").code(),
            "revoked"
        );
    }
    assert!(
        others.iter().all(|t| site.verify(t, now).is_ok()),
        "other users untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_everyone_rejects_every_earlier_token_and_not_later_ones() {
    let stack = stack().await;
    let site = stack.site_verifier("wiki-a").await;
    let earlier = issue_many(&stack, "user-a", 20).await;
    let mut applied = stack.follow(site.clone()).await;
    stack
        .login()
        .await
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::Everyone(true)),
        })
        .await
        .expect("revoked");
    wait_for_event(&mut applied).await;
    let now = stack.clock.shared().now();
    for token in &earlier {
        assert_eq!(
            site.verify(token, now).expect_err("revoked").code(),
            "revoked"
        );
    }
    let later = issue_many(&stack, "user-a", 1).await;
    assert!(
        site.verify(&later[0], now).is_ok(),
        "a login after the revocation works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_the_central_session_ends_every_site_session_of_its_family() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let (wiki_a, wiki_b) = (
        stack.site_verifier("wiki-a").await,
        stack.site_verifier("wiki-b").await,
    );
    let central = login
        .issue(issue("user-1", "login", ""))
        .await
        .expect("central")
        .into_inner();
    let a = login
        .issue(issue("user-1", "wiki-a", &central.session_id))
        .await
        .expect("a")
        .into_inner();
    let b = login
        .issue(issue("user-1", "wiki-b", &central.session_id))
        .await
        .expect("b")
        .into_inner();
    let unrelated = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("other")
        .into_inner();
    let (mut applied_a, mut applied_b) = (
        stack.follow(Arc::clone(&wiki_a)).await,
        stack.follow(Arc::clone(&wiki_b)).await,
    );

    let reply = login
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::SessionFamilyId(central.session_id.clone())),
        })
        .await
        .expect("logout")
        .into_inner();
    assert_eq!(reply.sessions_revoked, 3);
    wait_for_event(&mut applied_a).await;
    wait_for_event(&mut applied_b).await;
    let now = stack.clock.shared().now();
    assert_eq!(
        wiki_a
            .verify(&a.access_token, now)
            .expect_err("revoked")
            .code(),
        "revoked"
    );
    assert_eq!(
        wiki_b
            .verify(&b.access_token, now)
            .expect_err("revoked")
            .code(),
        "revoked"
    );
    assert!(
        wiki_a.verify(&unrelated.access_token, now).is_ok(),
        "a separate session survives"
    );
    for token in [&central.refresh_token, &a.refresh_token, &b.refresh_token] {
        login
            .refresh(crate::support::refresh(token))
            .await
            .expect_err("no refresh after logout");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_receives_the_revocations_in_force() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    login
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::SessionId(tokens.session_id.clone())),
        })
        .await
        .expect("revoked");
    let site = stack.site_verifier("wiki-a").await;
    let mut applied = stack.follow(site.clone()).await;
    wait_for_event(&mut applied).await;
    assert_eq!(
        site.verify(&tokens.access_token, stack.clock.shared().now())
            .expect_err("revoked")
            .code(),
        "revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_replica_reaches_subscribers_of_another() {
    use tessera_session_jwt::test_util::SessionHarness;
    use tessera_testkit::TestPki;
    use tessera_token_stash::test_util::StashHarness;
    use tessera_verify::grpc::SessionServiceSource;
    use tessera_verify::{Verifier, VerifierConfig};

    let pki = Arc::new(TestPki::new().expect("pki"));
    let stash = StashHarness::builder(pki.clone())
        .start()
        .await
        .expect("stash");
    let shared = tempfile::tempdir().expect("shared dir");
    let share = |config: &mut tessera_session_jwt::config::SessionConfig| {
        config.keys_dir = shared.path().join("keys");
        config.secret_file = shared.path().join("secret.key");
    };
    let a = SessionHarness::start(pki.clone(), stash.grpc_addr, None, share)
        .await
        .expect("replica a");
    let b = SessionHarness::start(pki.clone(), stash.grpc_addr, None, share)
        .await
        .expect("replica b");
    let token = a
        .client("login")
        .await
        .expect("client")
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();

    let site = Arc::new(Verifier::new(VerifierConfig::new("wiki-a")));
    site.set_keys(&b.sessions.jwks());
    let follower = SessionServiceSource::new(
        pki.channel_to(&pki.files("login"), b.grpc_addr, "session-jwt")
            .await
            .expect("channel"),
    );
    let (applied, mut events) = tokio::sync::mpsc::unbounded_channel();
    let followed = site.clone();
    tokio::spawn(async move {
        follower
            .follow(followed, move || {
                let _ = applied.send(());
            })
            .await
    });

    a.client("login")
        .await
        .expect("client")
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::UserId("user-1".into())),
        })
        .await
        .expect("logout everywhere on replica a");
    wait_for_event(&mut events).await;
    let now = tessera_clock::SystemClock.now();
    assert_eq!(
        site.verify(&token.access_token, now)
            .expect_err("revoked")
            .code(),
        "revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_that_can_no_longer_matter_are_forgotten() {
    let stack = crate::support::stack_with(|config| {
        config.session_lifetime_seconds = 3600;
        config.access_token_seconds = 300;
    })
    .await;
    let mut login = stack.login().await;
    let session = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    login
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::SessionId(session.session_id)),
        })
        .await
        .expect("revoked");
    login
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(Scope::UserId("user-2".into())),
        })
        .await
        .expect("revoked");
    assert_eq!(stack.session.sessions.revocations().subscribe().0.len(), 2);

    stack.clock.advance(std::time::Duration::from_secs(301));
    assert_eq!(
        stack.session.sessions.revocations().subscribe().0.len(),
        1,
        "the session revocation outlived its tokens"
    );
    stack.clock.advance(std::time::Duration::from_secs(3600));
    assert!(
        stack
            .session
            .sessions
            .revocations()
            .subscribe()
            .0
            .is_empty(),
        "the epoch outlived every session it ended"
    );
}
