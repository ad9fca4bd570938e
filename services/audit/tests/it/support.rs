//! An audit service in this process, and events to send it.

use std::sync::Arc;

use tessera_audit::config::AuditConfig;
use tessera_audit::server::{self, Listeners, StartedAudit};
use tessera_clock::SystemClock;
use tessera_proto::audit::v1 as pb;
use tessera_proto::audit::v1::audit_client::AuditClient;
use tessera_testkit::TestPki;
use tonic::transport::Channel;

pub struct Audit {
    pub pki: Arc<TestPki>,
    pub grpc_addr: std::net::SocketAddr,
    pub admin_addr: std::net::SocketAddr,
    pub log: tessera_audit::log::AuditLog,
    pub admin_token: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub async fn audit() -> Audit {
    let pki = Arc::new(TestPki::new().expect("pki"));
    let dir = tempfile::tempdir().expect("dir");
    start_in(pki, dir).await
}

pub async fn start_in(pki: Arc<TestPki>, dir: tempfile::TempDir) -> Audit {
    let mut config = AuditConfig::default();
    config.tls.dev_pki_dir = Some(pki.dir().to_owned());
    config.data_dir = dir.path().join("data");
    config.secrets_dir = dir.path().join("secrets");
    // The test events are dated 2023; retention is exercised on its own.
    config.retention_days = 0;
    let listeners = Listeners::loopback().await.expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started: StartedAudit =
        server::start(config, SystemClock::shared(), listeners, async move {
            let _ = stopped.await;
        })
        .await
        .expect("audit starts");
    let audit = Audit {
        pki,
        grpc_addr: started.addr,
        admin_addr: started.admin_addr,
        log: started.handle.log.clone(),
        admin_token: started.handle.admin_token.clone(),
        dir,
        stop: Some(stop),
    };
    tokio::spawn(started.serve());
    audit
}

impl Audit {
    pub async fn client(&self, service: &str) -> AuditClient<Channel> {
        let channel = self
            .pki
            .channel_to(&self.pki.files(service), self.grpc_addr, "audit")
            .await
            .expect("channel");
        AuditClient::new(channel)
    }

    /// A counter's value on the admin port's `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("http://{}/metrics", self.admin_addr))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    pub fn log_file(&self) -> std::path::PathBuf {
        self.dir.path().join("data/audit.log")
    }

    /// Stops the service (its log stays in `dir`).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn event(writer: &str, seq: u64, kind: &str) -> pb::Event {
    pb::Event {
        time_unix_ms: 1_700_000_000_000 + seq as i64,
        service: "login".into(),
        datacenter: "dc1".into(),
        kind: kind.into(),
        outcome: "success".into(),
        user_id: format!("u{}", seq % 7),
        user_name: format!("user{}", seq % 7),
        site: "wiki-a".into(),
        client_ip: "203.0.113.77".into(),
        user_agent_class: "browser".into(),
        writer: writer.into(),
        writer_seq: seq,
        ..Default::default()
    }
}

pub fn batch(events: Vec<pb::Event>) -> pb::AppendRequest {
    pb::AppendRequest { events }
}
