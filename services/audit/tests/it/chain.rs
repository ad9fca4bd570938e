//! Tamper evidence: editing a byte, deleting a record or swapping two is found, with the
//! spot named; retention keeps the chain verifiable; a restart keeps everything.

use std::path::Path;

use tessera_audit::log::verify;

use crate::support::{audit, batch, event, start_in};

async fn log_with(n: u64) -> crate::support::Audit {
    let audit = audit().await;
    let mut client = audit.client("login").await;
    let events = (1..=n).map(|s| event("w", s, "code_issued")).collect();
    client.append(batch(events)).await.expect("append");
    audit
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write(path: &Path, lines: &[String]) -> std::path::PathBuf {
    let copy = path.with_extension("tampered");
    std::fs::write(&copy, lines.join("\n") + "\n").expect("write");
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_byte_is_found_at_its_record() {
    let audit = log_with(20).await;
    let mut lines = lines(&audit.log_file());
    lines[9] = lines[9].replacen("wiki-a", "wiki-b", 1);
    let broken = verify(&write(&audit.log_file(), &lines))
        .expect("readable")
        .expect_err("edited");
    assert_eq!((broken.line, broken.expected_seq), (10, 10));
    assert!(
        broken.problem.contains("record 10 was changed"),
        "{}",
        broken.problem
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_record_is_found_where_it_is_missing() {
    let audit = log_with(20).await;
    let mut lines = lines(&audit.log_file());
    lines.remove(4);
    let broken = verify(&write(&audit.log_file(), &lines))
        .expect("readable")
        .expect_err("deleted");
    assert_eq!(broken.line, 5);
    assert!(
        broken.problem.contains("record(s) 5 to 5 were removed"),
        "{}",
        broken.problem
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_swapped_records_are_found() {
    let audit = log_with(20).await;
    let mut lines = lines(&audit.log_file());
    lines.swap(6, 7);
    let broken = verify(&write(&audit.log_file(), &lines))
        .expect("readable")
        .expect_err("swapped");
    assert_eq!(broken.line, 7);
    assert!(
        broken.problem.contains("record 8 follows record 6"),
        "{}",
        broken.problem
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_command_names_the_spot_and_exits_non_zero() {
    let audit = log_with(5).await;
    let mut lines = lines(&audit.log_file());
    lines[2] = lines[2].replacen("code_issued", "code_issuex", 1);
    let tampered = write(&audit.log_file(), &lines);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-audit"))
        .arg("verify")
        .arg(&tampered)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BROKEN at line 3"), "{stderr}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-audit"))
        .arg("verify")
        .arg(audit.log_file())
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact: 5 records"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_cuts_old_records_and_the_rest_still_verifies() {
    let audit = log_with(30).await;
    let cut = audit
        .log
        .prune(1_700_000_000_000 + 11)
        .await
        .expect("prune");
    assert_eq!(cut, 10);
    let verified = verify(&audit.log_file())
        .expect("readable")
        .expect("intact across the cut");
    assert_eq!(
        (verified.records, verified.first_seq, verified.last_seq),
        (20, 11, 30)
    );
    let mut client = audit.client("login").await;
    let reply = client
        .append(batch(vec![event("w", 31, "logout")]))
        .await
        .expect("append")
        .into_inner();
    assert_eq!(reply.last_seq, 31);
    assert!(verify(&audit.log_file()).expect("readable").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_record_and_drops_only_a_torn_unacknowledged_tail() {
    let mut audit = log_with(10).await;
    audit.stop();
    let (pki, dir) = (
        audit.pki.clone(),
        std::mem::replace(&mut audit.dir, tempfile::tempdir().expect("dir")),
    );
    drop(audit);
    let path = dir.path().join("data/audit.log");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(br#"{"seq":11,"prev":"ab"#);
    std::fs::write(&path, bytes).expect("torn write");
    let audit = start_in(pki, dir).await;
    let mut client = audit.client("login").await;
    let reply = client
        .append(batch(vec![event("w", 11, "logout")]))
        .await
        .expect("append")
        .into_inner();
    assert_eq!((reply.stored, reply.last_seq), (1, 11));
    let again = client
        .append(batch(vec![event("w", 5, "logout")]))
        .await
        .expect("append")
        .into_inner();
    assert_eq!(again.duplicates, 1, "writers' positions survive a restart");
    assert_eq!(
        verify(&audit.log_file())
            .expect("readable")
            .expect("intact")
            .records,
        11
    );
}
