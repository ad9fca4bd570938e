use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::WAIT_LIMIT;

/// A throwaway PostgreSQL cluster from the machine's PostgreSQL installation (Debian's
/// `postgresql` package), listening only on a unix socket in a temporary directory;
/// stopped and deleted on drop. Refuses loudly when PostgreSQL is not installed.
#[derive(Debug)]
pub struct PostgresServer {
    child: Child,
    bin: PathBuf,
    socket_dir: PathBuf,
    as_postgres: bool,
    databases: std::sync::atomic::AtomicU32,
    _dir: tempfile::TempDir,
}

const PORT: u16 = 5432;

fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| anyhow::anyhow!("PostgreSQL is not installed (no /usr/lib/postgresql); install it with: apt-get install -y postgresql"))?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no initdb under /usr/lib/postgresql/*/bin; install it with: apt-get install -y postgresql"))
}

fn is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false)
}

impl PostgresServer {
    /// Initialises and starts a new cluster. As root, it runs as the `postgres` user
    /// (initdb refuses to run as root).
    pub async fn start() -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let dir = tempfile::tempdir()?;
        let as_postgres = is_root();
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        std::fs::create_dir_all(&socket_dir)?;
        if as_postgres {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
            let chown = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&socket_dir)
                .arg(dir.path())
                .status()?;
            anyhow::ensure!(chown.success(), "chown to postgres failed");
        }
        let initdb = command(as_postgres, &bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await?;
        anyhow::ensure!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let child = command(as_postgres, &bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&socket_dir)
            .args([
                "-p",
                &PORT.to_string(),
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let server = PostgresServer {
            child,
            bin,
            socket_dir,
            as_postgres,
            databases: std::sync::atomic::AtomicU32::new(0),
            _dir: dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        tokio::time::timeout(WAIT_LIMIT, async {
            loop {
                let ready = Command::new(self.bin.join("pg_isready"))
                    .arg("-h")
                    .arg(&self.socket_dir)
                    .args(["-p", &PORT.to_string(), "-q"])
                    .status()
                    .await?;
                if ready.success() {
                    return anyhow::Ok(());
                }
                // pg_isready has no "wait until" mode; poll it.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("PostgreSQL did not become ready within {WAIT_LIMIT:?}"))?
    }

    /// A new, empty database; its sqlx URL.
    pub async fn new_database(&self) -> anyhow::Result<String> {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tessera_{n}");
        let created = command(self.as_postgres, Path::new("psql"))
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &PORT.to_string(), "-U", "postgres", "-q", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .await?;
        anyhow::ensure!(
            created.status.success(),
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        Ok(format!(
            "postgres://postgres@localhost/{name}?host={}&port={PORT}",
            self.socket_dir.display()
        ))
    }
}

fn command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
