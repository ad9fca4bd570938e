//! What Tessera services use to write security events to the audit log without ever
//! waiting on it. [`AuditSink::record`] never blocks and never fails the caller: events
//! go to a bounded in-memory queue that a background task sends in batches; when the
//! queue is full or the audit service cannot be reached, events go to a local spool file,
//! which is drained, in order, once the service answers again. Only what cannot even be
//! spooled (disk full) is dropped, and that is counted.
//!
//! Order and exactly-once: every event carries this process's writer id and a sequence
//! number taken when it is recorded; events leave in sequence order (queue first, then
//! spool, and a failed batch goes back to the front of the spool), and the audit service
//! skips any sequence number it already stored, so a retried batch is stored once.

mod spool;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_clock::SharedClock;
use tessera_mtls::ServiceConnector;
use tessera_proto::audit::v1 as pb;
use tessera_proto::audit::v1::audit_client::AuditClient;
use tessera_telemetry::metrics::{Counter, Gauge, Registry};
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

use spool::Spool;

/// Why the sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuditClientError {
    /// Bad URL, TLS or spool settings.
    #[error("audit client configuration: {0}")]
    Config(String),
}

impl AuditClientError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        "audit_client_config"
    }
}

/// How the sink is set up.
#[derive(Debug, Clone)]
pub struct AuditSinkConfig {
    /// The audit service, e.g. `https://127.0.0.1:7403`.
    pub url: String,
    /// The witness: `login`, `session-jwt`, `token-stash`.
    pub service: &'static str,
    /// This datacenter.
    pub datacenter: String,
    /// Where the spool file lives (one per process: `<service>-<writer>.spool`).
    pub spool_dir: PathBuf,
    /// Events held in memory before spooling.
    pub queue_capacity: usize,
    /// Events per batch.
    pub batch_size: usize,
    /// Kinds kept only in part: kind → fraction kept (0, 1].
    pub sample: BTreeMap<String, f64>,
}

impl AuditSinkConfig {
    /// Defaults: 10,000 queued events, batches of 500, no sampling.
    pub fn new(url: impl Into<String>, service: &'static str, spool_dir: PathBuf) -> Self {
        AuditSinkConfig {
            url: url.into(),
            service,
            datacenter: "dc1".into(),
            spool_dir,
            queue_capacity: 10_000,
            batch_size: 500,
            sample: BTreeMap::new(),
        }
    }
}

/// The `[audit]` section of a service's configuration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// e.g. `https://127.0.0.1:7403`; empty: no audit events.
    pub url: String,
    /// Where events wait while the audit service is away.
    pub spool_dir: PathBuf,
    /// Kinds kept only in part: kind → fraction kept, e.g. `jwt_rejected = 0.1`.
    pub sample: BTreeMap<String, f64>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            url: String::new(),
            spool_dir: PathBuf::from(".tessera/spool"),
            sample: BTreeMap::new(),
        }
    }
}

impl AuditSettings {
    /// The sink these settings describe for `service` (disabled when `url` is empty),
    /// presenting the service's certificate and counting in `registry`.
    pub fn start(
        &self,
        service: &'static str,
        datacenter: &str,
        tls: &tessera_mtls::TlsFiles,
        clock: SharedClock,
        registry: &Registry,
    ) -> Result<AuditSink, AuditClientError> {
        if self.url.is_empty() {
            return Ok(AuditSink::disabled());
        }
        let mut config = AuditSinkConfig::new(self.url.clone(), service, self.spool_dir.clone());
        config.datacenter = datacenter.to_owned();
        config.sample = self.sample.clone();
        let connector = tls
            .connector_to(&tessera_mtls::ServiceIdentity::audit())
            .map_err(|e| AuditClientError::Config(format!("tls: {e}")))?;
        AuditSink::start(config, connector, clock, SinkCounters::register(registry))
    }
}

/// The counters a sink keeps (registered in the service's metrics).
#[derive(Debug, Clone)]
pub struct SinkCounters {
    /// Events that could not even be spooled.
    pub dropped: Arc<Counter>,
    /// Events that went through the spool file.
    pub spooled: Arc<Counter>,
    /// Events the audit service acknowledged.
    pub delivered: Arc<Counter>,
    /// Events the audit service refused one by one (the rest of their batch was stored).
    pub refused: Arc<Counter>,
    /// Bytes in this process's spool still waiting for the audit service.
    pub spool_pending: Arc<Gauge>,
}

impl SinkCounters {
    /// Counters registered in `registry`.
    pub fn register(registry: &Registry) -> Self {
        SinkCounters {
            dropped: registry.register(Counter::new(
                "tessera_audit_events_dropped_total",
                "Audit events dropped because they could not even be spooled (disk full).",
            )),
            spooled: registry.register(Counter::new(
                "tessera_audit_events_spooled_total",
                "Audit events written to the local spool (queue full or audit unreachable).",
            )),
            delivered: registry.register(Counter::new(
                "tessera_audit_events_delivered_total",
                "Audit events the audit service acknowledged.",
            )),
            refused: registry.register(Counter::new(
                "tessera_audit_events_refused_total",
                "Audit events the audit service refused one by one as malformed.",
            )),
            spool_pending: registry.register(Gauge::new(
                "tessera_audit_spool_pending_bytes",
                "Bytes of audit events in this process's spool, waiting for the audit service (0 when it keeps up).",
            )),
        }
    }
}

struct Shared {
    writer: String,
    service: &'static str,
    datacenter: String,
    sample: BTreeMap<String, f64>,
    clock: SharedClock,
    next_seq: AtomicU64,
    queue: mpsc::Sender<pb::Event>,
    /// The spool, and whether events must go there to keep their order. A std mutex:
    /// held for one non-blocking queue attempt or one buffered file append.
    spool: Mutex<Spool>,
    counters: SinkCounters,
}

/// Records audit events. Cheap to clone. The sender task belongs to the sinks: when the
/// last clone is dropped (its service has stopped), the task moves whatever is still
/// queued to the spool, for the next process to deliver, and ends.
#[derive(Clone)]
pub struct AuditSink {
    shared: Option<Arc<Shared>>,
    _owner: Option<Arc<SenderOwner>>,
}

/// Tells the sender tasks to stop when the last sink is dropped. Held by sinks only, never
/// by the tasks, so the tasks cannot keep themselves alive.
struct SenderOwner {
    stop: watch::Sender<bool>,
}

impl Drop for SenderOwner {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("enabled", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl AuditSink {
    /// A sink that records nothing (audit not configured).
    pub fn disabled() -> Self {
        AuditSink {
            shared: None,
            _owner: None,
        }
    }

    /// Starts a sink and its sender task (on the current Tokio runtime).
    pub fn start(
        config: AuditSinkConfig,
        connector: ServiceConnector,
        clock: SharedClock,
        counters: SinkCounters,
    ) -> Result<Self, AuditClientError> {
        let channel = connector
            .lazy_channel(&config.url, Duration::from_secs(2), Duration::from_secs(10))
            .map_err(|e| AuditClientError::Config(format!("audit: {e}")))?;
        let mut id = [0u8; 6];
        getrandom::fill(&mut id)
            .map_err(|e| AuditClientError::Config(format!("randomness: {e}")))?;
        let writer = format!(
            "{}-{}",
            config.service,
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let own_spool = config.spool_dir.join(format!("{writer}.spool"));
        let leftovers = leftover_spools(&config.spool_dir, config.service, &own_spool);
        let mut spool = Spool::open(&own_spool).map_err(|e| {
            AuditClientError::Config(format!("spool in {}: {e}", config.spool_dir.display()))
        })?;
        spool.report_depth(counters.spool_pending.clone());
        let (queue, inbox) = mpsc::channel(config.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            writer,
            service: config.service,
            datacenter: config.datacenter.clone(),
            sample: config.sample.clone(),
            clock,
            next_seq: AtomicU64::new(1),
            queue,
            spool: Mutex::new(spool),
            counters,
        });
        let client = AuditClient::new(channel);
        let batch_size = config.batch_size.max(1);
        let (stop, stopped) = watch::channel(false);
        if !leftovers.is_empty() {
            let adopting = adopt_leftovers(shared.clone(), client.clone(), leftovers, batch_size);
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = adopting => {}
                    // A spool half adopted stays on disk for the next process.
                    _ = stopped.wait_for(|stop| *stop) => {}
                }
            });
        }
        tokio::spawn(sender(shared.clone(), client, inbox, batch_size, stopped));
        Ok(AuditSink {
            shared: Some(shared),
            _owner: Some(Arc::new(SenderOwner { stop })),
        })
    }

    /// This process's writer id.
    pub fn writer(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| s.writer.as_str())
    }

    /// Records `event` (kind, outcome, reason, subject, site, IP, details; the rest is
    /// filled in here). Never blocks on the audit service.
    pub fn record(&self, mut event: pb::Event) {
        let Some(shared) = &self.shared else {
            return;
        };
        if let Some(rate) = shared.sample.get(&event.kind).copied() {
            if rate < 1.0 {
                let mut byte = [0u8; 4];
                let roll = getrandom::fill(&mut byte)
                    .map(|()| f64::from(u32::from_le_bytes(byte)) / f64::from(u32::MAX));
                if roll.map_or(true, |roll| roll >= rate) {
                    return;
                }
                event.sample_rate = rate;
            }
        }
        if event.time_unix_ms == 0 {
            event.time_unix_ms = shared.clock.now().as_i64();
        }
        if event.trace_id.is_empty() {
            if let Some((trace_id, span_id)) = tessera_telemetry::trace_context::current_ids() {
                event.trace_id = trace_id;
                event.span_id = span_id;
            }
        }
        clamp_untrusted(&mut event);
        event.service = shared.service.to_owned();
        event.datacenter.clone_from(&shared.datacenter);
        event.writer.clone_from(&shared.writer);
        let mut spool = shared.spool.lock().unwrap_or_else(|e| e.into_inner());
        // The sequence number is taken under the lock, so queue and spool receive events
        // in sequence order.
        event.writer_seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
        if !spool.active {
            match shared.queue.try_send(event) {
                Ok(()) => return,
                Err(
                    mpsc::error::TrySendError::Full(back) | mpsc::error::TrySendError::Closed(back),
                ) => {
                    spool.active = true;
                    event = back;
                }
            }
        }
        match spool.append(&[event]) {
            Ok(()) => shared.counters.spooled.inc(),
            Err(err) => {
                shared.counters.dropped.inc();
                tracing::error!(error = %err, "audit event dropped: the spool cannot be written");
            }
        }
    }
}

/// Sends batches from the queue, and from the spool when it is in use, in order.
async fn sender(
    shared: Arc<Shared>,
    client: AuditClient<Channel>,
    mut inbox: mpsc::Receiver<pb::Event>,
    batch_size: usize,
    mut stopped: watch::Receiver<bool>,
) {
    let mut client = client;
    loop {
        if *stopped.borrow() {
            return keep_for_later(&shared, &mut inbox);
        }
        let first = if shared
            .spool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active
        {
            inbox.try_recv().ok()
        } else {
            // With the spool off, only the queue can hold events: the spool turns on when
            // the queue is full (so this wakes) or when this task fails a send.
            tokio::select! {
                event = inbox.recv() => match event {
                    Some(event) => Some(event),
                    None => return,
                },
                _ = stopped.wait_for(|stop| *stop) => continue,
            }
        };
        if let Some(first) = first {
            let mut batch = vec![first];
            while batch.len() < batch_size {
                match inbox.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if send(&shared, &mut client, &batch).await.is_err() {
                // Keep the order: this batch and everything still queued go to the front
                // of the spool, and the spool takes every new event until it is drained.
                let mut spool = shared.spool.lock().unwrap_or_else(|e| e.into_inner());
                while let Ok(event) = inbox.try_recv() {
                    batch.push(event);
                }
                let count = batch.len() as u64;
                match spool.prepend(&batch) {
                    Ok(()) => shared.counters.spooled.inc_by(count),
                    Err(err) => {
                        shared.counters.dropped.inc_by(count);
                        tracing::error!(error = %err, count, "audit events dropped: the spool cannot be written");
                    }
                }
                spool.active = true;
            }
            continue;
        }
        let active = shared
            .spool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active;
        if active {
            tokio::select! {
                _ = drain(&shared, &mut client, batch_size) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
        }
    }
}

/// At stop: every event still queued goes to the end of the spool, where the next process
/// of this service adopts it.
fn keep_for_later(shared: &Shared, inbox: &mut mpsc::Receiver<pb::Event>) {
    inbox.close();
    let mut queued = Vec::new();
    while let Ok(event) = inbox.try_recv() {
        queued.push(event);
    }
    if queued.is_empty() {
        return;
    }
    let count = queued.len() as u64;
    let mut spool = shared.spool.lock().unwrap_or_else(|e| e.into_inner());
    match spool.append(&queued) {
        Ok(()) => shared.counters.spooled.inc_by(count),
        Err(err) => {
            shared.counters.dropped.inc_by(count);
            tracing::error!(error = %err, count, "audit events dropped at stop: the spool cannot be written");
        }
    }
}

/// Sends the spool's events in order, retrying with backoff until the service answers;
/// then turns the spool off if nothing new arrived meanwhile.
async fn drain(shared: &Shared, client: &mut AuditClient<Channel>, batch_size: usize) {
    drain_spool(shared, &shared.spool, client, batch_size, |spool| {
        spool.active = false;
    })
    .await;
}

/// Sends everything in `spool`, in order, retrying with backoff while the service is
/// away; when it is empty (checked under its lock, so nothing slips in between), resets
/// it and runs `drained` under the same lock.
async fn drain_spool(
    shared: &Shared,
    spool: &Mutex<Spool>,
    client: &mut AuditClient<Channel>,
    batch_size: usize,
    drained: impl FnOnce(&mut Spool),
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = match spool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peek(batch_size)
        {
            Ok(batch) => batch,
            Err(err) => {
                tracing::error!(error = %err, "the audit spool cannot be read");
                return;
            }
        };
        if batch.is_empty() {
            let mut spool = spool.lock().unwrap_or_else(|e| e.into_inner());
            if !spool.is_drained() {
                // Only unreadable lines are left (a torn line from a crash): skip them.
                tracing::warn!("skipping unreadable lines in the audit spool");
            }
            if let Err(err) = spool.reset() {
                tracing::error!(error = %err, "the audit spool cannot be reset");
            }
            drained(&mut spool);
            return;
        }
        match send(shared, client, &batch).await {
            Ok(()) => {
                spool.lock().unwrap_or_else(|e| e.into_inner()).consume();
                backoff = Duration::from_millis(100);
            }
            Err(()) => {
                // The audit service is away: wait (backing off) and try the same batch.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sends what earlier processes of this service left in their spools (a crash or a stop
/// while audit was away), then deletes those files. Their events keep their own writer
/// ids and sequence numbers, so the audit service stores each exactly once.
async fn adopt_leftovers(
    shared: Arc<Shared>,
    mut client: AuditClient<Channel>,
    leftovers: Vec<PathBuf>,
    batch_size: usize,
) {
    for path in leftovers {
        let spool = match Spool::open(&path) {
            Ok(spool) => Mutex::new(spool),
            Err(err) => {
                tracing::error!(path = %path.display(), error = %err, "cannot open a leftover audit spool");
                continue;
            }
        };
        drain_spool(&shared, &spool, &mut client, batch_size, |_| {}).await;
        if let Err(err) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %err, "cannot remove a drained audit spool");
        }
    }
}

/// Spool files in `dir` that earlier processes of `service` left behind.
fn leftover_spools(dir: &std::path::Path, service: &str, own: &std::path::Path) -> Vec<PathBuf> {
    let prefix = format!("{service}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.as_path() != own
                && path.extension().is_some_and(|ext| ext == "spool")
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
                && std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
        })
        .collect();
    found.sort();
    found
}

async fn send(
    shared: &Shared,
    client: &mut AuditClient<Channel>,
    batch: &[pb::Event],
) -> Result<(), ()> {
    let request = pb::AppendRequest {
        events: batch.to_vec(),
    };
    match client.append(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            shared.counters.delivered.inc_by(reply.stored);
            if reply.refused > 0 {
                shared.counters.refused.inc_by(reply.refused);
                tracing::error!(refused = reply.refused, why = ?reply.refusals, "audit refused events of a batch; the rest were stored");
            }
            Ok(())
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            // A batch the service refuses will never be accepted: keep it out of the way
            // (counted as dropped) rather than block every later event.
            shared.counters.dropped.inc_by(batch.len() as u64);
            tracing::error!(error = %status.message(), "audit refused a batch; it was dropped");
            Ok(())
        }
        Err(status) => {
            tracing::warn!(code = ?status.code(), "audit unreachable; spooling");
            Err(())
        }
    }
}

/// The most bytes of one text field the audit service takes.
pub const MAX_FIELD_BYTES: usize = 256;

/// Clamps text fields that may come from outside (a user name, a token's claimed
/// subject, a site, an address) to what the audit service takes: the start of the text,
/// `…` and a hash of the whole, so one over-long value never costs the event, let alone
/// its batch. `details["clamped"]` names the fields that were.
pub fn clamp_untrusted(event: &mut pb::Event) {
    let mut clamped = Vec::new();
    for (name, value) in [
        ("reason", &mut event.reason),
        ("user_id", &mut event.user_id),
        ("user_name", &mut event.user_name),
        ("site", &mut event.site),
        ("client_ip", &mut event.client_ip),
        ("trace_id", &mut event.trace_id),
    ] {
        if value.len() > MAX_FIELD_BYTES {
            *value = clamp(value);
            clamped.push(name);
        }
    }
    if !clamped.is_empty() {
        event.details.insert("clamped".into(), clamped.join(","));
    }
}

fn clamp(value: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(value.as_bytes());
    let tail = format!(
        "…sha256:{}",
        tessera_config::secret::encode_hex(&digest[..4])
    );
    let mut cut = MAX_FIELD_BYTES - tail.len();
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{tail}", &value[..cut])
}

#[cfg(test)]
mod clamp_tests {
    use super::*;

    #[test]
    fn over_long_untrusted_fields_are_clamped_and_say_so() {
        let claimed = "é".repeat(256);
        let mut event = pb::Event {
            user_id: claimed.clone(),
            user_name: "alice".into(),
            ..Default::default()
        };
        clamp_untrusted(&mut event);
        assert!(
            event.user_id.len() <= MAX_FIELD_BYTES,
            "{}",
            event.user_id.len()
        );
        assert!(event.user_id.starts_with("éé"));
        assert!(event.user_id.contains("…sha256:"));
        assert_eq!(event.user_name, "alice", "short fields are left alone");
        assert_eq!(
            event.details.get("clamped").map(String::as_str),
            Some("user_id")
        );
        let mut other = pb::Event {
            user_id: format!("{claimed}x"),
            ..Default::default()
        };
        clamp_untrusted(&mut other);
        assert_ne!(
            other.user_id, event.user_id,
            "the hash tells long values apart"
        );
    }
}

#[cfg(test)]
mod ownership_tests {
    use super::*;

    /// The sender task belongs to the sinks: dropping the last one ends it (nothing keeps
    /// the shared state alive), and every recorded event is then in the spool.
    #[tokio::test]
    async fn dropping_the_last_sink_ends_its_sender_and_keeps_every_event() {
        let dir = tempfile::tempdir().expect("dir");
        let pki = tessera_mtls::DevPki::ensure(&dir.path().join("certs")).expect("pki");
        let connector = pki
            .files_for(&tessera_mtls::ServiceIdentity::login())
            .connector_to(&tessera_mtls::ServiceIdentity::audit())
            .expect("connector");
        let vacant = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}", vacant.local_addr().expect("addr"));
        drop(vacant);
        let spool_dir = dir.path().join("spool");
        let sink = AuditSink::start(
            AuditSinkConfig::new(url, "login", spool_dir.clone()),
            connector,
            tessera_clock::SystemClock::shared(),
            SinkCounters::register(&Registry::default()),
        )
        .expect("sink");
        let shared = Arc::downgrade(sink.shared.as_ref().expect("enabled"));
        for _ in 0..5 {
            sink.record(pb::Event {
                kind: "login_failed".into(),
                ..Default::default()
            });
        }
        let copy = sink.clone();
        drop(sink);
        assert!(shared.upgrade().is_some(), "a clone still records");
        drop(copy);
        tokio::time::timeout(Duration::from_secs(10), async {
            while shared.upgrade().is_some() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the sender ended with its last sink");
        let spooled: usize = std::fs::read_dir(&spool_dir)
            .expect("spool dir")
            .map(|entry| {
                let text = std::fs::read_to_string(entry.expect("entry").path()).expect("spool");
                text.lines().filter(|line| !line.trim().is_empty()).count()
            })
            .sum();
        assert_eq!(spooled, 5, "every event is kept for the next process");
    }
}
