//! A network link the test controls: a TCP proxy on loopback that can hold traffic (bytes
//! wait in the proxy, as behind a stalled link), cut it (every connection dropped with
//! whatever it held, as when a link dies) and strand its connections (they go silent for
//! good without a reset, as when the far host dies, while new ones are carried). Pausing
//! the receiving process is not the same: the kernel keeps receiving for it, and it
//! catches up on resume.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A controllable TCP link to one address. Dropping it cuts every connection.
#[derive(Debug)]
pub struct Link {
    addr: SocketAddr,
    held: watch::Sender<bool>,
    cuts: watch::Sender<u64>,
    strands: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    acceptor: JoinHandle<()>,
}

impl Link {
    /// A link from a new loopback port to `target`.
    pub async fn to(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (held, _) = watch::channel(false);
        let (cuts, _) = watch::channel(0u64);
        let (strands, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let acceptor = tokio::spawn({
            let held = held.clone();
            let cuts = cuts.clone();
            let strands = strands.clone();
            let accepted = accepted.clone();
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let signals = Signals {
                        held: held.subscribe(),
                        cuts: cuts.subscribe(),
                        strands: strands.subscribe(),
                    };
                    tokio::spawn(carry(inbound, outbound, signals));
                }
            }
        });
        Ok(Link {
            addr,
            held,
            cuts,
            strands,
            accepted,
            acceptor,
        })
    }

    /// Where to connect to reach the target through the link.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops carrying bytes either way; they wait in the link until [`Link::release`].
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Carries bytes again, the held ones first.
    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Drops every open connection and what it held; later connections are carried (held
    /// if the link is held).
    pub fn cut(&self) {
        self.cuts.send_modify(|generation| *generation += 1);
    }

    /// Every open connection goes silent for good: it stays open, carries nothing either
    /// way and sends no reset, as when the host at the far end dies. Later connections
    /// are carried.
    pub fn strand(&self) {
        self.strands.send_modify(|generation| *generation += 1);
    }

    /// How many connections the link has accepted (and reached the target for).
    pub fn connections(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Link {
    /// Parts the two sides, as a network partition does: every open connection dies and
    /// new ones carry nothing, until [`Link::heal`].
    pub fn partition(&self) {
        self.hold();
        self.cut();
    }

    /// Ends a partition: connections carry bytes again.
    pub fn heal(&self) {
        self.release();
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}

/// What a connection obeys: the link held, cut or stranded.
struct Signals {
    held: watch::Receiver<bool>,
    cuts: watch::Receiver<u64>,
    strands: watch::Receiver<u64>,
}

async fn carry(inbound: TcpStream, outbound: TcpStream, signals: Signals) {
    let Signals {
        held,
        mut cuts,
        mut strands,
    } = signals;
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    cuts.mark_unchanged();
    strands.mark_unchanged();
    tokio::select! {
        _ = pump(&mut in_read, &mut out_write, held.clone()) => {}
        _ = pump(&mut out_read, &mut in_write, held) => {}
        _ = cuts.changed() => {}
        _ = strands.changed() => {
            // Both sockets stay open and unread until the link is cut or dropped.
            let _ = cuts.changed().await;
        }
    }
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut held: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if held.wait_for(|held| !*held).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
