use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::WAIT_LIMIT;

/// A Tessera service binary running as a child process, started and waited on through the
/// `ready:` line it prints, whose `key=value` fields (e.g. `grpc=…`) it keeps.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    fields: HashMap<String, String>,
}

impl ServiceProcess {
    /// Runs `binary args…` with `env` and waits for its ready line.
    pub async fn spawn(
        binary: &Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("stdout not captured"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready_line = tokio::time::timeout(WAIT_LIMIT, async {
            while let Some(line) = lines.next_line().await? {
                if line.contains(" ready: ") {
                    return Ok(Some(line));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let line = match ready_line {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => {
                let status = child.wait().await?;
                anyhow::bail!("{} exited before it was ready: {status}", binary.display())
            }
            other => anyhow::bail!("{} did not become ready: {other:?}", binary.display()),
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let fields = line
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(ServiceProcess { child, fields })
    }

    /// A `key=value` field of the ready line.
    pub fn field(&self, key: &str) -> anyhow::Result<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow::anyhow!("ready line has no {key}="))
    }

    /// The socket address in a `key=scheme://addr` field.
    pub fn addr(&self, key: &str) -> anyhow::Result<std::net::SocketAddr> {
        let url = self.field(key)?;
        let addr = url.split_once("://").map(|(_, a)| a).unwrap_or(url);
        Ok(addr.parse()?)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub async fn kill_hard(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// Sends SIGTERM and waits for a clean exit; the exit status.
    pub async fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("process already exited"))?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        Ok(tokio::time::timeout(WAIT_LIMIT, self.child.wait()).await??)
    }
}
