//! Issuing: small tokens that verify, never for anonymous visitors.

use tessera_proto::session::v1 as pb;
use tonic::Code;

use crate::support::{issue, stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_token_verifies_locally_and_through_the_service() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let site = stack.site_verifier("wiki-a").await;
    let local = site
        .verify(&tokens.access_token, stack.clock.shared().now())
        .expect("verifies locally");
    assert_eq!(
        (local.claims.sub.as_str(), local.claims.sid.as_str()),
        ("user-1", tokens.session_id.as_str())
    );
    let remote = login
        .verify(pb::VerifyRequest {
            token: tokens.access_token.clone(),
            audience: "wiki-a".into(),
        })
        .await
        .expect("verifies remotely")
        .into_inner();
    assert_eq!(remote.user_id, "user-1");
    let status = login
        .verify(pb::VerifyRequest {
            token: tokens.access_token,
            audience: "wiki-b".into(),
        })
        .await
        .expect_err("another site");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        tessera_service::code_of(&status) == Some("wrong_audience"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_token_for_20_character_names_is_at_most_300_bytes() {
    let stack = stack().await;
    let tokens = stack
        .login()
        .await
        .issue(issue("u2345678901234567890", "s2345678901234567890", ""))
        .await
        .expect("issued")
        .into_inner();
    assert!(
        tokens.access_token.len() <= 300,
        "{} bytes",
        tokens.access_token.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_get_no_session() {
    let stack = stack().await;
    let status = stack
        .login()
        .await
        .issue(issue("", "wiki-a", ""))
        .await
        .expect_err("anonymous");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("anonymous"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_session_needs_a_live_central_session() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let central = login
        .issue(issue("user-1", "login", ""))
        .await
        .expect("central")
        .into_inner();
    login
        .issue(issue("user-1", "wiki-a", &central.session_id))
        .await
        .expect("derived");
    login
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(pb::revoke_request::Scope::SessionId(
                central.session_id.clone(),
            )),
        })
        .await
        .expect("logout");
    let status = login
        .issue(issue("user-1", "wiki-b", &central.session_id))
        .await
        .expect_err("parent ended");
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_callers_may_issue() {
    let stack = stack().await;
    let mut audit = stack.session.client("audit").await.expect("client");
    let status = audit
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect_err("audit may not issue");
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_counts_sessions_and_failures_by_reason() {
    let stack = stack().await;
    let mut login = stack.login().await;
    login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued");
    login
        .issue(issue("", "wiki-a", ""))
        .await
        .expect_err("anonymous");
    login
        .refresh(crate::support::refresh("never-issued"))
        .await
        .expect_err("unknown");
    let addr = stack.session.admin_addr;
    assert_eq!(
        tessera_testkit::http_get(addr, "/readyz")
            .await
            .expect("readyz")
            .status,
        200
    );
    let metrics = tessera_testkit::http_get(addr, "/metrics")
        .await
        .expect("metrics")
        .body;
    for line in [
        "tessera_session_issued_total 1\n",
        "tessera_session_failures_total{reason=\"invalid_argument\"} 1\n",
        "tessera_session_failures_total{reason=\"unknown_refresh_token\"} 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}
