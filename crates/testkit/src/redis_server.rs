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
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("redis.sock");
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .args(["--maxmemory", maxmemory, "--maxmemory-policy", policy])
            .args(["--loglevel", "notice"])
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
            _dir: dir,
        })
    }

    /// The URL to connect with.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Stops the server now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
