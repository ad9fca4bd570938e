//! Containers and networks through the `docker` command line. The engine here speaks API
//! 1.41 at most, and the command line negotiates with it; every container and network is
//! removed when its handle is dropped, so a failed test leaves nothing running.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use tessera_clock::{Clock as _, SystemClock};

use anyhow::{bail, Context as _};

/// How long a container may take to print its ready line.
pub const READY_LIMIT: Duration = Duration::from_secs(60);

/// Runs `docker args…`; its standard output, or an error carrying what it printed.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .context("cannot run the docker command: is Docker installed?")?;
    if !output.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Fails loudly, saying what to do, unless the Docker engine answers and every image in
/// `images` is present (they are built here by `just images`; none is ever pulled).
pub fn require(images: &[&str]) -> anyhow::Result<()> {
    docker(&["version", "--format", "{{.Server.Version}}"]).context(
        "the Docker engine is unreachable; these tests need it (start the daemon, or run them where Docker runs)",
    )?;
    for image in images {
        if docker(&["image", "inspect", "--format", "{{.Id}}", image]).is_err() {
            bail!("image {image} is missing: build it with `just images` (nothing is pulled)");
        }
    }
    Ok(())
}

/// Runs `image` once to completion on `network`, with `env`, `args` after its entry point
/// and `stdin` on its standard input; what it printed on standard output.
pub fn run_once(
    image: &str,
    network: &str,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut command = Command::new("docker");
    command.args([
        "run",
        "--rm",
        "--interactive",
        "--label",
        "tessera-dc-suite=1",
        "--network",
        network,
    ]);
    for (key, value) in env {
        command.args(["--env", &format!("{key}={value}")]);
    }
    command.arg(image).args(args);
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run the docker command: is Docker installed?")?;
    child
        .stdin
        .take()
        .context("no stdin to write to")?
        .write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{image} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A user-defined network, removed on drop.
#[derive(Debug)]
pub struct Network {
    name: String,
}

impl Network {
    /// Creates network `name`.
    pub fn create(name: &str) -> anyhow::Result<Self> {
        docker(&["network", "create", "--label", "tessera-dc-suite=1", name])?;
        Ok(Network {
            name: name.to_owned(),
        })
    }

    /// The network's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Joins `container` to this network, where others find it as `alias`.
    pub fn connect(&self, container: &Container, alias: &str) -> anyhow::Result<()> {
        docker(&[
            "network",
            "connect",
            "--alias",
            alias,
            &self.name,
            container.name(),
        ])?;
        Ok(())
    }

    /// Takes `container` off this network: its links through it are cut.
    pub fn disconnect(&self, container: &Container) -> anyhow::Result<()> {
        docker(&["network", "disconnect", &self.name, container.name()])?;
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.name]);
    }
}

/// What to run: an image, its arguments, and where it lives.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// The container's (unique) name.
    pub name: String,
    /// The image, e.g. `tessera/token-stash:latest`.
    pub image: String,
    /// Arguments after the image's entry point.
    pub args: Vec<String>,
    /// The network it starts on, and its name there.
    pub network: String,
    /// Its name on `network`.
    pub alias: String,
    /// Further networks it is on before its process starts, each with its name there.
    /// Joined later, its first calls race the join: on a loaded machine a login's calls
    /// to its session service, begun before it joined, timed out for a whole minute.
    pub also_on: Vec<(String, String)>,
    /// `host:container` bind mounts.
    pub mounts: Vec<(String, String)>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Container ports published on the host's loopback, on ports the engine picks.
    pub ports: Vec<u16>,
    /// Container ports published at fixed host addresses: (`127.0.0.2:443`, 443).
    pub fixed_ports: Vec<(String, u16)>,
    /// Run as this user instead of the image's.
    pub user: Option<String>,
    /// The text its output contains once it is ready (empty: started is enough).
    pub ready_line: String,
    /// Runs this instead of the image's entry point.
    pub entrypoint: Option<String>,
    /// Further `docker run` options (`--read-only`, `--cap-drop ALL`, ...).
    pub run_options: Vec<String>,
}

/// A running container, removed (with `docker rm -f`) on drop.
#[derive(Debug)]
pub struct Container {
    spec: ContainerSpec,
}

impl Container {
    /// Starts `spec`, on every network it names, and waits for its ready line.
    pub fn start(spec: ContainerSpec) -> anyhow::Result<Self> {
        let mut args: Vec<String> = vec![
            "create".into(),
            "--label".into(),
            "tessera-dc-suite=1".into(),
            "--name".into(),
            spec.name.clone(),
            "--network".into(),
            spec.network.clone(),
            "--network-alias".into(),
            spec.alias.clone(),
        ];
        for (host, inside) in &spec.mounts {
            args.extend(["--volume".into(), format!("{host}:{inside}")]);
        }
        for (key, value) in &spec.env {
            args.extend(["--env".into(), format!("{key}={value}")]);
        }
        for port in &spec.ports {
            args.extend(["--publish".into(), format!("127.0.0.1::{port}")]);
        }
        for (host, port) in &spec.fixed_ports {
            args.extend(["--publish".into(), format!("{host}:{port}")]);
        }
        if let Some(user) = &spec.user {
            args.extend(["--user".into(), user.clone()]);
        }
        if let Some(entrypoint) = &spec.entrypoint {
            args.extend(["--entrypoint".into(), entrypoint.clone()]);
        }
        args.extend(spec.run_options.iter().cloned());
        args.push(spec.image.clone());
        args.extend(spec.args.iter().cloned());
        let borrowed: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&borrowed)?;
        // From here on, dropping the handle removes the container.
        let container = Container { spec };
        for (network, alias) in &container.spec.also_on {
            docker(&[
                "network",
                "connect",
                "--alias",
                alias,
                network,
                container.name(),
            ])?;
        }
        docker(&["start", container.name()])?;
        container.wait_ready()?;
        Ok(container)
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Where the host reaches container port `port`.
    pub fn host_addr(&self, port: u16) -> anyhow::Result<SocketAddr> {
        let mapping = docker(&["port", self.name(), &format!("{port}/tcp")])?;
        let first = mapping
            .lines()
            .next()
            .with_context(|| format!("{} publishes no port {port}", self.name()))?;
        first
            .parse()
            .with_context(|| format!("docker port printed {first:?}"))
    }

    /// Everything the container printed so far.
    pub fn logs(&self) -> String {
        let output = Command::new("docker")
            .args(["logs", self.name()])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            });
        output.unwrap_or_else(|e| format!("(cannot read the logs: {e})"))
    }

    /// Kills the container with SIGKILL: no shutdown, no flush.
    pub fn kill(&self) -> anyhow::Result<()> {
        docker(&["kill", "--signal", "KILL", self.name()])?;
        Ok(())
    }

    /// Starts the stopped container again (same file systems, same networks) and waits
    /// for a new ready line.
    pub fn restart_after_kill(&self) -> anyhow::Result<()> {
        let seen_before = self.logs().matches(&self.spec.ready_line).count();
        docker(&["start", self.name()])?;
        self.wait_for_ready_count(seen_before + 1)
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        self.wait_for_ready_count(1)
    }

    fn wait_for_ready_count(&self, count: usize) -> anyhow::Result<()> {
        self.wait_for_line(&self.spec.ready_line, count)
    }

    /// Waits until the container has printed `text` at least `count` times.
    pub fn wait_for_line(&self, text: &str, count: usize) -> anyhow::Result<()> {
        let deadline = SystemClock.instant() + READY_LIMIT;
        loop {
            let logs = self.logs();
            if logs.matches(text).count() >= count {
                return Ok(());
            }
            let running = docker(&["inspect", "--format", "{{.State.Running}}", self.name()])?;
            if running != "true" {
                bail!(
                    "{} exited before it was ready; it printed:\n{logs}",
                    self.name()
                );
            }
            if SystemClock.instant() > deadline {
                bail!(
                    "{} printed no {text:?} within {READY_LIMIT:?}; it printed:\n{logs}",
                    self.name(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "--force", "--volumes", self.name()]);
    }
}
