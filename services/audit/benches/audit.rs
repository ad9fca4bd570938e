//! In one run: events per second the audit service stores durably (4 writers, gRPC with
//! mutual TLS, one fsync per group of batches), and what an audited sign-in pays over an
//! unaudited one (the same full sign-in against two otherwise identical stacks,
//! alternated in rounds so drift on these shared cores hits both alike).
//! Run with `just bench` (or `cargo bench -p tessera-audit --bench audit`).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tessera_audit::test_util::AuditHarness;
use tessera_clock::{Clock, SystemClock};
use tessera_login::test_util::LoginStack;
use tessera_proto::audit::v1 as pb;
use tessera_proto::audit::v1::audit_client::AuditClient;
use tessera_testkit::{Browser, TestPki};

const WRITERS: u64 = 4;
const EVENTS_PER_WRITER: u64 = 25_000;
const ROUNDS: usize = 10;
const LOGINS_PER_ROUND: usize = 20;
const PASSWORD: &str = "benchmark password 1";

async fn ingest(audit: &AuditHarness, pki: &TestPki, batch: u64) -> f64 {
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        let channel = pki
            .channel_to(&pki.files("login"), audit.grpc_addr, "audit")
            .await
            .expect("channel");
        clients.push(AuditClient::new(channel));
    }
    let started = SystemClock.instant();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, mut client)| {
            tokio::spawn(async move {
                let writer = format!("bench-{batch}-{w}");
                for start in (1..=EVENTS_PER_WRITER).step_by(batch as usize) {
                    let events = (start..start + batch)
                        .map(|seq| pb::Event {
                            time_unix_ms: 1_800_000_000_000,
                            service: "login".into(),
                            kind: "login_succeeded".into(),
                            outcome: "success".into(),
                            user_id: format!("u{}", seq % 1000),
                            user_name: format!("user{}", seq % 1000),
                            site: "wiki-a".into(),
                            client_ip: "198.51.100.7".into(),
                            user_agent_class: "browser".into(),
                            writer: writer.clone(),
                            writer_seq: seq,
                            ..Default::default()
                        })
                        .collect();
                    client
                        .append(pb::AppendRequest { events })
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    (WRITERS * EVENTS_PER_WRITER) as f64 / started.elapsed().as_secs_f64()
}

struct Site {
    stack: LoginStack,
    secret: String,
    http: reqwest::Client,
}

impl Site {
    async fn new(stack: LoginStack) -> Self {
        stack.add_user("bench", PASSWORD).await.expect("user");
        let secret = stack
            .add_site("bench", "http://localhost:9/cb", None, None)
            .await
            .expect("site");
        Site {
            stack,
            secret,
            http: reqwest::Client::new(),
        }
    }

    /// One full sign-in: form, password post, code exchange. Its duration in µs.
    async fn login(&self, i: usize) -> f64 {
        let verifier = format!("bench-verifier-{i:08}-0123456789abcdefghijklmnopqrstuvwxyz");
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let started = SystemClock.instant();
        let mut browser = Browser::new().expect("browser");
        let form = browser
            .get(&self.stack.url(&format!("/authorize?response_type=code&client_id=bench&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256")))
            .await
            .expect("form");
        let flow = form.form_field("flow").expect("flow");
        let back = browser
            .post(
                &self.stack.url("/login"),
                &[
                    ("flow", &flow),
                    ("username", "bench"),
                    ("password", PASSWORD),
                ],
            )
            .await
            .expect("login");
        let code = back.location_param("code").expect("code");
        let response = self
            .http
            .post(self.stack.url("/token"))
            .basic_auth("bench", Some(&self.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://localhost:9/cb"),
                ("code_verifier", verifier.as_str()),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(response.status().as_u16(), 200);
        started.elapsed().as_secs_f64() * 1e6
    }
}

/// The benchmark signs in one account from one address many times a minute.
fn unlimited(config: &mut tessera_login::config::LoginConfig) {
    config.attempts_per_ip_per_minute = 1_000_000;
    config.account_failures_before_backoff = 1_000_000;
}

/// Stored events at which queries are timed, for the growth table.
const GROWTH: &[u64] = &[100_000, 10_000_000];
const GROWTH_QUERIES: usize = 20;

/// Appends `count` more events (batches of 500, 4 writers) under fresh writer names.
async fn append_events(audit: &AuditHarness, pki: &TestPki, round: usize, count: u64) {
    let per_writer = count / WRITERS;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let channel = pki
            .channel_to(&pki.files("login"), audit.grpc_addr, "audit")
            .await
            .expect("channel");
        let mut client = AuditClient::new(channel);
        tasks.push(tokio::spawn(async move {
            let writer = format!("growth-{round}-{w}");
            for start in (1..=per_writer).step_by(500) {
                let events = (start..(start + 500).min(per_writer + 1))
                    .map(|seq| pb::Event {
                        time_unix_ms: 1_800_000_000_000 + seq as i64,
                        service: "login".into(),
                        kind: "login_succeeded".into(),
                        outcome: "success".into(),
                        user_id: format!("u{}", seq % 100_000),
                        site: "wiki-a".into(),
                        writer: writer.clone(),
                        writer_seq: seq,
                        ..Default::default()
                    })
                    .collect();
                client
                    .append(pb::AppendRequest { events })
                    .await
                    .expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

/// The median over `GROWTH_QUERIES` runs of `query`, in ms.
async fn median_query_ms(
    client: &AuditClient<tonic::transport::Channel>,
    query: pb::QueryRequest,
) -> f64 {
    let mut times = Vec::with_capacity(GROWTH_QUERIES);
    for _ in 0..GROWTH_QUERIES {
        let started = SystemClock.instant();
        client.clone().query(query.clone()).await.expect("query");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Query latency and memory as the log grows: the first page, one user's latest events
/// (a user seen once per 100,000 events), and a user never seen (the whole log scanned).
async fn growth(pki: Arc<TestPki>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let audit = AuditHarness::start(pki.clone(), dir.path()).await?;
    let admin = AuditClient::new(
        pki.channel_to(&pki.files("admin"), audit.grpc_addr, "audit")
            .await?,
    );
    let rss = || {
        tessera_testkit::resident_bytes(Some(std::process::id())).map_or("?".into(), |b| {
            format!("{:.0}", b as f64 / (1024.0 * 1024.0))
        })
    };
    println!("| events stored | first page (ms) | one user's events (ms) | an unknown user, whole log (ms) | append time (s) | process RSS MiB |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!("| 0 | | | | | {} |", rss());
    let mut stored = 0;
    for (round, &size) in GROWTH.iter().enumerate() {
        eprintln!("growth: appending events up to {size}…");
        let started = SystemClock.instant();
        append_events(&audit, &pki, round, size - stored).await;
        let appended = started.elapsed().as_secs_f64();
        stored = size;
        let page = median_query_ms(&admin, pb::QueryRequest::default()).await;
        let user = median_query_ms(
            &admin,
            pb::QueryRequest {
                user: "u4242".into(),
                ..Default::default()
            },
        )
        .await;
        let nobody = median_query_ms(
            &admin,
            pb::QueryRequest {
                user: "nobody".into(),
                ..Default::default()
            },
        )
        .await;
        println!(
            "| {size} | {page:.2} | {user:.2} | {nobody:.2} | {appended:.0} | {} |",
            rss()
        );
    }
    audit.shutdown().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if std::env::args().any(|a| a == "growth") {
        return runtime.block_on(growth(Arc::new(TestPki::new()?)));
    }
    runtime.block_on(async {
        let pki = Arc::new(TestPki::new()?);
        let dir = tempfile::tempdir()?;
        let audit = AuditHarness::start(pki.clone(), dir.path()).await?;
        let big = ingest(&audit, &pki, 500).await;
        let small = ingest(&audit, &pki, 50).await;

        let spool = dir.path().join("spool");
        let url = audit.url();
        let audited = Site::new(
            LoginStack::start_with_pki(pki.clone(), None, None, move |c| {
                unlimited(c);
                c.audit.url = url;
                c.audit.spool_dir = spool;
            })
            .await?,
        )
        .await;
        let plain = Site::new(LoginStack::start(unlimited).await?).await;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            for i in 0..LOGINS_PER_ROUND {
                let n = round * LOGINS_PER_ROUND + i;
                if round % 2 == 0 {
                    with.push(audited.login(n).await);
                    without.push(plain.login(n).await);
                } else {
                    without.push(plain.login(n).await);
                    with.push(audited.login(n).await);
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (mean_with, mean_without) = (mean(&with), mean(&without));
        let (median_with, median_without) = (median(&mut with), median(&mut without));
        let stored = audit.log.read(|records| records.len());

        println!("tessera-audit benchmark (one process, loopback, gRPC with mutual TLS)");
        println!("| measurement | value |");
        println!("|---|---:|");
        println!("| events stored durably per second, 4 writers, batches of 500 | {big:.0} |");
        println!("| events stored durably per second, 4 writers, batches of 50 | {small:.0} |");
        println!("| records in the log afterwards | {stored} |");
        println!("| sign-in without audit, mean / median (µs) | {mean_without:.0} / {median_without:.0} |");
        println!("| sign-in with audit, mean / median (µs) | {mean_with:.0} / {median_with:.0} |");
        println!(
            "| added by audit, mean / median | {:+.2}% / {:+.2}% |",
            100.0 * (mean_with / mean_without - 1.0),
            100.0 * (median_with / median_without - 1.0)
        );
        anyhow::Ok(())
    })
}
