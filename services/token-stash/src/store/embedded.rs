//! The embedded backend: a redb database in a data directory, nothing to install.
//!
//! Writes go through one writer thread that commits in groups: it takes every write that
//! is waiting, applies them in arrival order inside one transaction, makes that
//! transaction durable with a single fsync, and only then answers each caller. So an
//! acknowledged write survives a process kill and a power loss, and a burst of writes
//! shares one fsync instead of paying one each. The single writer is also what makes
//! `take` exactly-once: two takes of one token are applied one after the other, and the
//! second sees the first's tombstone. Reads use redb's MVCC snapshots and never wait for
//! the writer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tessera_clock::UnixMillis;
use tokio::sync::{mpsc, oneshot};

use super::record::{
    owner_prefix, owner_row, owner_time_row, owner_value, read_tombstone, split_time_key, time_key,
    tombstone, Record,
};
use super::{GoneReason, NewEntry, Store, StoreOp, StoreStats, StoredEntry, DEFAULT_REMEMBER_FOR};
use crate::token::{Namespace, Owner, TokenKey};
use crate::StashError;

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
/// `expires_at ‖ key` → value size: finds what has expired by a range scan.
const EXPIRIES: TableDefinition<&[u8], u64> = TableDefinition::new("expiries");
/// `namespace ‖ owner ‖ key` → `expires_at ‖ sealed token`.
const OWNERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("owners");
/// `namespace ‖ owner ‖ created_at ‖ key` → `expires_at ‖ sealed token`: lists what an
/// owner gained since a time by a range scan. Entries stored before this table existed
/// are listed only by full lists.
const OWNER_TIMES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("owner_times");
/// key → why the token went, when, and until when that is remembered.
const TOMBSTONES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tombstones");
/// `remembered until ‖ key`: finds tombstones to forget by a range scan.
const TOMBSTONE_EXPIRIES: TableDefinition<&[u8], ()> = TableDefinition::new("tombstone_expiries");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

const LIVE_ENTRIES: &str = "live_entries";
const LIVE_BYTES: &str = "live_bytes";
const TOMBSTONE_COUNT: &str = "tombstones";

/// The most writes committed together; bounds the time one group holds its callers.
const MAX_GROUP: usize = 512;
/// Writes waiting for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 8192;
/// Expired entries removed per purge step, so one purge never holds the writer long.
const PURGE_STEP: usize = 2048;

/// Settings of the embedded backend.
#[derive(Clone, Debug)]
pub struct EmbeddedStoreOptions {
    /// The directory holding the database file; created if missing.
    pub data_dir: PathBuf,
    /// The most live entries accepted.
    pub capacity: u64,
    /// How long consumed and expired tokens are remembered.
    pub remember_for: Duration,
    /// The most tombstones kept; past it the oldest are forgotten first.
    pub max_remembered: u64,
}

impl EmbeddedStoreOptions {
    /// Defaults for a data directory: a million entries, ten minutes of memory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmbeddedStoreOptions {
            data_dir: data_dir.into(),
            capacity: 1_000_000,
            remember_for: DEFAULT_REMEMBER_FOR,
            max_remembered: 1_000_000,
        }
    }
}

/// The embedded, persistent backend. See the module documentation for its guarantees.
#[derive(Debug)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writes: mpsc::Sender<WriteOp>,
    writer: Option<std::thread::JoinHandle<()>>,
    options: EmbeddedStoreOptions,
}

type Reply<T> = oneshot::Sender<Result<T, StashError>>;

#[derive(Debug)]
enum WriteOp {
    Put {
        key: TokenKey,
        record: Record,
        now: UnixMillis,
        reply: Reply<()>,
    },
    Take {
        key: TokenKey,
        now: UnixMillis,
        reply: Reply<StoredEntry>,
    },
    Delete {
        key: TokenKey,
        now: UnixMillis,
        reply: Reply<bool>,
    },
    Apply {
        ops: Vec<StoreOp>,
        now: UnixMillis,
        reply: Reply<()>,
    },
    Purge {
        now: UnixMillis,
        reply: Reply<u64>,
    },
}

impl EmbeddedStore {
    /// Opens (or creates) the store and purges everything that expired while it was
    /// closed, before returning: a caller can never read a stale entry after a restart.
    pub async fn open(options: EmbeddedStoreOptions, now: UnixMillis) -> Result<Self, StashError> {
        let opened = options.clone();
        let db = tokio::task::spawn_blocking(move || open_database(&opened))
            .await
            .map_err(|e| StashError::Storage(e.to_string()))??;
        let db = Arc::new(db);
        let (writes, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer_db = db.clone();
        let writer_options = options.clone();
        let writer = std::thread::Builder::new()
            .name("stash-writer".into())
            .spawn(move || write_loop(&writer_db, &writer_options, queue))
            .map_err(|e| StashError::Storage(format!("cannot start the writer thread: {e}")))?;
        let store = EmbeddedStore {
            db,
            writes,
            writer: Some(writer),
            options,
        };
        while store.purge_expired(now).await? > 0 {}
        Ok(store)
    }

    async fn write<T>(&self, op: impl FnOnce(Reply<T>) -> WriteOp) -> Result<T, StashError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(op(reply))
            .await
            .map_err(|_| StashError::Storage("the stash writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StashError::Storage("write not committed: its group failed".into()))?
    }

    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StashError> + Send + 'static,
    ) -> Result<T, StashError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || read(&db))
            .await
            .map_err(|e| StashError::Storage(e.to_string()))?
    }
}

impl Store for EmbeddedStore {
    async fn put(&self, key: TokenKey, entry: NewEntry, now: UnixMillis) -> Result<(), StashError> {
        let record = Record::from_new(entry);
        self.write(|reply| WriteOp::Put {
            key,
            record,
            now,
            reply,
        })
        .await
    }

    async fn take(&self, key: TokenKey, now: UnixMillis) -> Result<StoredEntry, StashError> {
        self.write(|reply| WriteOp::Take { key, now, reply }).await
    }

    async fn get(&self, key: TokenKey, now: UnixMillis) -> Result<StoredEntry, StashError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            read_reusable(
                &txn.open_table(ENTRIES)?,
                &txn.open_table(TOMBSTONES)?,
                &key,
                now,
            )?
        })
        .await
    }

    async fn get_many(
        &self,
        keys: Vec<TokenKey>,
        now: UnixMillis,
    ) -> Result<Vec<Result<StoredEntry, StashError>>, StashError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let (entries, tombstones) = (txn.open_table(ENTRIES)?, txn.open_table(TOMBSTONES)?);
            keys.iter()
                .map(|key| read_reusable(&entries, &tombstones, key, now))
                .collect()
        })
        .await
    }

    async fn apply(&self, ops: Vec<StoreOp>, now: UnixMillis) -> Result<(), StashError> {
        self.write(|reply| WriteOp::Apply { ops, now, reply }).await
    }

    async fn delete(&self, key: TokenKey, now: UnixMillis) -> Result<bool, StashError> {
        self.write(|reply| WriteOp::Delete { key, now, reply })
            .await
    }

    async fn list_by_owner(
        &self,
        namespace: &Namespace,
        owner: &Owner,
        since: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<Vec<(TokenKey, Vec<u8>)>, StashError> {
        let prefix = owner_prefix(namespace.as_str(), owner.as_str());
        self.read(move |db| {
            let txn = db.begin_read()?;
            let (table, start) = match since {
                None => (txn.open_table(OWNERS)?, prefix.clone()),
                Some(since) => {
                    let mut start = prefix.clone();
                    start.extend_from_slice(&since.0.to_be_bytes());
                    (txn.open_table(OWNER_TIMES)?, start)
                }
            };
            let mut listed = Vec::new();
            for row in table.range(start.as_slice()..)? {
                let (row_key, row_value) = row?;
                let Some(rest) = row_key.value().strip_prefix(prefix.as_slice()) else {
                    break;
                };
                // A time row holds the creation time before the key.
                let key_bytes = if since.is_some() {
                    rest.get(8..).unwrap_or_default()
                } else {
                    rest
                };
                let (Ok(key), Some((expires_at, sealed))) = (
                    <[u8; 32]>::try_from(key_bytes),
                    split_owner_value(row_value.value()),
                ) else {
                    continue;
                };
                if expires_at > now {
                    listed.push((TokenKey(key), sealed.to_vec()));
                }
            }
            Ok(listed)
        })
        .await
    }

    async fn stats(&self, now: UnixMillis) -> Result<StoreStats, StashError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let counters = txn.open_table(COUNTERS)?;
            let count = |name| -> Result<u64, StashError> {
                Ok(counters.get(name)?.map(|v| v.value()).unwrap_or(0))
            };
            let (mut live_entries, mut live_bytes) = (count(LIVE_ENTRIES)?, count(LIVE_BYTES)?);
            // Entries that expired since the last purge are stored but no longer live.
            let expiries = txn.open_table(EXPIRIES)?;
            for row in expiries.range(..=expired_bound(now).as_slice())? {
                let (_, size) = row?;
                live_entries = live_entries.saturating_sub(1);
                live_bytes = live_bytes.saturating_sub(size.value());
            }
            Ok(StoreStats {
                live_entries,
                live_bytes,
            })
        })
        .await
    }

    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StashError> {
        self.write(|reply| WriteOp::Purge { now, reply }).await
    }

    fn capacity(&self) -> u64 {
        self.options.capacity
    }

    async fn close(mut self) {
        let writer = self.writer.take();
        // Dropping the sender lets the writer finish what is queued and exit, releasing
        // its handle on the database; readers hold none between calls.
        drop(self);
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }
}

fn open_database(options: &EmbeddedStoreOptions) -> Result<Database, StashError> {
    // Stored sessions name people: owner-only, whatever the umask.
    let path = options.data_dir.join("stash.redb");
    tessera_config::private::precreate(&path)
        .map_err(|e| StashError::Config(format!("cannot create {}: {e}", path.display())))?;
    let db = Database::create(&path).map_err(|e| {
        StashError::Storage(format!(
            "cannot open {}: {e} (is another stash using this data directory?)",
            path.display()
        ))
    })?;
    let txn = db.begin_write()?;
    txn.open_table(ENTRIES)?;
    txn.open_table(EXPIRIES)?;
    txn.open_table(OWNERS)?;
    txn.open_table(OWNER_TIMES)?;
    txn.open_table(TOMBSTONES)?;
    txn.open_table(TOMBSTONE_EXPIRIES)?;
    txn.open_table(COUNTERS)?;
    txn.commit()?;
    Ok(db)
}

/// The writer thread: group commit until every sender is gone.
fn write_loop(db: &Database, options: &EmbeddedStoreOptions, mut queue: mpsc::Receiver<WriteOp>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        commit_group(db, options, &mut group);
    }
}

/// A write's answer, held back until its group is durable.
enum Answer {
    Unit(Reply<()>, Result<(), StashError>),
    Entry(Reply<StoredEntry>, Result<StoredEntry, StashError>),
    Flag(Reply<bool>, Result<bool, StashError>),
    Count(Reply<u64>, Result<u64, StashError>),
}

impl Answer {
    fn send(self, failure: Option<&str>) {
        let fail = |msg: &str| StashError::Storage(format!("write not committed: {msg}"));
        match self {
            Answer::Unit(reply, result) => {
                let _ = reply.send(failure.map_or(result, |m| Err(fail(m))));
            }
            Answer::Entry(reply, result) => {
                let _ = reply.send(failure.map_or(result, |m| Err(fail(m))));
            }
            Answer::Flag(reply, result) => {
                let _ = reply.send(failure.map_or(result, |m| Err(fail(m))));
            }
            Answer::Count(reply, result) => {
                let _ = reply.send(failure.map_or(result, |m| Err(fail(m))));
            }
        }
    }
}

fn commit_group(db: &Database, options: &EmbeddedStoreOptions, group: &mut Vec<WriteOp>) {
    let mut answers = Vec::with_capacity(group.len());
    let outcome = (|| -> Result<(), StashError> {
        let txn = db.begin_write()?;
        let dirty = {
            let mut tables = Tables::open(&txn, options)?;
            for op in group.drain(..) {
                // An Err from `?` is a storage failure: the whole group is abandoned.
                answers.push(match op {
                    WriteOp::Put {
                        key,
                        record,
                        now,
                        reply,
                    } => Answer::Unit(reply, tables.put(key, record, now)?),
                    WriteOp::Take { key, now, reply } => {
                        Answer::Entry(reply, tables.take(key, now)?)
                    }
                    WriteOp::Delete { key, now, reply } => {
                        Answer::Flag(reply, tables.delete(key, now)?)
                    }
                    WriteOp::Apply { ops, now, reply } => {
                        Answer::Unit(reply, tables.apply(ops, now)?)
                    }
                    WriteOp::Purge { now, reply } => {
                        Answer::Count(reply, Ok(tables.purge(now, PURGE_STEP)?))
                    }
                });
            }
            if tables.dirty {
                tables.save_counters()?;
            }
            tables.dirty
        };
        if dirty {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(())
    })();
    let failure = outcome.err().map(|e| e.to_string());
    if let Some(reason) = &failure {
        tracing::error!(%reason, writes = answers.len() + group.len(), "stash write group failed");
    }
    for answer in answers {
        answer.send(failure.as_deref());
    }
    // Writes never reached because the group failed early were dropped with the drain;
    // their callers see their reply channel closed, which `write` reports as not committed.
}

/// The tables of one write transaction, with the counters cached until the group ends.
struct Tables<'txn> {
    entries: Table<'txn, &'static [u8], &'static [u8]>,
    expiries: Table<'txn, &'static [u8], u64>,
    owners: Table<'txn, &'static [u8], &'static [u8]>,
    owner_times: Table<'txn, &'static [u8], &'static [u8]>,
    tombstones: Table<'txn, &'static [u8], &'static [u8]>,
    tombstone_expiries: Table<'txn, &'static [u8], ()>,
    counters: Table<'txn, &'static str, u64>,
    live_entries: u64,
    live_bytes: u64,
    tombstone_count: u64,
    /// Whether anything was written: a group of pure refusals needs no commit (no fsync).
    dirty: bool,
    options: &'txn EmbeddedStoreOptions,
}

/// Outer `Result`: storage failure, abandon the group. Inner: this write's own answer.
type Step<T> = Result<Result<T, StashError>, StashError>;

impl<'txn> Tables<'txn> {
    fn open(
        txn: &'txn redb::WriteTransaction,
        options: &'txn EmbeddedStoreOptions,
    ) -> Result<Self, StashError> {
        let counters = txn.open_table(COUNTERS)?;
        let count = |name| -> Result<u64, StashError> {
            Ok(counters.get(name)?.map(|v| v.value()).unwrap_or(0))
        };
        let (live_entries, live_bytes, tombstone_count) = (
            count(LIVE_ENTRIES)?,
            count(LIVE_BYTES)?,
            count(TOMBSTONE_COUNT)?,
        );
        Ok(Tables {
            entries: txn.open_table(ENTRIES)?,
            expiries: txn.open_table(EXPIRIES)?,
            owners: txn.open_table(OWNERS)?,
            owner_times: txn.open_table(OWNER_TIMES)?,
            tombstones: txn.open_table(TOMBSTONES)?,
            tombstone_expiries: txn.open_table(TOMBSTONE_EXPIRIES)?,
            counters,
            live_entries,
            live_bytes,
            tombstone_count,
            dirty: false,
            options,
        })
    }

    fn save_counters(&mut self) -> Result<(), StashError> {
        self.counters.insert(LIVE_ENTRIES, self.live_entries)?;
        self.counters.insert(LIVE_BYTES, self.live_bytes)?;
        self.counters
            .insert(TOMBSTONE_COUNT, self.tombstone_count)?;
        Ok(())
    }

    fn put(&mut self, key: TokenKey, record: Record, now: UnixMillis) -> Step<()> {
        if self.in_use(&key, now)? {
            return Ok(Err(StashError::AlreadyExists));
        }
        if let Err(full) = self.make_room(1, now)? {
            return Ok(Err(full));
        }
        self.insert(key, record)?;
        Ok(Ok(()))
    }

    /// Whether `key` is stored or remembered: a put there must be refused.
    fn in_use(&self, key: &TokenKey, now: UnixMillis) -> Result<bool, StashError> {
        Ok(self.entries.get(key.0.as_slice())?.is_some()
            || !matches!(gone(&self.tombstones, key, now)?, StashError::NotFound))
    }

    /// Room for `count` more live entries, or the refusal.
    fn make_room(&mut self, count: u64, now: UnixMillis) -> Step<()> {
        if self.live_entries + count > self.options.capacity {
            // Expired entries not yet purged must never be why a put is refused.
            self.purge(now, usize::MAX)?;
            if self.live_entries + count > self.options.capacity {
                return Ok(Err(StashError::CapacityExhausted {
                    capacity: self.options.capacity,
                }));
            }
        }
        Ok(Ok(()))
    }

    /// Checks every operation first and writes only if all pass, so a refusal leaves
    /// nothing behind; all of it commits with the rest of the group.
    fn apply(&mut self, ops: Vec<StoreOp>, now: UnixMillis) -> Step<()> {
        let mut puts = 0;
        for (index, op) in ops.iter().enumerate() {
            let refusal = match op {
                StoreOp::Put { key, .. } => {
                    puts += 1;
                    self.in_use(key, now)?.then_some(StashError::AlreadyExists)
                }
                StoreOp::Require { key } => {
                    read_reusable(&self.entries, &self.tombstones, key, now)?.err()
                }
            };
            if let Some(refusal) = refusal {
                return Ok(Err(refusal.in_operation(index)));
            }
        }
        if let Err(full) = self.make_room(puts, now)? {
            let first_put = ops.iter().position(|op| matches!(op, StoreOp::Put { .. }));
            return Ok(Err(full.in_operation(first_put.unwrap_or(0))));
        }
        for op in ops {
            if let StoreOp::Put { key, entry } = op {
                self.insert(key, Record::from_new(entry))?;
            }
        }
        Ok(Ok(()))
    }

    fn insert(&mut self, key: TokenKey, record: Record) -> Result<(), StashError> {
        let size = record.value.len() as u64;
        self.dirty = true;
        self.entries
            .insert(key.0.as_slice(), record.encode().as_slice())?;
        self.expiries
            .insert(time_key(record.expires_at, &key).as_slice(), size)?;
        if !record.owner.is_empty() {
            let row = owner_row(&record.namespace, &record.owner, &key);
            let value = owner_value(record.expires_at, &record.sealed_token);
            self.owners.insert(row.as_slice(), value.as_slice())?;
            let row = owner_time_row(&record.namespace, &record.owner, record.created_at, &key);
            self.owner_times.insert(row.as_slice(), value.as_slice())?;
        }
        self.live_entries += 1;
        self.live_bytes += size;
        Ok(())
    }

    fn take(&mut self, key: TokenKey, now: UnixMillis) -> Step<StoredEntry> {
        let Some(record) = self.record(&key)? else {
            return Ok(Err(gone(&self.tombstones, &key, now)?));
        };
        if !record.single_use {
            return Ok(Err(StashError::WrongKind {
                actual: "reusable",
                use_instead: "Get",
            }));
        }
        self.remove_entry(&key, &record)?;
        if record.expires_at <= now {
            self.remember(&key, GoneReason::Expired, record.expires_at, now)?;
            return Ok(Err(StashError::Expired {
                at: record.expires_at,
            }));
        }
        self.remember(&key, GoneReason::Consumed, now, now)?;
        Ok(Ok(record.into_stored()))
    }

    fn delete(&mut self, key: TokenKey, now: UnixMillis) -> Step<bool> {
        let Some(record) = self.record(&key)? else {
            return Ok(Ok(false));
        };
        self.remove_entry(&key, &record)?;
        if record.expires_at <= now {
            self.remember(&key, GoneReason::Expired, record.expires_at, now)?;
            return Ok(Ok(false));
        }
        self.remember(&key, GoneReason::Deleted, now, now)?;
        Ok(Ok(true))
    }

    /// Removes up to `limit` expired entries and every tombstone past its memory time.
    fn purge(&mut self, now: UnixMillis, limit: usize) -> Result<u64, StashError> {
        let bound = expired_bound(now);
        let mut expired = Vec::new();
        for row in self.expiries.range(..=bound.as_slice())?.take(limit) {
            let (time_key, _) = row?;
            if let Some((_, key)) = split_time_key(time_key.value()) {
                expired.push(key);
            }
        }
        for key in &expired {
            if let Some(record) = self.record(key)? {
                self.remove_entry(key, &record)?;
                self.remember(key, GoneReason::Expired, record.expires_at, now)?;
            }
        }

        let mut forgotten = Vec::new();
        for row in self.tombstone_expiries.range(..=bound.as_slice())? {
            let (time_key, _) = row?;
            forgotten.push(time_key.value().to_vec());
        }
        for time_key in forgotten {
            self.forget(&time_key)?;
        }
        Ok(expired.len() as u64)
    }

    fn record(&self, key: &TokenKey) -> Result<Option<Record>, StashError> {
        match self.entries.get(key.0.as_slice())? {
            Some(bytes) => Ok(Some(decode(bytes.value())?)),
            None => Ok(None),
        }
    }

    fn remove_entry(&mut self, key: &TokenKey, record: &Record) -> Result<(), StashError> {
        self.dirty = true;
        self.entries.remove(key.0.as_slice())?;
        self.expiries
            .remove(time_key(record.expires_at, key).as_slice())?;
        if !record.owner.is_empty() {
            let row = owner_row(&record.namespace, &record.owner, key);
            self.owners.remove(row.as_slice())?;
            let row = owner_time_row(&record.namespace, &record.owner, record.created_at, key);
            self.owner_times.remove(row.as_slice())?;
        }
        self.live_entries = self.live_entries.saturating_sub(1);
        self.live_bytes = self.live_bytes.saturating_sub(record.value.len() as u64);
        Ok(())
    }

    /// Remembers why `key` went (at `at`) for the configured time from `at`, keeping the
    /// number of tombstones bounded by forgetting the oldest first.
    fn remember(
        &mut self,
        key: &TokenKey,
        reason: GoneReason,
        at: UnixMillis,
        now: UnixMillis,
    ) -> Result<(), StashError> {
        let until = at.saturating_add(self.options.remember_for);
        if until <= now || self.options.max_remembered == 0 {
            return Ok(());
        }
        self.dirty = true;
        let previous = self
            .tombstones
            .insert(key.0.as_slice(), tombstone(reason, at, until).as_slice())?
            .and_then(|old| read_tombstone(old.value()));
        match previous {
            Some((_, _, old_until)) => {
                self.tombstone_expiries
                    .remove(time_key(old_until, key).as_slice())?;
            }
            None => self.tombstone_count += 1,
        }
        self.tombstone_expiries
            .insert(time_key(until, key).as_slice(), ())?;
        while self.tombstone_count > self.options.max_remembered {
            let oldest = match self.tombstone_expiries.first()? {
                Some((time_key, _)) => time_key.value().to_vec(),
                None => break,
            };
            self.forget(&oldest)?;
        }
        Ok(())
    }

    fn forget(&mut self, tombstone_time_key: &[u8]) -> Result<(), StashError> {
        self.dirty = true;
        self.tombstone_expiries.remove(tombstone_time_key)?;
        if let Some((_, key)) = split_time_key(tombstone_time_key) {
            if self.tombstones.remove(key.0.as_slice())?.is_some() {
                self.tombstone_count = self.tombstone_count.saturating_sub(1);
            }
        }
        Ok(())
    }
}

/// The reusable entry under `key`, or why a get finds none.
fn read_reusable(
    entries: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tombstones: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &TokenKey,
    now: UnixMillis,
) -> Step<StoredEntry> {
    let Some(bytes) = entries.get(key.0.as_slice())? else {
        return Ok(Err(gone(tombstones, key, now)?));
    };
    let record = decode(bytes.value())?;
    if record.single_use {
        return Ok(Err(StashError::WrongKind {
            actual: "single-use",
            use_instead: "Take",
        }));
    }
    if record.expires_at <= now {
        return Ok(Err(StashError::Expired {
            at: record.expires_at,
        }));
    }
    Ok(Ok(record.into_stored()))
}

/// The error for a token that is not stored: what its tombstone says, or not found.
fn gone(
    tombstones: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &TokenKey,
    now: UnixMillis,
) -> Result<StashError, StashError> {
    let remembered = tombstones
        .get(key.0.as_slice())?
        .and_then(|t| read_tombstone(t.value()));
    Ok(match remembered {
        Some((reason, at, until)) if until > now => reason.into_error(at),
        _ => StashError::NotFound,
    })
}

/// The largest time key at `now`: everything at or before it has expired.
fn expired_bound(now: UnixMillis) -> [u8; 40] {
    time_key(now, &TokenKey([0xff; 32]))
}

fn decode(bytes: &[u8]) -> Result<Record, StashError> {
    Record::decode(bytes).ok_or_else(|| StashError::Storage("a stored entry is corrupt".into()))
}

fn split_owner_value(bytes: &[u8]) -> Option<(UnixMillis, &[u8])> {
    let (at, sealed) = bytes.split_at_checked(8)?;
    Some((UnixMillis(u64::from_be_bytes(at.try_into().ok()?)), sealed))
}
