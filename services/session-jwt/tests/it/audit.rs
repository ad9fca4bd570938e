//! The session service and the stash witness their events into the audit log.

use std::sync::Arc;

use tessera_audit::test_util::AuditHarness;
use tessera_proto::session::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_session_jwt::test_util::SessionHarness;
use tessera_testkit::{TestPki, WAIT_LIMIT};
use tessera_token_stash::test_util::{put_request, StashHarness};

use crate::support::issue;

async fn wait_for_kinds(audit: &AuditHarness, kinds: &[&str]) -> Vec<tessera_audit::log::Record> {
    let _ = tokio::time::timeout(
        WAIT_LIMIT,
        audit.log.wait_until(|records| {
            kinds
                .iter()
                .all(|k| records.iter().any(|r| r.event.kind == *k))
        }),
    )
    .await;
    audit.log.read(|records| records.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_issued_revoked_and_rejected_tokens_and_refused_stash_writes_reach_the_audit_log()
{
    let pki = Arc::new(TestPki::new().expect("pki"));
    let dir = tempfile::tempdir().expect("dir");
    let audit = AuditHarness::start(pki.clone(), dir.path())
        .await
        .expect("audit");
    let stash = StashHarness::builder(pki.clone())
        .capacity(8)
        .audit(&audit.url(), dir.path().join("spool-stash"))
        .start()
        .await
        .expect("stash");
    let url = audit.url();
    let spool = dir.path().join("spool-session");
    let session = SessionHarness::start(pki.clone(), stash.grpc_addr, None, move |c| {
        c.audit.url = url;
        c.audit.spool_dir = spool;
    })
    .await
    .expect("session service");
    let mut login = session.client("login").await.expect("client");

    let tokens = login
        .issue(issue("u-audit", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    login
        .revoke(pb::RevokeRequest {
            audience: String::new(),
            scope: Some(pb::revoke_request::Scope::SessionId(
                tokens.session_id.clone(),
            )),
        })
        .await
        .expect("revoked");
    login
        .verify(pb::VerifyRequest {
            token: tokens.access_token.clone(),
            audience: "wiki-a".into(),
        })
        .await
        .expect_err("revoked token");
    let mut stash_client: TokenStashClient<_> = stash.client("login").await.expect("stash client");
    let mut refused = false;
    for _ in 0..16 {
        if stash_client
            .put(put_request("ns", b"v".to_vec(), 60, false, ""))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the stash filled up");

    let records = wait_for_kinds(
        &audit,
        &[
            "session_issued",
            "session_revoked",
            "jwt_rejected",
            "stash_write_failed",
        ],
    )
    .await;
    let find = |kind: &str| {
        records
            .iter()
            .find(|r| r.event.kind == kind)
            .map(|r| r.event.clone())
    };
    let issued = find("session_issued").expect("session_issued");
    assert_eq!(
        (
            issued.user_id.as_str(),
            issued.site.as_str(),
            issued.service.as_str()
        ),
        ("u-audit", "wiki-a", "session-jwt")
    );
    assert_eq!(
        find("session_revoked").expect("session_revoked").reason,
        "session"
    );
    let rejected = find("jwt_rejected").expect("jwt_rejected");
    assert_eq!(
        (rejected.reason.as_str(), rejected.user_id.as_str()),
        ("revoked", "u-audit")
    );
    assert_eq!(
        rejected.details.get("subject").map(String::as_str),
        Some("unverified"),
        "a rejected token's subject is only what it claims"
    );
    let failed = find("stash_write_failed").expect("stash_write_failed");
    assert_eq!(
        (failed.service.as_str(), failed.reason.as_str()),
        ("token-stash", "capacity_exhausted")
    );
}
