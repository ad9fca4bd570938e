//! Full sign-ins per second (login form post to a site session) against the ceiling of
//! argon2id password checks per second alone on the same machine, measured in one run;
//! and code exchanges and refreshes per second through `/token`. Everything runs
//! in-process on loopback: stash, session service, login service, and the clients.
//! Run with `just bench` (or `cargo bench -p tessera-login --bench logins`).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tessera_clock::{Clock, SystemClock};
use tessera_login::test_util::LoginStack;
use tessera_testkit::Browser;

const PASSWORD: &str = "benchmark password 1";
const HASHES: usize = 300;
const LOGINS: usize = 300;
const EXCHANGES: usize = 1_000;
const REFRESHES: usize = 2_000;
const CALLERS: usize = 8;
/// The name of the callers' threads (the visitors' browsers and the site's back end):
/// they run on a runtime of their own, so the CPU the load generator uses can be read
/// apart from the services'.
const CALLER_THREADS: &str = "sign-in-caller";
/// The name of the stash's and the session service's runtime threads; the embedded
/// stash commits on a thread of its own, named `STASH_WRITER`.
const BACKEND_THREADS: &str = "stash-sessions";
const STASH_WRITER: &str = "stash-writer";

struct Client {
    stack: Arc<LoginStack>,
    secret: String,
    http: reqwest::Client,
}

fn pkce(i: usize) -> (String, String) {
    let verifier = format!("bench-verifier-{i:08}-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl Client {
    fn authorize_url(&self, challenge: &str) -> String {
        self.stack.url(&format!(
            "/authorize?response_type=code&client_id=bench&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256"
        ))
    }

    async fn redeem(&self, code: &str, verifier: &str) -> serde_json::Value {
        let response = self
            .http
            .post(self.stack.url("/token"))
            .basic_auth("bench", Some(&self.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "http://localhost:9/cb"),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("json")
    }

    /// One full sign-in by a new visitor: the form, the password post, the code
    /// exchange that gives the site its session.
    async fn full_login(&self, i: usize) {
        let mut browser = Browser::new().expect("browser");
        let (verifier, challenge) = pkce(i);
        let form = browser
            .get(&self.authorize_url(&challenge))
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
        self.redeem(&code, &verifier).await;
    }
}

/// Runs `n` jobs over `callers` tasks on the runtime `on`; jobs per second.
async fn run<F, Fut>(on: &tokio::runtime::Handle, n: usize, callers: usize, job: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let job = Arc::new(job);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = SystemClock.instant();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            on.spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    job(i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Every sign-in here comes from one address for one account, far faster than a person
/// signs in: the limits that stop credential stuffing would refuse most of them.
fn without_rate_limits(config: &mut tessera_login::config::LoginConfig) {
    config.attempts_per_ip_per_minute = 1_000_000;
    config.account_failures_before_backoff = 1_000_000;
}

/// The ceiling's job: one argon2id check of the benchmark user's stored hash, through
/// the login service's own password checker (its blocking pool and its one-per-core cap).
fn password_check(
    stack: &LoginStack,
    stored: String,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
       + Send
       + Sync
       + 'static {
    let passwords = stack.login.passwords.clone();
    move |_| {
        let (passwords, stored) = (passwords.clone(), stored.clone());
        Box::pin(async move {
            assert!(passwords.verify(Some(stored), PASSWORD.to_owned()).await);
        })
    }
}

/// The benchmark user's stored password hash.
async fn stored_hash(stack: &LoginStack) -> anyhow::Result<String> {
    Ok(stack
        .login
        .directory
        .user_by_name(&"bench".try_into()?)
        .await?
        .ok_or_else(|| anyhow::anyhow!("bench user"))?
        .password_hash)
}

/// `-- profile N [callers C] [hashes]`: only N full sign-ins after one to warm up, one
/// after another (or C at a time), for a profiler (`valgrind --tool=callgrind` counts
/// what one costs; `perf record` shows where the CPU goes when several run at once).
/// With `hashes`, N of the ceiling's password checks instead, to set beside them.
fn profile_run(sign_ins: usize, callers: usize, hashes_only: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let stack = LoginStack::start(without_rate_limits).await?;
        stack.add_user("bench", PASSWORD).await?;
        let secret = stack
            .add_site("bench", "http://localhost:9/cb", None, None)
            .await?;
        let client = Arc::new(Client {
            stack: Arc::new(stack),
            secret,
            http: reqwest::Client::new(),
        });
        client.full_login(sign_ins).await;
        let here = tokio::runtime::Handle::current();
        if hashes_only {
            let check = password_check(&client.stack, stored_hash(&client.stack).await?);
            run(&here, sign_ins, callers, check).await;
            eprintln!("1 sign-in and {sign_ins} password checks done, {callers} at a time");
        } else {
            run(&here, sign_ins, callers, move |i| {
                let client = client.clone();
                async move { client.full_login(i).await }
            })
            .await;
            eprintln!("{} sign-ins done, {callers} at a time", sign_ins + 1);
        }
        anyhow::Ok(())
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "profile") {
        let sign_ins = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(10);
        let callers = match args.iter().position(|a| a == "callers") {
            Some(at) => args
                .get(at + 1)
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| anyhow::anyhow!("`callers` takes a number from 1 to 1024"))?,
            None => 1,
        };
        return profile_run(sign_ins, callers, args.iter().any(|a| a == "hashes"));
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // As many threads as the services' runtime, on the same cores: the split changes who
    // is charged for the CPU, not how the cores are shared.
    let callers_runtime = tessera_testkit::named_runtime(CALLER_THREADS, cores)?;
    let callers = callers_runtime.handle().clone();
    // The stash and the session service on threads of their own too: what the callers
    // and they leave of the process's CPU is the login service's, as if each ran in its
    // own pod.
    let backends_runtime = tessera_testkit::named_runtime(BACKEND_THREADS, cores)?;
    let backends = backends_runtime.handle().clone();
    runtime.block_on(async move {
        let services = tokio::runtime::Handle::current();
        let stack = LoginStack::start_with_backends_on(&backends, without_rate_limits).await?;
        stack.add_user("bench", PASSWORD).await?;
        let secret = stack.add_site("bench", "http://localhost:9/cb", None, None).await?;
        let client = Arc::new(Client {
            stack: Arc::new(stack),
            secret,
            http: reqwest::Client::new(),
        });
        let stored = stored_hash(&client.stack).await?;

        // The ceiling: argon2id checks of the same hash, as many in parallel as there are
        // cores, through the same blocking pool the service uses.
        let ceiling = |n: usize| run(&services, n, cores, password_check(&client.stack, stored.clone()));
        let cpu = || tessera_testkit::own_cpu_seconds().unwrap_or(f64::NAN);
        let threads_cpu = |name| tessera_testkit::threads_cpu_seconds(name).unwrap_or(f64::NAN);
        let caller_cpu = || threads_cpu(CALLER_THREADS);
        let backend_cpu = || threads_cpu(BACKEND_THREADS) + threads_cpu(STASH_WRITER);
        let at_start = cpu();
        let ceiling_before = ceiling(HASHES).await;
        let (before_logins, callers_before_logins, backends_before_logins) =
            (cpu(), caller_cpu(), backend_cpu());
        let c = client.clone();
        let logins = run(&callers, LOGINS, CALLERS, move |i| {
            let c = c.clone();
            async move { c.full_login(i).await }
        })
        .await;
        let (after_logins, callers_after_logins, backends_after_logins) =
            (cpu(), caller_cpu(), backend_cpu());
        let ceiling_after = ceiling(HASHES).await;
        let ceiling_mean = (ceiling_before + ceiling_after) / 2.0;
        let cpu_per_hash =
            ((before_logins - at_start) + (cpu() - after_logins)) / (2 * HASHES) as f64;
        let callers_per_login = (callers_after_logins - callers_before_logins) / LOGINS as f64;
        let services_per_login =
            (after_logins - before_logins) / LOGINS as f64 - callers_per_login;
        let backends_per_login = (backends_after_logins - backends_before_logins) / LOGINS as f64;
        let login_per_login = services_per_login - backends_per_login;

        // Codes minted through SSO (a live central session), then redeemed as fast as
        // the site's back end can.
        let mut browser = Browser::new()?;
        let (_, challenge) = pkce(0);
        let form = browser.get(&client.authorize_url(&challenge)).await?;
        let flow = form.form_field("flow").ok_or_else(|| anyhow::anyhow!("flow"))?;
        browser
            .post(&client.stack.url("/login"), &[("flow", &flow), ("username", "bench"), ("password", PASSWORD)])
            .await?;
        let mut codes = Vec::with_capacity(EXCHANGES);
        for i in 0..EXCHANGES {
            let (verifier, challenge) = pkce(i);
            let answer = browser.get(&client.authorize_url(&challenge)).await?;
            codes.push((answer.location_param("code").ok_or_else(|| anyhow::anyhow!("code"))?, verifier));
        }
        let codes = Arc::new(codes);
        let c = client.clone();
        let codes_for_run = codes.clone();
        let started = SystemClock.instant();
        let exchanges = run(&callers, EXCHANGES, CALLERS, move |i| {
            let (c, codes) = (c.clone(), codes_for_run.clone());
            async move {
                c.redeem(&codes[i].0, &codes[i].1).await;
            }
        })
        .await;
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "codes expired mid-run");

        // Refreshes: each caller walks its own chain of refresh tokens.
        let mut chains = Vec::new();
        for i in 0..CALLERS {
            let (verifier, challenge) = pkce(10_000 + i);
            let answer = browser.get(&client.authorize_url(&challenge)).await?;
            let code = answer.location_param("code").ok_or_else(|| anyhow::anyhow!("code"))?;
            let tokens = client.redeem(&code, &verifier).await;
            chains.push(tokio::sync::Mutex::new(tokens["refresh_token"].as_str().unwrap_or_default().to_owned()));
        }
        let chains = Arc::new(chains);
        let c = client.clone();
        let refreshes = run(&callers, REFRESHES, CALLERS, move |i| {
            let (c, chains) = (c.clone(), chains.clone());
            async move {
                let mut token = chains[i % CALLERS].lock().await;
                let reply: serde_json::Value = c
                    .http
                    .post(c.stack.url("/token"))
                    .basic_auth("bench", Some(&c.secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                    .send()
                    .await
                    .expect("refresh")
                    .json()
                    .await
                    .expect("json");
                *token = reply["refresh_token"].as_str().expect("rotated").to_owned();
            }
        })
        .await;

        println!("tessera-login benchmark ({cores} cores, {CALLERS} concurrent clients, in-process stack over loopback)");
        println!("| measurement | per second | ratio |");
        println!("|---|---:|---:|");
        println!("| argon2id checks alone, before (ceiling) | {ceiling_before:.1} | |");
        println!("| argon2id checks alone, after (ceiling) | {ceiling_after:.1} | |");
        println!("| full logins (form post to site session), {LOGINS} | {logins:.1} | {:.1}% of the mean ceiling |", 100.0 * logins / ceiling_mean);
        println!("| code exchanges through /token, {EXCHANGES} | {exchanges:.0} | {:.0}x the login rate |", exchanges / logins);
        println!("| refreshes through /token, {REFRESHES} | {refreshes:.0} | |");
        println!();
        println!("| CPU (process time, clock ticks of 10 ms summed over the run) | ms |");
        println!("|---|---:|");
        println!("| per argon2id check alone (both ceiling runs) | {:.2} |", cpu_per_hash * 1e3);
        println!("| per full sign-in: the visitors' browsers and the site's back end (the load generator) | {:.2} |", callers_per_login * 1e3);
        println!("| per full sign-in: login, session service, stash and the kernel's work for them | {:.2} |", services_per_login * 1e3);
        println!("| of which the stash and the session service | {:.2} |", backends_per_login * 1e3);
        println!("| of which the login service (its password check included) | {:.2} |", login_per_login * 1e3);
        println!(
            "| full sign-ins per core of the three services' own CPU, as a share of argon2id checks per core alone | {:.1}% |",
            100.0 * cpu_per_hash / services_per_login
        );
        println!(
            "| full sign-ins per core of the login service's own CPU, as a share of argon2id checks per core alone | {:.1}% |",
            100.0 * cpu_per_hash / login_per_login
        );
        anyhow::Ok(())
    })
}
