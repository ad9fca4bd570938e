//! A delaying TCP proxy: the WAN between two datacenters in containers, where the kernel
//! has no `netem`. Every byte is carried to `--to` after `--delay-ms` in each direction,
//! in order, with no limit on throughput.
//!
//! `tessera-wan-link --listen 0.0.0.0:7401 --to stash-dc-b:7401 --delay-ms 40`
//!
//! With `--tls-cert` and `--tls-key` (PEM files) it is also a site's TLS front: it
//! accepts TLS and carries the plain bytes to `--to`, as the front of a real site's
//! `https://` address does.

use std::time::Duration;

use anyhow::{bail, Context as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Chunks in flight per direction; a slow reader holds the sender back beyond this.
const IN_FLIGHT: usize = 1024;

struct Args {
    listen: String,
    to: String,
    delay: Duration,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let (mut listen, mut to, mut delay) = (None, None, None);
    let (mut tls_cert, mut tls_key) = (None, None);
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
            "--tls-cert" => tls_cert = Some(value),
            "--tls-key" => tls_key = Some(value),
            other => bail!(
                "unknown option {other}; use --listen, --to, --delay-ms, --tls-cert and --tls-key"
            ),
        }
    }
    Ok(Args {
        listen: listen.context("--listen is missing, e.g. --listen 0.0.0.0:7401")?,
        to: to.context("--to is missing, e.g. --to stash-dc-b:7401")?,
        delay: delay.unwrap_or_default(),
        tls_cert,
        tls_key,
    })
}

/// A TLS acceptor for the certificate chain and key in `cert` and `key`, if both are
/// given.
fn acceptor(cert: Option<&str>, key: Option<&str>) -> anyhow::Result<Option<TlsAcceptor>> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => bail!("--tls-cert and --tls-key go together: give both, or neither"),
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the certificates in {cert}"))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read the private key in {key}"))?;
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("the certificate and key do not make a TLS identity")?;
    Ok(Some(TlsAcceptor::from(std::sync::Arc::new(config))))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse(std::env::args().skip(1))?;
    let tls = acceptor(args.tls_cert.as_deref(), args.tls_key.as_deref())?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!(
        "tessera-wan-link ready: listen={} to={} delay={:?} tls={}",
        args.listen,
        args.to,
        args.delay,
        tls.is_some()
    );
    loop {
        let (inbound, _) = listener.accept().await?;
        let (to, delay, tls) = (args.to.clone(), args.delay, tls.clone());
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            let inbound = match tls {
                None => Inbound::Plain(inbound),
                // A client that fails the handshake gets nothing carried.
                Some(tls) => match tls.accept(inbound).await {
                    Ok(stream) => Inbound::Tls(Box::new(stream)),
                    Err(_) => return,
                },
            };
            // The far side is looked up per connection: it may be away, or come back.
            let Ok(outbound) = TcpStream::connect(&to).await else {
                return;
            };
            match inbound {
                Inbound::Plain(stream) => carry(stream, outbound, delay).await,
                Inbound::Tls(stream) => carry(*stream, outbound, delay).await,
            }
        });
    }
}

/// An accepted connection, before or after TLS.
enum Inbound {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

async fn carry<S>(inbound: S, outbound: TcpStream, delay: Duration)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let _ = outbound.set_nodelay(true);
    let (in_read, in_write) = tokio::io::split(inbound);
    let (out_read, out_write) = tokio::io::split(outbound);
    // Both directions to their end: a side that has finished sending may still be
    // waiting for an answer.
    tokio::join!(
        delayed(in_read, out_write, delay),
        delayed(out_read, in_write, delay)
    );
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
async fn delayed(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
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
