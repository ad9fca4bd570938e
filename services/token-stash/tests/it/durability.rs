//! Crash safety of the real binary: an acknowledged write survives `kill -9`, and a
//! consumed code stays consumed. Also: SIGTERM is a clean stop.

use std::path::Path;

use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_testkit::{RedisServer, ServiceProcess, TestPki};
use tessera_token_stash::test_util::{put_request, stash_process_env};
use tonic::transport::Channel;
use tonic::Code;

const BINARY: &str = env!("CARGO_BIN_EXE_tessera-token-stash");

async fn start(pki: &TestPki, state: &Path, redis: Option<&RedisServer>) -> ServiceProcess {
    let env = stash_process_env(pki, state, redis.map(|r| r.url()).as_deref());
    ServiceProcess::spawn(Path::new(BINARY), &["serve"], &env)
        .await
        .expect("stash process starts")
}

async fn client(pki: &TestPki, process: &ServiceProcess) -> TokenStashClient<Channel> {
    let addr = process.addr("grpc").expect("grpc address");
    TokenStashClient::new(
        pki.channel(&pki.files("login"), addr)
            .await
            .expect("channel"),
    )
}

fn put(single_use: bool, owner: &str) -> pb::PutRequest {
    put_request(
        if single_use { "code" } else { "session" },
        b"must survive".to_vec(),
        3600,
        single_use,
        owner,
    )
}

async fn acknowledged_writes_survive_kill_9(redis: Option<&RedisServer>) {
    let pki = TestPki::new().expect("pki");
    let state = tempfile::tempdir().expect("state dir");
    let process = start(&pki, state.path(), redis).await;
    let mut stash = client(&pki, &process).await;

    let mut codes = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..100 {
        codes.push(
            stash
                .put(put(true, ""))
                .await
                .expect("put")
                .into_inner()
                .token,
        );
        sessions.push(
            stash
                .put(put(false, "grace"))
                .await
                .expect("put")
                .into_inner()
                .token,
        );
    }
    let (taken, kept) = codes.split_at(10);
    for token in taken {
        stash
            .take(pb::TakeRequest {
                token: token.clone(),
            })
            .await
            .expect("take");
    }
    // Straight after the last acknowledgement: no clean shutdown, no flush.
    process.kill_hard().await.expect("kill -9");

    let process = start(&pki, state.path(), redis).await;
    let mut stash = client(&pki, &process).await;
    for token in kept {
        let entry = stash
            .take(pb::TakeRequest {
                token: token.clone(),
            })
            .await
            .expect("code survived");
        assert_eq!(entry.into_inner().value, b"must survive");
    }
    for token in taken {
        let status = stash
            .take(pb::TakeRequest {
                token: token.clone(),
            })
            .await
            .expect_err("still consumed");
        assert_eq!(status.code(), Code::FailedPrecondition);
    }
    for token in &sessions {
        stash
            .get(pb::GetRequest {
                token: token.clone(),
            })
            .await
            .expect("session survived");
    }
    let listed = stash
        .list_by_owner(pb::ListByOwnerRequest {
            namespace: "session".into(),
            owner: "grace".into(),
            since_unix_ms: 0,
        })
        .await
        .expect("list")
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), sessions.len());
    process.kill_hard().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_acknowledged_writes_survive_kill_9() {
    acknowledged_writes_survive_kill_9(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_acknowledged_writes_survive_kill_9() {
    let redis = RedisServer::start().await.expect("redis");
    acknowledged_writes_survive_kill_9(Some(&redis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_stash_cleanly() {
    let pki = TestPki::new().expect("pki");
    let state = tempfile::tempdir().expect("state dir");
    let process = start(&pki, state.path(), None).await;
    let mut stash = client(&pki, &process).await;
    let token = stash
        .put(put(false, ""))
        .await
        .expect("put")
        .into_inner()
        .token;
    let status = process.terminate().await.expect("terminates");
    assert!(status.success(), "exit status {status}");

    // A clean stop releases the data directory, and the data is there.
    let process = start(&pki, state.path(), None).await;
    let mut stash = client(&pki, &process).await;
    stash
        .get(pb::GetRequest { token })
        .await
        .expect("kept across a clean restart");
    process.terminate().await.expect("terminates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_refused_with_the_key_named() {
    let output = tokio::process::Command::new(BINARY)
        .args(["check-config"])
        .env("TESSERA_STASH__STORAGE__CAPACITY_ENTRIES", "0")
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("storage.capacity_entries"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_no_acknowledged_write() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tessera_token_stash::test_util::StashHarness;

    let pki = Arc::new(TestPki::new().expect("pki"));
    let data = tempfile::tempdir().expect("data dir");
    let harness = StashHarness::builder(pki.clone())
        .data_dir(data.path().to_owned())
        .start()
        .await
        .expect("starts");
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for _ in 0..8 {
        let mut client = harness.client("login").await.expect("client");
        let (acknowledged, enough) = (acknowledged.clone(), enough.clone());
        writers.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            // Write until the stash stops answering.
            while let Ok(reply) = client
                .put(put_request(
                    "session",
                    b"in flight".to_vec(),
                    600,
                    false,
                    "",
                ))
                .await
            {
                tokens.push(reply.into_inner().token);
                if acknowledged.fetch_add(1, Ordering::SeqCst) + 1 == 200 {
                    enough.notify_one();
                }
            }
            tokens
        }));
    }
    enough.notified().await;
    harness
        .shutdown()
        .await
        .expect("clean shutdown while writes are in flight");
    let mut tokens = Vec::new();
    for writer in writers {
        tokens.extend(writer.await.expect("writer"));
    }
    assert!(tokens.len() >= 200);

    let reopened = StashHarness::builder(pki)
        .data_dir(data.path().to_owned())
        .start()
        .await
        .expect("restarts");
    let mut client = reopened.client("login").await.expect("client");
    for token in tokens {
        client
            .get(pb::GetRequest { token })
            .await
            .expect("every acknowledged put survived");
    }
}
