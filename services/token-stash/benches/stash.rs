//! Put+take pairs per second and latency through the gRPC+mTLS stash, on each backend,
//! against raw Redis `SET PX` + `GETDEL` through the same Redis client library, all in one
//! run on one machine. Run with `just bench` (or `cargo bench -p tessera-token-stash`).
//!
//! Every figure comes from this one process, so the ratios hold however busy the machine
//! is; the absolute numbers do not travel.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use hdrhistogram::Histogram;
use redis::aio::MultiplexedConnection;
use tessera_clock::{Clock, SystemClock};
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_testkit::{resident_bytes, RedisServer, ServiceProcess, TestPki};
use tessera_token_stash::store::{EmbeddedStore, EmbeddedStoreOptions};
use tessera_token_stash::test_util::{put_request, stash_process_env};
use tessera_token_stash::{DatacenterId, PutInput, Stash, StashMetrics, TokenSealer};
use tonic::transport::Channel;

/// Bytes per value: about a login code's record.
const VALUE_BYTES: usize = 256;
/// (concurrent callers, pairs in all) for each measured row.
const LOADS: &[(usize, usize)] = &[(1, 2_000), (32, 20_000)];
/// gRPC connections shared by the callers, as a service's client pool would.
const CHANNELS: usize = 4;
/// Live entries held while put+take pairs are timed, for the growth table.
const GROWTH: &[u64] = &[1_000, 100_000, 1_000_000];
/// Pairs timed at each size (one caller).
const GROWTH_PAIRS: usize = 2_000;
/// Puts per Apply while filling, and Applies in flight.
const FILL_BATCH: u64 = 16;
const FILL_CALLERS: u64 = 32;

struct Row {
    name: &'static str,
    callers: usize,
    pairs: usize,
    seconds: f64,
    latency: Histogram<u64>,
}

impl Row {
    fn pairs_per_second(&self) -> f64 {
        self.pairs as f64 / self.seconds
    }
}

/// Runs `pairs` put+take pairs from `callers` concurrent tasks; `pair(i)` does one.
async fn measure<F, Fut>(name: &'static str, callers: usize, pairs: usize, pair: F) -> Row
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let pair = Arc::new(pair);
    // Warm up connections and caches; not measured.
    for i in 0..50 {
        pair(i).await;
    }
    let clock = SystemClock;
    let started = clock.instant();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let pair = pair.clone();
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).expect("histogram");
                let clock = SystemClock;
                let mut i = caller;
                while i < pairs {
                    let one = clock.instant();
                    pair(i).await;
                    let micros = u64::try_from(one.elapsed().as_micros()).unwrap_or(u64::MAX);
                    latency.record(micros.max(1)).expect("record");
                    i += callers;
                }
                latency
            })
        })
        .collect();
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for task in tasks {
        latency.add(task.await.expect("caller")).expect("merge");
    }
    Row {
        name,
        callers,
        pairs,
        seconds: started.elapsed().as_secs_f64(),
        latency,
    }
}

async fn raw_redis(connection: MultiplexedConnection, callers: usize, pairs: usize) -> Row {
    let value = Arc::new(vec![7u8; VALUE_BYTES]);
    measure("raw Redis SET PX + GETDEL", callers, pairs, move |i| {
        let (mut connection, value) = (connection.clone(), value.clone());
        async move {
            let key = format!("bench:raw:{i}:{}", SystemClock.now().0);
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(value.as_slice())
                .arg("PX")
                .arg(60_000)
                .query_async(&mut connection)
                .await
                .expect("SET");
            let got: Vec<u8> = redis::cmd("GETDEL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .expect("GETDEL");
            assert_eq!(got.len(), VALUE_BYTES);
        }
    })
    .await
}

async fn through_stash(
    name: &'static str,
    clients: Vec<TokenStashClient<Channel>>,
    callers: usize,
    pairs: usize,
) -> Row {
    let value = Arc::new(vec![7u8; VALUE_BYTES]);
    measure(name, callers, pairs, move |i| {
        let mut client = clients[i % clients.len()].clone();
        let value = value.clone();
        async move {
            let token = client
                .put(put_request("code", value.to_vec(), 60, true, ""))
                .await
                .expect("put")
                .into_inner()
                .token;
            let taken = client.take(pb::TakeRequest { token }).await.expect("take");
            assert_eq!(taken.into_inner().value.len(), VALUE_BYTES);
        }
    })
    .await
}

async fn in_process(stash: Arc<Stash<EmbeddedStore>>, callers: usize, pairs: usize) -> Row {
    measure(
        "embedded store in process (no gRPC)",
        callers,
        pairs,
        move |_| {
            let stash = stash.clone();
            async move {
                let input =
                    PutInput::parse("code", vec![7u8; VALUE_BYTES], 60, true, "").expect("input");
                let (token, _) = stash.put(input).await.expect("put");
                assert_eq!(
                    stash.take(&token).await.expect("take").value.len(),
                    VALUE_BYTES
                );
            }
        },
    )
    .await
}

async fn transport_floor(
    clients: Vec<TokenStashClient<Channel>>,
    callers: usize,
    pairs: usize,
) -> Row {
    measure("gRPC+mTLS floor: 2 Stats calls", callers, pairs, move |i| {
        let mut client = clients[i % clients.len()].clone();
        async move {
            client.stats(pb::StatsRequest {}).await.expect("stats");
            client.stats(pb::StatsRequest {}).await.expect("stats");
        }
    })
    .await
}

/// The stash binary, started as its own process like Redis is, so that neither side of a
/// comparison shares the benchmark's runtime.
async fn stash_process(pki: &TestPki, state: &Path, redis: Option<&RedisServer>) -> ServiceProcess {
    let mut env = stash_process_env(pki, state, redis.map(|r| r.url()).as_deref());
    // Room for the growth table's million entries and the pairs timed beside them.
    env.push((
        "TESSERA_STASH__STORAGE__CAPACITY_ENTRIES",
        "2000000".to_owned(),
    ));
    ServiceProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_tessera-token-stash")),
        &["serve"],
        &env,
    )
    .await
    .expect("stash process starts")
}

async fn clients(pki: &TestPki, process: &ServiceProcess) -> Vec<TokenStashClient<Channel>> {
    let addr = process.addr("grpc").expect("grpc address");
    let mut clients = Vec::new();
    for _ in 0..CHANNELS {
        let channel = pki
            .channel(&pki.files("login"), addr)
            .await
            .expect("channel");
        clients.push(TokenStashClient::new(channel));
    }
    clients
}

/// Stores reusable entries `from..to` (256 bytes, an hour to live) through Apply, 16 per
/// call with 32 calls in flight, so a stash holds `to` live entries.
async fn fill(clients: &[TokenStashClient<Channel>], from: u64, to: u64) {
    let tasks: Vec<_> = (0..FILL_CALLERS)
        .map(|caller| {
            let mut client = clients[caller as usize % clients.len()].clone();
            tokio::spawn(async move {
                let mut start = from + caller * FILL_BATCH;
                while start < to {
                    let operations = (start..(start + FILL_BATCH).min(to))
                        .map(|i| {
                            let mut put =
                                put_request("session", vec![7u8; VALUE_BYTES], 3600, false, "");
                            put.token = format!("dc1.fill{i:018}");
                            pb::Operation {
                                kind: Some(pb::operation::Kind::Put(put)),
                            }
                        })
                        .collect();
                    client
                        .apply(pb::ApplyRequest { operations })
                        .await
                        .expect("fill");
                    start += FILL_CALLERS * FILL_BATCH;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("filler");
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| {
        format!("{:.1}", b as f64 / (1024.0 * 1024.0))
    })
}

/// Put+take latency and memory as the stores fill: each row one size, raw Redis timed at
/// the same fill (its server holds the Redis-backed stash's entries too).
async fn growth(
    raw: MultiplexedConnection,
    redis: &RedisServer,
    stashes: [(&ServiceProcess, &[TokenStashClient<Channel>]); 2],
) {
    let [(embedded, embedded_clients), (on_redis, redis_clients)] = stashes;
    let idle = [
        resident_bytes(embedded.pid()),
        resident_bytes(on_redis.pid()),
        resident_bytes(redis.pid()),
    ];
    let mut rows = Vec::new();
    let mut held = 0;
    for &size in GROWTH {
        eprintln!("growth: filling both stashes to {size} live entries…");
        let started = SystemClock.instant();
        fill(embedded_clients, held, size).await;
        let embedded_fill = started.elapsed().as_secs_f64();
        let started = SystemClock.instant();
        fill(redis_clients, held, size).await;
        let redis_fill = started.elapsed().as_secs_f64();
        held = size;
        eprintln!("growth: {size} entries held; timing pairs…");
        let baseline = raw_redis(raw.clone(), 1, GROWTH_PAIRS).await;
        let stash_redis = through_stash("on Redis", redis_clients.to_vec(), 1, GROWTH_PAIRS).await;
        let stash_embedded =
            through_stash("embedded", embedded_clients.to_vec(), 1, GROWTH_PAIRS).await;
        let memory = [
            resident_bytes(embedded.pid()),
            resident_bytes(on_redis.pid()),
            resident_bytes(redis.pid()),
        ];
        rows.push((
            size,
            [baseline, stash_redis, stash_embedded],
            memory,
            [embedded_fill, redis_fill],
        ));
    }
    println!();
    println!("| live entries | raw Redis p50 / p99 µs | stash on Redis p50 / p99 µs | vs raw | stash embedded p50 / p99 µs | vs raw | fill s (embedded / Redis) | RSS MiB: embedded stash / Redis stash / redis-server |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| 0 (idle) | | | | | | | {} / {} / {} |",
        mib(idle[0]),
        mib(idle[1]),
        mib(idle[2])
    );
    for (size, [raw, on_redis, embedded], memory, fills) in &rows {
        let p = |row: &Row, q| row.latency.value_at_quantile(q);
        println!(
            "| {size} | {} / {} | {} / {} | {:.2}x | {} / {} | {:.2}x | {:.0} / {:.0} | {} / {} / {} |",
            p(raw, 0.5),
            p(raw, 0.99),
            p(on_redis, 0.5),
            p(on_redis, 0.99),
            raw.pairs_per_second() / on_redis.pairs_per_second(),
            p(embedded, 0.5),
            p(embedded, 0.99),
            raw.pairs_per_second() / embedded.pairs_per_second(),
            fills[0],
            fills[1],
            mib(memory[0]),
            mib(memory[1]),
            mib(memory[2]),
        );
    }
}

fn main() {
    // `-- growth` runs only the growth table, `-- pairs` only the first one.
    let args: Vec<String> = std::env::args().collect();
    let only = |name: &str| args.iter().any(|a| a == name);
    let (run_pairs, run_growth) = match (only("pairs"), only("growth")) {
        (false, false) => (true, true),
        chosen => chosen,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        eprintln!(
            "starting redis-server (appendonly, appendfsync always, 4 GB) and two stash processes…"
        );
        let redis = RedisServer::start_with_limits("noeviction", "4gb")
            .await
            .expect("redis-server");
        let raw = redis::Client::open(redis.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let pki = TestPki::new().expect("pki");
        let (embedded_state, redis_state) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let embedded = stash_process(&pki, embedded_state.path(), None).await;
        let on_redis = stash_process(&pki, redis_state.path(), Some(&redis)).await;
        let (embedded_clients, redis_clients) = (
            clients(&pki, &embedded).await,
            clients(&pki, &on_redis).await,
        );
        let store_dir = tempfile::tempdir().expect("dir");
        let store = EmbeddedStore::open(
            EmbeddedStoreOptions::new(store_dir.path()),
            SystemClock.now(),
        )
        .await
        .expect("store");
        let direct = Arc::new(Stash::new(
            store,
            DatacenterId::try_from("dc1").expect("dc"),
            TokenSealer::random().expect("sealer"),
            SystemClock::shared(),
            Arc::new(StashMetrics::new()),
        ));

        let mut rows = Vec::new();
        for &(callers, pairs) in LOADS.iter().filter(|_| run_pairs) {
            eprintln!("{callers} caller(s), {pairs} pairs: raw Redis…");
            let baseline = raw_redis(raw.clone(), callers, pairs).await;
            eprintln!("{callers} caller(s), {pairs} pairs: stash on Redis…");
            let stash_redis = through_stash(
                "stash (gRPC+mTLS) on Redis",
                redis_clients.clone(),
                callers,
                pairs,
            )
            .await;
            eprintln!("{callers} caller(s), {pairs} pairs: stash embedded…");
            let stash_embedded = through_stash(
                "stash (gRPC+mTLS) embedded",
                embedded_clients.clone(),
                callers,
                pairs,
            )
            .await;
            eprintln!("{callers} caller(s), {pairs} pairs: embedded store in process…");
            let direct_row = in_process(direct.clone(), callers, pairs).await;
            eprintln!("{callers} caller(s), {pairs} pairs: transport floor…");
            let floor = transport_floor(embedded_clients.clone(), callers, pairs).await;
            rows.push((
                baseline,
                vec![stash_redis, stash_embedded, direct_row, floor],
            ));
        }

        if run_pairs {
            println!();
            println!(
                "| path | callers | pairs | pairs/s | p50 µs | p99 µs | time per pair vs raw Redis |"
            );
            println!("|---|---:|---:|---:|---:|---:|---:|");
        }
        for (baseline, others) in &rows {
            for row in std::iter::once(baseline).chain(others) {
                println!(
                    "| {} | {} | {} | {:.0} | {} | {} | {:.2}x |",
                    row.name,
                    row.callers,
                    row.pairs,
                    row.pairs_per_second(),
                    row.latency.value_at_quantile(0.5),
                    row.latency.value_at_quantile(0.99),
                    baseline.pairs_per_second() / row.pairs_per_second(),
                );
            }
        }
        if run_growth {
            growth(
                raw.clone(),
                &redis,
                [(&embedded, &embedded_clients), (&on_redis, &redis_clients)],
            )
            .await;
        }
        let _ = embedded.terminate().await;
        let _ = on_redis.terminate().await;
        redis.stop().await;
    });
}
