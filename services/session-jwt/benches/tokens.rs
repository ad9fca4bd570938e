//! Session tokens in one run: Ed25519 (what Tessera signs) against RS256 with a 4096-bit
//! key (what produced 900-byte cookies elsewhere): sign and verify rates, token sizes,
//! cached verification, and refreshes per second through the service over gRPC+mTLS.
//! Run with `just bench` (or `cargo bench -p tessera-session-jwt`).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{SigningKey as RsaSigningKey, VerifyingKey as RsaVerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier as _};
use rsa::RsaPrivateKey;
use tessera_clock::{Clock, SystemClock};
use tessera_proto::session::v1 as pb;
use tessera_session_jwt::test_util::SessionHarness;
use tessera_testkit::TestPki;
use tessera_token_stash::test_util::StashHarness;
use tessera_verify::{Claims, Jwks, SessionSigner, Verifier, VerifierConfig};

const TOKENS: usize = 20_000;
/// Distinct tokens in the cached-verification measurement (the cache keeps 16,384).
const CACHED: usize = 10_000;
/// Refreshes in each timed round.
const REFRESHES: usize = 6_000;
const REFRESH_ROUNDS: usize = 5;
/// Concurrent callers in the timed refresh rounds unless `-- callers N` says otherwise,
/// and the fan-out of the growth steps' fills.
const REFRESH_CALLERS: usize = 32;
/// The name of the callers' threads: they run on a runtime of their own, so the CPU the
/// load generator uses can be read apart from the service's and the stash's.
const CALLER_THREADS: &str = "refresh-caller";

fn claims(i: usize, now_secs: u64) -> Claims {
    Claims {
        aud: "s2345678901234567890".into(),
        sub: format!("u{i:019}"),
        sid: format!("{i:012}"),
        iat: now_secs,
        exp: now_secs + 300,
        name: None,
    }
}

/// Operations per second of `op` run `n` times.
fn rate(n: usize, mut op: impl FnMut(usize)) -> f64 {
    let started = SystemClock.instant();
    for i in 0..n {
        op(i);
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn rs256_token(key: &RsaSigningKey<Sha256>, claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"rsa-4096-key-1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
    let input = format!("{header}.{payload}");
    let signature = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn rs256_verify(key: &RsaVerifyingKey<Sha256>, token: &str) -> bool {
    let Some((input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    key.verify(input.as_bytes(), &signature).is_ok()
}

type LoginClient =
    tessera_proto::session::v1::session_jwt_client::SessionJwtClient<tonic::transport::Channel>;

/// The stash (embedded) and the session service in this process, and the login's client.
async fn start_stack(pki: Arc<TestPki>) -> (StashHarness, SessionHarness, LoginClient) {
    let stash = StashHarness::builder(pki.clone())
        .start()
        .await
        .expect("stash");
    let sessions = SessionHarness::start(pki, stash.grpc_addr, None, |_| {})
        .await
        .expect("sessions");
    let login = sessions.client("login").await.expect("client");
    (stash, sessions, login)
}

/// A new central session of `user_id` for the site "wiki-a".
fn issue_request(user_id: String) -> pb::IssueRequest {
    pb::IssueRequest {
        user_id,
        user_name: String::new(),
        audience: "wiki-a".into(),
        parent_session_id: String::new(),
    }
}

/// A new session's refresh token.
async fn issued_refresh_token(login: &mut LoginClient, user_id: String) -> String {
    login
        .issue(issue_request(user_id))
        .await
        .expect("issue")
        .into_inner()
        .refresh_token
}

/// The refresh token `refresh_token` is exchanged for.
async fn refreshed(login: &mut LoginClient, refresh_token: String) -> String {
    login
        .refresh(pb::RefreshRequest {
            refresh_token,
            audience: String::new(),
        })
        .await
        .expect("refresh")
        .into_inner()
        .refresh_token
}

/// `-- profile N`: one session refreshed N times after one to warm up, one refresh after
/// another, for a profiler (`valgrind --tool=callgrind`) to count what one costs: the
/// caller's gRPC call, the session service and the stash, all in this process.
fn profile_run(refreshes: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (_stash, _sessions, mut login) =
            start_stack(Arc::new(TestPki::new().expect("pki"))).await;
        let mut refresh_token = issued_refresh_token(&mut login, "profiled".into()).await;
        for _ in 0..=refreshes {
            refresh_token = refreshed(&mut login, refresh_token).await;
        }
        eprintln!("{} refreshes done", refreshes + 1);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "profile") {
        let refreshes = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(100);
        return profile_run(refreshes);
    }
    let refresh_callers = match args.iter().position(|a| a == "callers") {
        Some(at) => match args.get(at + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if (1..=1024).contains(&n) => n,
            _ => {
                eprintln!("tokens: `callers` takes a number of callers from 1 to 1024");
                std::process::exit(2);
            }
        },
        None => REFRESH_CALLERS,
    };
    let now = SystemClock.now();
    let now_secs = now.0 / 1000;
    let all_claims: Vec<Claims> = (0..TOKENS).map(|i| claims(i, now_secs)).collect();

    eprintln!("Ed25519: signing and verifying {TOKENS} tokens…");
    let signer = SessionSigner::from_seed(&[7; 32]);
    let verifier = Verifier::new(VerifierConfig::new("s2345678901234567890"));
    verifier.set_keys(&Jwks {
        keys: vec![signer.jwk()],
    });
    let mut ed_tokens = Vec::with_capacity(TOKENS);
    let ed_sign = rate(TOKENS, |i| ed_tokens.push(signer.sign(&all_claims[i])));
    let ed_verify = rate(TOKENS, |i| {
        assert!(verifier.verify(&ed_tokens[i], now).is_ok())
    });
    // The cache holds the most recent 16,384 verified tokens; time hits on a set that fits.
    let hot = &ed_tokens[..CACHED];
    for token in hot {
        assert!(verifier.verify(token, now).is_ok());
    }
    let cached = rate(CACHED * 10, |i| {
        assert!(verifier.verify(&hot[i % CACHED], now).is_ok())
    });

    eprintln!("RS256: generating a 4096-bit key…");
    let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 4096).expect("rsa key");
    let rsa_signer = RsaSigningKey::<Sha256>::new(private.clone());
    let rsa_verifier = RsaVerifyingKey::<Sha256>::new(private.to_public_key());
    let rsa_n = TOKENS / 20;
    eprintln!("RS256: signing and verifying {rsa_n} tokens…");
    let mut rsa_tokens = Vec::with_capacity(rsa_n);
    let rsa_sign = rate(rsa_n, |i| {
        rsa_tokens.push(rs256_token(&rsa_signer, &all_claims[i]))
    });
    let rsa_verify = rate(rsa_n, |i| {
        assert!(rs256_verify(&rsa_verifier, &rsa_tokens[i]))
    });

    eprintln!("refreshing {REFRESH_ROUNDS} x {REFRESHES} times through the service ({refresh_callers} callers)…");
    let (refreshes, p50, p99, refresh_token_bytes, growth) = refreshes_per_second(refresh_callers);

    println!();
    println!("| measure | Ed25519 (EdDSA) | RS256, 4096-bit key | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| token size, 20-char user and site (bytes) | {} | {} | {:.1}x smaller |",
        ed_tokens[0].len(),
        rsa_tokens[0].len(),
        rsa_tokens[0].len() as f64 / ed_tokens[0].len() as f64
    );
    println!(
        "| sign (tokens/s, one core) | {ed_sign:.0} | {rsa_sign:.0} | {:.0}x |",
        ed_sign / rsa_sign
    );
    println!(
        "| verify, uncached (tokens/s, one core) | {ed_verify:.0} | {rsa_verify:.0} | {:.1}x |",
        ed_verify / rsa_verify
    );
    println!("| verify, cached (tokens/s, one core) | {cached:.0} | | |");
    println!(
        "| verify, cached (µs per token) | {:.2} | | |",
        1e6 / cached
    );
    println!();
    println!("| refresh through the service (gRPC+mTLS, stash embedded) | value |");
    println!("|---|---:|");
    println!(
        "| refreshes/s, {refresh_callers} callers, {} cores shared with the stash and the callers (median of {REFRESH_ROUNDS} rounds; lowest, highest) | {:.0} ({:.0}, {:.0}) |",
        cores(),
        refreshes.median, refreshes.lowest, refreshes.highest
    );
    println!(
        "| refreshes/s per core | {:.0} |",
        refreshes.median / cores()
    );
    println!(
        "| against 120 refreshes/s per vCPU | {:.1}x |",
        refreshes.median / cores() / 120.0
    );
    if let (Some(cpu), Some(busy)) = (refreshes.cpu_per_refresh, refreshes.busy) {
        println!(
            "| CPU per refresh: callers, service, stash and kernel (µs) | {:.0} |",
            cpu * 1e6
        );
        println!("| cores busy during the rounds | {:.0}% |", busy * 100.0);
        println!(
            "| refreshes/s per core were the cores never idle | {:.0} = {:.1}x |",
            1.0 / cpu,
            1.0 / cpu / 120.0
        );
        if let Some(caller_cpu) = refreshes.caller_cpu_per_refresh {
            let service_cpu = cpu - caller_cpu;
            println!(
                "| CPU per refresh: the callers' threads, i.e. the load generator (µs) | {:.0} |",
                caller_cpu * 1e6
            );
            println!(
                "| CPU per refresh: the session service and the stash, kernel included (µs) | {:.0} |",
                service_cpu * 1e6
            );
            println!(
                "| refreshes/s per core of the service's and the stash's own CPU | {:.0} = {:.1}x |",
                1.0 / service_cpu,
                1.0 / service_cpu / 120.0
            );
        }
    }
    println!("| p50 / p99 latency (µs) | {p50} / {p99} |");
    println!("| refresh token size, 10-char user, 6-char site (bytes) | {refresh_token_bytes} |");
    println!();
    for line in growth {
        println!("{line}");
    }
}

/// Live sessions at which one caller's refresh latency is timed.
const SESSIONS_LIVE: &[usize] = &[100, 100_000];
/// Revocations in force at which a replica's poll is timed.
const REVOCATIONS: &[usize] = &[100, 100_000];
const GROWTH_REFRESHES: usize = 1_000;
const POLLS: usize = 5;

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.1}", b as f64 / (1024.0 * 1024.0))
    })
}

/// Issues sessions `from..to` for made-up users, 32 at a time.
async fn issue_sessions(login: &LoginClient, from: usize, to: usize) {
    let tasks: Vec<_> = (0..REFRESH_CALLERS)
        .map(|caller| {
            let mut login = login.clone();
            tokio::spawn(async move {
                for i in (from + caller..to).step_by(REFRESH_CALLERS) {
                    login
                        .issue(issue_request(format!("live-{i}")))
                        .await
                        .expect("issue");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("issuer");
    }
}

/// One caller refreshing one session `GROWTH_REFRESHES` times: p50 and p99 in µs.
async fn refresh_latency(login: &LoginClient) -> (u64, u64) {
    let mut login = login.clone();
    let mut refresh_token = issued_refresh_token(&mut login, "timed".into()).await;
    let mut latency = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..GROWTH_REFRESHES {
        let one = SystemClock.instant();
        refresh_token = refreshed(&mut login, refresh_token).await;
        latency
            .record(one.elapsed().as_micros().max(1) as u64)
            .expect("record");
    }
    (
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
    )
}

/// Stores revocations `from..to` as another replica would (one revoked session each, in
/// force for an hour), 32 at a time.
async fn store_revocations(stash: &tessera_stash_client::StashClient, from: usize, to: usize) {
    let until = SystemClock.now().saturating_add(Duration::from_secs(3600));
    let tasks: Vec<_> = (0..REFRESH_CALLERS)
        .map(|caller| {
            let stash = stash.clone();
            tokio::spawn(async move {
                for i in (from + caller..to).step_by(REFRESH_CALLERS) {
                    let record = pb::SessionsRevoked {
                        session_ids: vec![format!("revoked-{i:09}")],
                        until_unix_ms: until.as_i64(),
                        origin_datacenter: String::new(),
                    };
                    stash
                        .put(
                            "revoked",
                            prost::Message::encode_to_vec(&record),
                            Duration::from_secs(3600),
                            "all",
                        )
                        .await
                        .expect("store revocation");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("revoker");
    }
}

/// Refresh latency as sessions accumulate, then a replica's revocation poll as
/// revocations accumulate, with this process's memory (stash and session service both
/// run in it); the table's lines.
async fn growth(
    sessions: &SessionHarness,
    stash: &tessera_stash_client::StashClient,
    login: &LoginClient,
) -> Vec<String> {
    let own_rss = || mib(tessera_testkit::resident_bytes(Some(std::process::id())));
    let mut lines = vec![
        "| sessions live | refresh p50 / p99 µs (one caller) | process RSS MiB (stash and session service) |".to_owned(),
        "|---:|---:|---:|".to_owned(),
    ];
    let mut live = 0;
    for &size in SESSIONS_LIVE {
        eprintln!("growth: issuing sessions up to {size}…");
        issue_sessions(login, live, size).await;
        live = size;
        let (p50, p99) = refresh_latency(login).await;
        lines.push(format!("| {size} | {p50} / {p99} | {} |", own_rss()));
    }
    lines.push(String::new());
    lines.push(
        "| revocations in force | listing them all, as every poll did before (ms) | one poll by a replica, following on (ms) | process RSS MiB |"
            .to_owned(),
    );
    lines.push("|---:|---:|---:|---:|".to_owned());
    let feed = sessions.sessions.revocations();
    let mut stored = 0;
    for &count in REVOCATIONS {
        eprintln!("growth: storing revocations up to {count}…");
        store_revocations(stash, stored, count).await;
        stored = count;
        // Take every one in first and let them age past the overlap a following list
        // reaches back over, so what is timed is the steady poll.
        feed.sync_revocations().await.expect("take in");
        eprintln!(
            "growth: waiting {} s for them to age past the list overlap…",
            tessera_token_stash::LIST_OVERLAP.as_secs() + 1
        );
        tokio::time::sleep(tessera_token_stash::LIST_OVERLAP + Duration::from_secs(1)).await;
        feed.sync_revocations().await.expect("poll");
        let started = SystemClock.instant();
        for _ in 0..POLLS {
            for namespace in ["epoch", "revoked"] {
                stash.list(namespace, "all").await.expect("list");
            }
        }
        let full_ms = started.elapsed().as_secs_f64() * 1000.0 / POLLS as f64;
        let started = SystemClock.instant();
        for _ in 0..POLLS {
            feed.sync_revocations().await.expect("poll");
        }
        let mean_ms = started.elapsed().as_secs_f64() * 1000.0 / POLLS as f64;
        lines.push(format!(
            "| {count} | {full_ms:.2} | {mean_ms:.2} | {} |",
            own_rss()
        ));
    }
    lines
}

/// Refreshes per second over the rounds.
struct Rates {
    median: f64,
    lowest: f64,
    highest: f64,
    /// CPU seconds per refresh, everything in the process: callers, service, stash.
    cpu_per_refresh: Option<f64>,
    /// The part of `cpu_per_refresh` spent on the callers' threads (the load generator).
    caller_cpu_per_refresh: Option<f64>,
    /// The share of the cores' time they were busy during the rounds.
    busy: Option<f64>,
}

/// The cores the callers, the service and the stash share: figures per core divide by it.
fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

fn refreshes_per_second(callers_count: usize) -> (Rates, u64, u64, usize, Vec<String>) {
    let refreshes_done = REFRESHES / callers_count * callers_count;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // As many threads as the service's runtime, on the same cores: the split changes who
    // is charged for the CPU, not how the cores are shared.
    let callers =
        tessera_testkit::named_runtime(CALLER_THREADS, cores() as usize).expect("callers' runtime");
    runtime.block_on(async {
        let pki = Arc::new(TestPki::new().expect("pki"));
        let pki_files = pki.files("session-jwt");
        let (stash, sessions, mut login) = start_stack(pki.clone()).await;
        // The timed callers' channel is made on their runtime, so its connection's tasks
        // run (and are charged) there too.
        let session_addr = sessions.grpc_addr;
        let caller_login = callers
            .spawn(async move {
                let channel = pki
                    .channel_to(&pki.files("login"), session_addr, "session-jwt")
                    .await
                    .expect("callers' channel");
                LoginClient::new(channel)
            })
            .await
            .expect("callers' client");
        let mut tokens = Vec::new();
        for i in 0..callers_count {
            tokens.push(issued_refresh_token(&mut login, format!("bench-{i:04}")).await);
        }
        let refresh_token_bytes = tokens[0].len();
        // Several rounds, each timed on its own: one short burst on shared cores swings by
        // a tenth from run to run, the median of several much less.
        let mut latency = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
        let mut rates = Vec::with_capacity(REFRESH_ROUNDS);
        let mut wall = Duration::ZERO;
        let cpu_before = tessera_testkit::own_cpu_seconds();
        let caller_cpu_before = tessera_testkit::threads_cpu_seconds(CALLER_THREADS);
        for _ in 0..REFRESH_ROUNDS {
            let started = SystemClock.instant();
            let tasks: Vec<_> = tokens
                .drain(..)
                .map(|mut refresh_token| {
                    let mut login = caller_login.clone();
                    callers.spawn(async move {
                        let mut latency =
                            hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
                        for _ in 0..REFRESHES / callers_count {
                            let one = SystemClock.instant();
                            refresh_token = refreshed(&mut login, refresh_token).await;
                            latency
                                .record(one.elapsed().as_micros().max(1) as u64)
                                .expect("record");
                        }
                        (latency, refresh_token)
                    })
                })
                .collect();
            for task in tasks {
                let (one, refresh_token) = task.await.expect("task");
                latency.add(one).expect("merge");
                tokens.push(refresh_token);
            }
            let round = started.elapsed();
            wall += round;
            rates.push(refreshes_done as f64 / round.as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        let cpu = cpu_before
            .zip(tessera_testkit::own_cpu_seconds())
            .map(|(before, after)| after - before);
        let caller_cpu = caller_cpu_before
            .zip(tessera_testkit::threads_cpu_seconds(CALLER_THREADS))
            .map(|(before, after)| after - before);
        let stash_client = tessera_stash_client::StashClient::connect(
            &format!("https://{}", stash.grpc_addr),
            &pki_files,
        )
        .expect("stash client");
        let growth = growth(&sessions, &stash_client, &login).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), sessions.shutdown()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), stash.shutdown()).await;
        (
            Rates {
                median: rates[rates.len() / 2],
                lowest: rates[0],
                highest: rates[rates.len() - 1],
                cpu_per_refresh: cpu.map(|cpu| cpu / (refreshes_done * REFRESH_ROUNDS) as f64),
                caller_cpu_per_refresh: caller_cpu
                    .map(|cpu| cpu / (refreshes_done * REFRESH_ROUNDS) as f64),
                busy: cpu.map(|cpu| cpu / (wall.as_secs_f64() * cores())),
            },
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99),
            refresh_token_bytes,
            growth,
        )
    })
}
