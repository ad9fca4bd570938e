//! Ingest: everything stored once, in order per writer; bad input refused without harm.

use tessera_audit::log::verify;
use tonic::Code;

use crate::support::{audit, batch, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_events_from_four_writers_are_all_stored_and_the_chain_verifies() {
    let audit = audit().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(audit.client("login").await);
    }
    let writers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, mut client)| {
            tokio::spawn(async move {
                let writer = format!("writer-{w}");
                for start in (1..=25_000u64).step_by(500) {
                    let events = (start..start + 500)
                        .map(|s| event(&writer, s, "login_succeeded"))
                        .collect();
                    let reply = client
                        .append(batch(events))
                        .await
                        .expect("append")
                        .into_inner();
                    assert_eq!(reply.stored, 500);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let verified = verify(&audit.log_file())
        .expect("readable")
        .expect("intact");
    assert_eq!(verified.records, 100_000);
    audit.log.read(|records| {
        for w in 0..4 {
            let name = format!("writer-{w}");
            let seqs: Vec<u64> = records
                .iter()
                .filter(|r| r.event.writer == name)
                .map(|r| r.event.writer_seq)
                .collect();
            assert_eq!(
                seqs,
                (1..=25_000).collect::<Vec<_>>(),
                "{name}: all, once, in order"
            );
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_is_not_stored_twice() {
    let audit = audit().await;
    let mut client = audit.client("session-jwt").await;
    let events: Vec<_> = (1..=10).map(|s| event("w", s, "session_issued")).collect();
    let first = client
        .append(batch(events.clone()))
        .await
        .expect("append")
        .into_inner();
    let again = client
        .append(batch(events))
        .await
        .expect("append")
        .into_inner();
    assert_eq!((first.stored, again.stored, again.duplicates), (10, 0, 10));
    assert_eq!(again.last_seq, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_is_refused_alone_and_never_costs_the_rest_of_its_batch() {
    let audit = audit().await;
    let mut client = audit.client("login").await;
    client
        .append(batch(vec![event("w", 1, "logout")]))
        .await
        .expect("a good one");

    let mut huge = event("w", 4, "logout");
    for i in 0..32 {
        huge.details.insert(format!("k{i}"), "x".repeat(200));
    }
    let mut long_name = event("w", 5, "login_failed");
    long_name.user_name = "é".repeat(256);
    let mut anonymous = event("", 6, "logout");
    anonymous.writer_seq = 0;
    let reply = client
        .append(batch(vec![
            event("w", 2, "logout"),
            event("w", 3, "teleported"),
            huge,
            long_name,
            anonymous,
            event("w", 7, "login_succeeded"),
        ]))
        .await
        .expect("a batch with bad events is not refused whole")
        .into_inner();
    assert_eq!((reply.stored, reply.refused), (2, 4), "{reply:?}");
    let why = reply.refusals.join("\n");
    for expected in [
        "event 1 of the batch",
        "unknown",
        "at most 4096",
        "user_name is 512 bytes",
        "writer",
    ] {
        assert!(why.contains(expected), "{expected}: {why}");
    }
    assert_eq!(
        audit.metric("tessera_audit_events_refused_total").await,
        4,
        "counted on the service's metrics"
    );

    let status = client.append(batch(Vec::new())).await.expect_err("empty");
    assert!(status.message().contains("1 to 1000"), "{status:?}");
    let too_many = (8..=1008).map(|s| event("w", s, "logout")).collect();
    let status = client.append(batch(too_many)).await.expect_err("too many");
    assert_eq!(status.code(), Code::InvalidArgument);

    let verified = verify(&audit.log_file())
        .expect("readable")
        .expect("intact");
    assert_eq!(verified.records, 3, "the good events, and only those");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ips_are_stored_truncated_and_only_admins_may_query_over_grpc() {
    let audit = audit().await;
    let mut login = audit.client("login").await;
    login
        .append(batch(vec![event("w", 1, "login_failed")]))
        .await
        .expect("append");
    audit
        .log
        .read(|records| assert_eq!(records[0].event.client_ip, "203.0.113.0/24"));
    let refused = login
        .query(tessera_proto::audit::v1::QueryRequest::default())
        .await
        .expect_err("login may not read");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut admin = audit.client("admin").await;
    let found = admin
        .query(tessera_proto::audit::v1::QueryRequest {
            kind: "login_failed".into(),
            ..Default::default()
        })
        .await
        .expect("admin reads")
        .into_inner();
    assert_eq!(found.records.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_attributed_to_the_callers_certificate_and_no_service_can_silence_another() {
    let audit = audit().await;
    // login claims to be the session service and jumps "its" writer to the end.
    let mut login = audit.client("login").await;
    let mut forged = event("shared-writer", u64::MAX, "session_issued");
    forged.service = "session-jwt".into();
    login.append(batch(vec![forged])).await.expect("append");

    let mut sessions = audit.client("session-jwt").await;
    let reply = sessions
        .append(batch(vec![event("shared-writer", 1, "session_issued")]))
        .await
        .expect("append")
        .into_inner();
    assert_eq!(
        (reply.stored, reply.duplicates),
        (1, 0),
        "the real writer's first event is stored, not taken for a duplicate"
    );
    audit.log.read(|records| {
        let services: Vec<&str> = records.iter().map(|r| r.event.service.as_str()).collect();
        assert_eq!(
            services,
            ["login", "session-jwt"],
            "as the certificates say"
        );
    });
}
