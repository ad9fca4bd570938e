//! `just up`'s stack, started by its own script on the workspace's debug builds in a
//! throwaway state directory, and stopped (Ctrl-C, as a person would) when dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The stack's fixed loopback ports are `just up`'s own: one stack at a time per machine.
static ONE_STACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the whole stack may take to start on a loaded machine.
const START_LIMIT: Duration = Duration::from_secs(120);

/// The repository's root.
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the workspace's debug binaries are.
fn debug_binaries() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository().join("target"))
        .join("debug")
}

/// A running `just up`.
#[derive(Debug)]
pub struct UpStack {
    child: Child,
    /// Everything the script printed up to "Press Ctrl-C".
    pub banner: String,
    /// The demo user's password.
    pub password: String,
    /// The trace viewer's UI, e.g. `http://127.0.0.1:7416`.
    pub traces_url: String,
    _state: tempfile::TempDir,
    _one_stack: tokio::sync::MutexGuard<'static, ()>,
}

impl UpStack {
    /// Runs `scripts/up.sh` and waits until it says the stack is up.
    pub async fn start() -> anyhow::Result<Self> {
        let one_stack = ONE_STACK.lock().await;
        let binaries = debug_binaries();
        for binary in [
            "tessera-token-stash",
            "tessera-audit",
            "tessera-session-jwt",
            "tessera-login",
            "tessera-demo-site",
        ] {
            anyhow::ensure!(
                binaries.join(binary).exists(),
                "{} is not built; run `cargo build --workspace` first",
                binaries.join(binary).display()
            );
        }
        let state = tempfile::tempdir()?;
        let mut child = Command::new("bash")
            .arg(repository().join("scripts/up.sh"))
            .env("TESSERA_BIN_DIR", &binaries)
            .env("TESSERA_STATE_DIR", state.path())
            .env_remove("TESSERA_TRACES")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("stdout not captured"))?;
        let mut lines = BufReader::new(stdout).lines();
        let banner = tokio::time::timeout(START_LIMIT, async {
            let mut banner = String::new();
            while let Some(line) = lines.next_line().await? {
                banner.push_str(&line);
                banner.push('\n');
                if line.starts_with("Press Ctrl-C") {
                    return Ok(banner);
                }
            }
            anyhow::bail!("up.sh ended before the stack was up; it printed:\n{banner}")
        })
        .await
        .map_err(|_| anyhow::anyhow!("the stack was not up within {START_LIMIT:?}"))??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let password = field_after(&banner, "password:")?;
        let traces_url = field_after(&banner, "Traces:")?
            .trim_end_matches('/')
            .to_owned();
        Ok(UpStack {
            child,
            banner,
            password,
            traces_url,
            _state: state,
            _one_stack: one_stack,
        })
    }
}

/// The first word after `label` in the banner.
fn field_after(banner: &str, label: &str) -> anyhow::Result<String> {
    banner
        .lines()
        .find_map(|line| line.split_once(label))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("up.sh printed no {label:?} line:\n{banner}"))
}

impl Drop for UpStack {
    fn drop(&mut self) {
        // Ctrl-C to the whole group, as a terminal sends it: the script stops its services
        // and waits for them, so their ports are free for the next stack.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", "--", &format!("-{pid}")])
                .status();
        }
        // Drop cannot await the child's exit, so it polls for it: at most 30 s, where the
        // services' shutdown grace is 5 s.
        for _ in 0..600 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
