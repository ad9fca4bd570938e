use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::WAIT_LIMIT;

/// A real `redis-server` on a unix socket in a temporary directory, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    /// The loopback TCP port, or 0 for a unix socket only.
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts Redis as production should run it for the stash: `noeviction`, and an
    /// append-only file fsynced on every write.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_policy("noeviction").await
    }

    /// Starts Redis with the given `maxmemory-policy` (and 1 GB of memory).
    pub async fn start_with_policy(policy: &str) -> anyhow::Result<Self> {
        Self::start_with_limits(policy, "1gb").await
    }

    /// Starts Redis with the given `maxmemory-policy` and `maxmemory` (e.g. `4mb`).
    pub async fn start_with_limits(policy: &str, maxmemory: &str) -> anyhow::Result<Self> {
        Self::start_inner(policy, maxmemory, 0, &[]).await
    }

    /// Starts a primary that replicas can follow: as [`RedisServer::start`], also
    /// listening on a loopback TCP port (replication does not run over unix sockets).
    pub async fn start_primary() -> anyhow::Result<Self> {
        // A replica's first sync need not wait for others to join it.
        Self::start_inner(
            "noeviction",
            "1gb",
            free_port()?,
            &["--repl-diskless-sync-delay", "0"],
        )
        .await
    }

    /// The loopback TCP address of a server started with [`RedisServer::start_primary`].
    pub fn tcp_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        anyhow::ensure!(self.port != 0, "this Redis listens on a unix socket only");
        Ok(std::net::SocketAddr::from(([127, 0, 0, 1], self.port)))
    }

    /// Starts a replica of the primary at `primary` (directly, or through a
    /// [`crate::Link`]), configured as the stash's Redis should be, and returns once it
    /// holds a full copy.
    pub async fn start_replica_of(primary: std::net::SocketAddr) -> anyhow::Result<Self> {
        let replicaof = format!("{} {}", primary.ip(), primary.port());
        let replica = Self::start_inner(
            "noeviction",
            "1gb",
            free_port()?,
            &["--replicaof", &replicaof],
        )
        .await?;
        tokio::time::timeout(WAIT_LIMIT, async {
            loop {
                if replica
                    .info_field("replication", "master_link_status")
                    .await?
                    == "up"
                {
                    return Ok::<_, anyhow::Error>(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("the replica did not finish syncing with its primary"))??;
        Ok(replica)
    }

    async fn start_inner(
        policy: &str,
        maxmemory: &str,
        port: u16,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("redis.sock");
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .args(["--maxmemory", maxmemory, "--maxmemory-policy", policy])
            .args(["--loglevel", "notice"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start redis-server ({e}); install it (`apt-get install redis-server`, which `just test` does)"
                )
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("redis-server stdout not captured"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(WAIT_LIMIT, async {
            while let Some(line) = lines.next_line().await? {
                if line
                    .to_ascii_lowercase()
                    .contains("ready to accept connections")
                {
                    return Ok(true);
                }
            }
            Ok::<_, std::io::Error>(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {}
            other => anyhow::bail!("redis-server did not become ready: {other:?}"),
        }
        // Keep draining its output so Redis never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(RedisServer {
            child,
            socket,
            port,
            _dir: dir,
        })
    }

    /// Runs one command with `redis-cli`; its output.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot run redis-cli ({e}); it comes with redis-server")
            })?;
        anyhow::ensure!(output.status.success(), "redis-cli {args:?}: {output:?}");
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// One field of `INFO <section>`.
    pub async fn info_field(&self, section: &str, field: &str) -> anyhow::Result<String> {
        let info = self.cli(&["INFO", section]).await?;
        Ok(info
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or("")
            .trim()
            .to_owned())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets but answers nothing, as a
    /// replica behind a stalled link would.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("redis-server has already exited"))?;
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    /// Makes a replica a primary (`REPLICAOF NO ONE`), as a failover would.
    pub async fn promote(&self) -> anyhow::Result<()> {
        let answer = self.cli(&["REPLICAOF", "NO", "ONE"]).await?;
        anyhow::ensure!(answer == "OK", "REPLICAOF NO ONE answered {answer:?}");
        Ok(())
    }

    /// The URL to connect with.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Stops the server now (SIGKILL: nothing it has not written survives).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A loopback port free at the moment of asking.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
