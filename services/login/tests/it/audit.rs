//! Audit never slows or breaks a sign-in: with the audit service stopped in the middle of
//! a run of sign-ins, every sign-in still succeeds, and once it is back every event is
//! there exactly once, in order.

use std::sync::Arc;

use tessera_audit::test_util::AuditHarness;
use tessera_login::test_util::LoginStack;
use tessera_testkit::{Browser, TestPki, WAIT_LIMIT};

use crate::support::{on_stack, Pkce, World};

async fn sign_in_and_redeem(world: &World, i: usize) {
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new(&format!("audit{i}"));
    let code = world.code(&mut browser, &pkce).await;
    let (status, body) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 200, "sign-in {i}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_succeed_while_audit_is_down_and_every_event_arrives_once_in_order_after() {
    let pki = Arc::new(TestPki::new().expect("pki"));
    let audit_dir = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("spool");
    let audit = AuditHarness::start(pki.clone(), audit_dir.path())
        .await
        .expect("audit");
    let (addr, url) = (audit.grpc_addr, audit.url());
    let spool_dir = spool.path().to_owned();
    let stack = LoginStack::start_with_pki(pki.clone(), None, None, move |c| {
        c.audit.url = url;
        c.audit.spool_dir = spool_dir;
    })
    .await
    .expect("stack");
    let world = on_stack(stack).await;
    let writer = world
        .stack
        .login
        .audit
        .writer()
        .expect("audit on")
        .to_owned();

    for i in 0..5 {
        sign_in_and_redeem(&world, i).await;
    }
    audit.shutdown().await.expect("audit stops");
    for i in 5..10 {
        sign_in_and_redeem(&world, i).await;
    }
    let audit = AuditHarness::start_at(pki, audit_dir.path(), addr)
        .await
        .expect("audit is back");

    // Each sign-in is witnessed three times: login_succeeded, code_issued, code_redeemed.
    let expected: Vec<u64> = (1..=30).collect();
    let writer_seqs = |records: &[tessera_audit::log::Record]| -> Vec<u64> {
        records
            .iter()
            .filter(|r| r.event.writer == writer)
            .map(|r| r.event.writer_seq)
            .collect()
    };
    let _ = tokio::time::timeout(
        WAIT_LIMIT,
        audit
            .log
            .wait_until(|records| writer_seqs(records).len() >= expected.len()),
    )
    .await;
    let seqs = audit.log.read(writer_seqs);
    assert_eq!(seqs, expected, "every event once, in order");
    let kinds: Vec<String> = audit
        .log
        .read(|records| records.iter().map(|r| r.event.kind.clone()).collect());
    assert_eq!(kinds.iter().filter(|k| *k == "login_succeeded").count(), 10);
    assert_eq!(kinds.iter().filter(|k| *k == "code_redeemed").count(), 10);
    let metrics = world.stack.login.metrics.registry.render();
    assert!(
        metrics.contains("tessera_audit_events_dropped_total 0"),
        "nothing was dropped: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_an_earlier_process_left_in_its_spool_are_delivered_once_by_the_next_one() {
    use base64::Engine as _;
    use prost::Message as _;

    let pki = Arc::new(TestPki::new().expect("pki"));
    let audit_dir = tempfile::tempdir().expect("dir");
    let spool = tempfile::tempdir().expect("spool");
    // What a login process that stopped while audit was away leaves behind.
    let leftover: String = (1..=2u64)
        .map(|seq| {
            let event = tessera_proto::audit::v1::Event {
                time_unix_ms: 1_800_000_000_000,
                service: "login".into(),
                kind: "logout".into(),
                outcome: "success".into(),
                writer: "login-0123456789ab".into(),
                writer_seq: seq,
                ..Default::default()
            };
            format!(
                "{}\n",
                base64::engine::general_purpose::STANDARD.encode(event.encode_to_vec())
            )
        })
        .collect();
    std::fs::write(spool.path().join("login-0123456789ab.spool"), leftover).expect("spool");

    let audit = AuditHarness::start(pki.clone(), audit_dir.path())
        .await
        .expect("audit");
    let (url, spool_dir) = (audit.url(), spool.path().to_owned());
    let _stack = LoginStack::start_with_pki(pki, None, None, move |c| {
        c.audit.url = url;
        c.audit.spool_dir = spool_dir;
    })
    .await
    .expect("stack");
    let adopted = |records: &[tessera_audit::log::Record]| -> Vec<u64> {
        records
            .iter()
            .filter(|r| r.event.writer == "login-0123456789ab")
            .map(|r| r.event.writer_seq)
            .collect()
    };
    let _ = tokio::time::timeout(WAIT_LIMIT, audit.log.wait_until(|r| adopted(r).len() >= 2)).await;
    assert_eq!(audit.log.read(adopted), vec![1, 2]);
}
