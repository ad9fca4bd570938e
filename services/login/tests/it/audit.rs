//! Audit never slows or breaks a sign-in: with the audit service stopped in the middle of
//! a run of sign-ins, every sign-in still succeeds, and once it is back every event is
//! there exactly once, in order.

use std::sync::Arc;

use tessera_testkit::{AuditHarness, Browser, LoginStack, TestPki, WAIT_LIMIT};

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
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let seqs = loop {
        let seqs: Vec<u64> = audit.log.read(|records| {
            records
                .iter()
                .filter(|r| r.event.writer == writer)
                .map(|r| r.event.writer_seq)
                .collect()
        });
        if seqs.len() >= expected.len() || tokio::time::Instant::now() > deadline {
            break seqs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
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
