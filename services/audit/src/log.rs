//! The log: one append-only file of JSON lines, each record carrying the SHA-256 of the
//! one before, so an edited, dropped or reordered record breaks the chain where it
//! happened. One writer thread appends: every batch waiting when it wakes shares one
//! fsync (group commit), and no batch is acknowledged before its records are durable.
//!
//! A line is `{"seq":…,"prev":…,"hash":…,"event":{…}}` with
//! `hash = SHA-256(prev ‖ "|" ‖ seq ‖ "|" ‖ canonical event JSON)`. Retention rewrites the
//! file starting with `{"checkpoint":{"seq":…,"hash":…}}`: the last record cut, so the
//! chain still verifies across the cut.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};

use crate::event::StoredEvent;
use crate::AuditError;

/// The chain's start: the `prev` of record 1.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    pub event: StoredEvent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    seq: u64,
    hash: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Line {
    Checkpoint { checkpoint: Checkpoint },
    Record(Box<Record>),
}

/// The hash of record `seq` with `event`, after `prev`.
pub fn chain_hash(prev: &str, seq: u64, event: &StoredEvent) -> String {
    let mut digest = Sha256::new();
    digest.update(prev.as_bytes());
    digest.update(b"|");
    digest.update(seq.to_string().as_bytes());
    digest.update(b"|");
    digest.update(event.canonical().as_bytes());
    tessera_config::secret::encode_hex(&digest.finalize())
}

/// Where a verification found the chain broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based line of the file.
    pub line: usize,
    /// The sequence number expected there.
    pub expected_seq: u64,
    /// What is wrong, for a person.
    pub problem: String,
}

/// A verified log: how many records, the last sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_hash: String,
}

/// Walks the file at `path` and checks every link of the chain.
pub fn verify(path: &Path) -> Result<Result<Verified, Break>, AuditError> {
    walk(path, |_| {})
}

/// Walks the chain as [`verify`] does, handing each verified record to `each` (so
/// opening the log reads the file once).
fn walk(path: &Path, mut each: impl FnMut(Record)) -> Result<Result<Verified, Break>, AuditError> {
    let file =
        File::open(path).map_err(|e| AuditError::Storage(format!("{}: {e}", path.display())))?;
    let mut prev_seq = 0;
    let mut prev_hash = GENESIS.to_owned();
    let mut records = 0;
    let mut first_seq = 0;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let text = line.map_err(|e| AuditError::Storage(e.to_string()))?;
        let broken = |problem: String| {
            Ok(Err(Break {
                line: line_no,
                expected_seq: prev_seq + 1,
                problem,
            }))
        };
        match serde_json::from_str::<Line>(&text) {
            Ok(Line::Checkpoint { checkpoint }) if line_no == 1 => {
                prev_seq = checkpoint.seq;
                prev_hash = checkpoint.hash;
            }
            Ok(Line::Checkpoint { .. }) => {
                return broken("a retention checkpoint in the middle of the log".into())
            }
            Ok(Line::Record(record)) => {
                if record.seq != prev_seq + 1 {
                    let what = if record.seq > prev_seq + 1 {
                        format!(
                            "record {} follows record {prev_seq}: record(s) {} to {} were removed",
                            record.seq,
                            prev_seq + 1,
                            record.seq - 1
                        )
                    } else {
                        format!("record {} follows record {prev_seq}: records were reordered or repeated", record.seq)
                    };
                    return broken(what);
                }
                if record.prev != prev_hash {
                    return broken(format!(
                        "record {} does not link to the record before it",
                        record.seq
                    ));
                }
                if chain_hash(&record.prev, record.seq, &record.event) != record.hash {
                    return broken(format!(
                        "record {} was changed after it was written",
                        record.seq
                    ));
                }
                if first_seq == 0 {
                    first_seq = record.seq;
                }
                prev_seq = record.seq;
                prev_hash = record.hash.clone();
                records += 1;
                each(*record);
            }
            Err(_) => {
                return broken(format!(
                    "line {line_no} is not a readable record (damaged or edited)"
                ))
            }
        }
    }
    Ok(Ok(Verified {
        records,
        first_seq,
        last_seq: prev_seq,
        last_hash: prev_hash,
    }))
}

enum Job {
    Append {
        events: Vec<StoredEvent>,
        reply: oneshot::Sender<Result<(u64, u64, u64), AuditError>>,
    },
    Prune {
        before_unix_ms: i64,
        reply: oneshot::Sender<Result<u64, AuditError>>,
    },
}

/// The open log. Cheap to clone; appends go through the writer thread, queries read the
/// in-memory copy of the retained records.
#[derive(Debug, Clone)]
pub struct AuditLog {
    jobs: mpsc::Sender<Job>,
    records: Arc<RwLock<Vec<Record>>>,
    /// The last durable sequence number, for callers that wait for records to arrive.
    stored: watch::Receiver<u64>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

struct Writer {
    path: PathBuf,
    file: BufWriter<File>,
    last_seq: u64,
    last_hash: String,
    /// Each writer's last stored `writer_seq`, so a retried batch is not stored twice;
    /// keyed by the verified service *and* the writer, so no service can move another's.
    writers: HashMap<String, u64>,
    records: Arc<RwLock<Vec<Record>>>,
    stored: watch::Sender<u64>,
}

impl AuditLog {
    /// Opens (or creates) `dir/audit.log`: verifies it, drops a torn last line a crash
    /// left behind (never acknowledged), and starts the writer thread. A log that does
    /// not verify is refused: it needs a person's attention.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        // Events name people and addresses: owner-only, whatever the umask.
        let path = dir.join("audit.log");
        tessera_config::private::precreate(&path)
            .map_err(|e| AuditError::Storage(format!("{}: {e}", path.display())))?;
        drop_torn_tail(&path)?;
        let mut records = Vec::new();
        let mut writers = HashMap::new();
        let verified = walk(&path, |record| {
            writers.insert(writer_key(&record.event), record.event.writer_seq);
            records.push(record);
        })?
        .map_err(|b| {
            AuditError::Tampered(format!(
                "line {}: {}; run `tessera-audit verify` and restore the log from a copy",
                b.line, b.problem
            ))
        })?;
        let records = Arc::new(RwLock::new(records));
        let (stored_tx, stored) = watch::channel(verified.last_seq);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| AuditError::Storage(e.to_string()))?;
        let writer = Writer {
            path: path.clone(),
            file: BufWriter::new(file),
            last_seq: verified.last_seq,
            last_hash: verified.last_hash,
            writers,
            records: records.clone(),
            stored: stored_tx,
        };
        let (jobs, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(inbox))
            .map_err(|e| AuditError::Storage(format!("writer thread: {e}")))?;
        Ok(AuditLog {
            jobs,
            records,
            stored,
        })
    }

    /// Appends `events` in order, durably; (stored, duplicates skipped, last seq).
    pub async fn append(&self, events: Vec<StoredEvent>) -> Result<(u64, u64, u64), AuditError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Append { events, reply })
            .map_err(|_| AuditError::Storage("the writer thread stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditError::Storage("the writer thread stopped".into()))?
    }

    /// Cuts records older than `before_unix_ms`; how many were cut.
    pub async fn prune(&self, before_unix_ms: i64) -> Result<u64, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Prune {
                before_unix_ms,
                reply,
            })
            .map_err(|_| AuditError::Storage("the writer thread stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditError::Storage("the writer thread stopped".into()))?
    }

    /// Waits until `ready` holds for the retained records, re-checking each time records
    /// become durable; false if the log stopped first.
    pub async fn wait_until(&self, ready: impl Fn(&[Record]) -> bool) -> bool {
        let mut stored = self.stored.clone();
        loop {
            if self.read(&ready) {
                return true;
            }
            if stored.changed().await.is_err() {
                return false;
            }
        }
    }

    /// The sequence number of the last durable record.
    pub fn last_seq(&self) -> u64 {
        *self.stored.borrow()
    }

    /// Runs `read` over the retained records (oldest first). A read lock, held only for
    /// the scan.
    pub fn read<T>(&self, read: impl FnOnce(&[Record]) -> T) -> T {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        read(&records)
    }
}

/// A crash during an append can leave a last line without its newline; it was never
/// acknowledged, so it is dropped.
fn drop_torn_tail(path: &Path) -> Result<(), AuditError> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::Storage(e.to_string()))?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| AuditError::Storage(e.to_string()))?;
    file.set_len(keep as u64)
        .map_err(|e| AuditError::Storage(e.to_string()))?;
    file.sync_all()
        .map_err(|e| AuditError::Storage(e.to_string()))?;
    tracing::warn!(
        bytes = bytes.len() - keep,
        "dropped a torn record left by a crash (it was never acknowledged)"
    );
    Ok(())
}

impl Writer {
    fn run(mut self, inbox: mpsc::Receiver<Job>) {
        while let Ok(first) = inbox.recv() {
            let mut jobs = vec![first];
            while let Ok(more) = inbox.try_recv() {
                jobs.push(more);
            }
            let mut appended = Vec::new();
            let mut replies = Vec::new();
            for job in jobs {
                match job {
                    Job::Append { events, reply } => {
                        let result = self.write(events, &mut appended);
                        replies.push((reply, result));
                    }
                    Job::Prune {
                        before_unix_ms,
                        reply,
                    } => {
                        // Appends before it become durable first.
                        let flushed = self.sync();
                        self.publish(&mut appended);
                        let _ = reply.send(flushed.and_then(|()| self.prune(before_unix_ms)));
                    }
                }
            }
            let synced = self.sync();
            if synced.is_ok() {
                self.publish(&mut appended);
            }
            for (reply, result) in replies {
                let answer = match (&synced, result) {
                    (Ok(()), result) => result,
                    (Err(e), _) => Err(AuditError::Storage(e.to_string())),
                };
                let _ = reply.send(answer);
            }
        }
    }

    fn write(
        &mut self,
        events: Vec<StoredEvent>,
        appended: &mut Vec<Record>,
    ) -> Result<(u64, u64, u64), AuditError> {
        let (mut stored, mut duplicates) = (0, 0);
        for event in events {
            let last = self.writers.get(&writer_key(&event)).copied().unwrap_or(0);
            if event.writer_seq <= last {
                duplicates += 1;
                continue;
            }
            let seq = self.last_seq + 1;
            let hash = chain_hash(&self.last_hash, seq, &event);
            let record = Record {
                seq,
                prev: std::mem::take(&mut self.last_hash),
                hash: hash.clone(),
                event,
            };
            let line =
                serde_json::to_string(&record).map_err(|e| AuditError::Storage(e.to_string()))?;
            writeln!(self.file, "{line}").map_err(|e| AuditError::Storage(e.to_string()))?;
            self.writers
                .insert(writer_key(&record.event), record.event.writer_seq);
            self.last_seq = seq;
            self.last_hash = hash;
            appended.push(record);
            stored += 1;
        }
        Ok((stored, duplicates, self.last_seq))
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        self.file
            .flush()
            .map_err(|e| AuditError::Storage(e.to_string()))?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| AuditError::Storage(e.to_string()))
    }

    fn publish(&self, appended: &mut Vec<Record>) {
        if appended.is_empty() {
            return;
        }
        self.records
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .append(appended);
        self.stored.send_replace(self.last_seq);
    }

    /// Rewrites the file without records older than `before`, starting with a
    /// checkpoint naming the last record cut.
    fn prune(&mut self, before: i64) -> Result<u64, AuditError> {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        let cut = records
            .iter()
            .take_while(|r| r.event.time_unix_ms < before)
            .count();
        if cut == 0 {
            return Ok(0);
        }
        let last_cut = &records[cut - 1];
        let temp = self.path.with_extension("log.new");
        let storage = |e: std::io::Error| AuditError::Storage(e.to_string());
        {
            let mut out = BufWriter::new(
                tessera_config::private::file_options()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&temp)
                    .map_err(storage)?,
            );
            let checkpoint =
                serde_json::json!({"checkpoint": {"seq": last_cut.seq, "hash": last_cut.hash}});
            writeln!(out, "{checkpoint}").map_err(storage)?;
            for record in &records[cut..] {
                let line = serde_json::to_string(record)
                    .map_err(|e| AuditError::Storage(e.to_string()))?;
                writeln!(out, "{line}").map_err(storage)?;
            }
            out.flush().map_err(storage)?;
            out.get_ref().sync_all().map_err(storage)?;
        }
        std::fs::rename(&temp, &self.path).map_err(storage)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(storage)?;
        }
        self.file = BufWriter::new(
            OpenOptions::new()
                .append(true)
                .open(&self.path)
                .map_err(storage)?,
        );
        records.drain(..cut);
        Ok(cut as u64)
    }
}

/// The key of a writer's position: its service (the caller's verified identity) and its
/// writer id.
fn writer_key(event: &StoredEvent) -> String {
    format!("{}\u{1f}{}", event.service, event.writer)
}
