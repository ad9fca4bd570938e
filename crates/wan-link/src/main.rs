//! A delaying TCP proxy: the WAN between two datacenters in containers, where the kernel
//! has no `netem`. Every byte is carried to `--to` after `--delay-ms` in each direction,
//! in order, with no limit on throughput.
//!
//! `tessera-wan-link --listen 0.0.0.0:7401 --to stash-dc-b:7401 --delay-ms 40`

use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Chunks in flight per direction; a slow reader holds the sender back beyond this.
const IN_FLIGHT: usize = 1024;

struct Args {
    listen: String,
    to: String,
    delay: Duration,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let (mut listen, mut to, mut delay) = (None, None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value),
            "--to" => to = Some(value),
            "--delay-ms" => {
                let ms: u64 = value
                    .parse()
                    .with_context(|| format!("--delay-ms {value:?} is not a whole number"))?;
                delay = Some(Duration::from_millis(ms));
            }
            other => bail!("unknown option {other}; use --listen, --to and --delay-ms"),
        }
    }
    Ok(Args {
        listen: listen.context("--listen is missing, e.g. --listen 0.0.0.0:7401")?,
        to: to.context("--to is missing, e.g. --to stash-dc-b:7401")?,
        delay: delay.unwrap_or_default(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse(std::env::args().skip(1))?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "tessera-wan-link ready: listen={} to={} delay={:?}",
        args.listen, args.to, args.delay
    );
    loop {
        let (inbound, _) = listener.accept().await?;
        let (to, delay) = (args.to.clone(), args.delay);
        tokio::spawn(async move {
            // The far side is looked up per connection: it may be away, or come back.
            let Ok(outbound) = TcpStream::connect(&to).await else {
                return;
            };
            carry(inbound, outbound, delay).await;
        });
    }
}

async fn carry(inbound: TcpStream, outbound: TcpStream, delay: Duration) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    // Both directions to their end: a side that has finished sending may still be
    // waiting for an answer.
    tokio::join!(
        delayed(in_read, out_write, delay),
        delayed(out_read, in_write, delay)
    );
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (queue, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reader = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    let chunk = (Instant::now() + delay, buffer[..read].to_vec());
                    if queue.send(chunk).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
