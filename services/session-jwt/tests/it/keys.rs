//! Key rotation: the new key signs, the old one stays published while its tokens live;
//! only an admin may rotate.

use tessera_proto::session::v1 as pb;
use tonic::Code;

use crate::support::{issue, stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let before = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let mut admin = stack.session.client("admin").await.expect("admin");
    let rotated = admin
        .rotate_keys(pb::RotateKeysRequest {})
        .await
        .expect("rotated")
        .into_inner();
    assert_eq!(rotated.published_kids.len(), 2);
    assert!(rotated.published_kids.contains(&rotated.active_kid));

    let after = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let site = stack.site_verifier("wiki-a").await;
    let now = stack.clock.shared().now();
    assert!(
        site.verify(&before.access_token, now).is_ok(),
        "retired key still published"
    );
    assert!(site.verify(&after.access_token, now).is_ok());
    assert_ne!(
        before.access_token.split('.').next(),
        after.access_token.split('.').next(),
        "different kid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_may_rotate_keys() {
    let stack = stack().await;
    let status = stack
        .login()
        .await
        .rotate_keys(pb::RotateKeysRequest {})
        .await
        .expect_err("login may not");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_with_stale_keys_fetches_them_when_it_meets_the_new_key() {
    use std::sync::Arc;
    use tessera_verify::{SiteVerifier, Verifier, VerifierConfig};

    let stack = stack().await;
    let verifier = Arc::new(Verifier::new(VerifierConfig::new("wiki-a")));
    let site = SiteVerifier::new(
        verifier,
        Arc::new(stack.source().await),
        stack.clock.shared(),
        std::time::Duration::from_secs(30),
    );
    assert!(site.refresh_keys().await, "first fetch");
    let mut admin = stack.session.client("admin").await.expect("admin");
    admin
        .rotate_keys(pb::RotateKeysRequest {})
        .await
        .expect("rotated");
    let token = stack
        .login()
        .await
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();

    // Within the refetch interval the site does not go back to the service.
    assert_eq!(
        site.verify(&token.access_token)
            .await
            .expect_err("key unknown")
            .code(),
        "unknown_key"
    );
    stack.clock.advance(std::time::Duration::from_secs(30));
    site.verify(&token.access_token)
        .await
        .expect("fetched the new key and verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_the_key_directory_pick_up_each_others_rotation() {
    use std::sync::Arc;
    use tessera_session_jwt::test_util::SessionHarness;
    use tessera_testkit::TestPki;
    use tessera_token_stash::test_util::StashHarness;

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
    let b = SessionHarness::start(pki, stash.grpc_addr, None, share)
        .await
        .expect("replica b");
    assert_eq!(a.sessions.jwks(), b.sessions.jwks(), "one key set");

    let (active, _) = a.sessions.rotate_keys().expect("rotated on a");
    b.sessions.reload_keys().expect("b reloads");
    let kids: Vec<String> = b.sessions.jwks().keys.into_iter().map(|k| k.kid).collect();
    assert!(kids.contains(&active), "b publishes a's new key: {kids:?}");

    // A token a signs with the new key verifies through b.
    let token = a
        .client("login")
        .await
        .expect("client")
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    b.sessions
        .verify(&token.access_token, "wiki-a")
        .expect("b verifies a's token");
}
