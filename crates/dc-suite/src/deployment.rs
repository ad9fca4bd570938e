//! Two datacenters of Tessera in containers built here: in each, a token stash (embedded,
//! or on a Redis of its own), a session service, an audit service, a login service and a
//! demo site, on the datacenter's own network; one user directory in PostgreSQL serves
//! both. The stashes, session services and login services of both also share a "wan"
//! network, the only way between the datacenters (and to the directory and the sites'
//! public fronts), which a test parts and heals. With a WAN delay, each datacenter's
//! stash and session service are reached from the other through delaying proxies
//! (`tessera-wan-link`) on that network.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tessera_mtls::DevCa;
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_testkit::{Browser, TestPki};
use tonic::transport::Channel;

use crate::docker::{self, Container, ContainerSpec, Network};
use crate::web::{self, Directory, WebContext, WebTier, AUDIT_SECTION, TLS_SECTION};

/// The user the service images run as.
const SERVICE_UID: u32 = 10001;
/// The images of the gRPC tier (the web tier's are [`web::IMAGES`]).
pub const IMAGES: [&str; 4] = [
    "tessera/token-stash:latest",
    "tessera/session-jwt:latest",
    "tessera/redis:bookworm",
    "tessera/wan-link:latest",
];
const STASH_PORT: u16 = 7401;
const STASH_ADMIN_PORT: u16 = 7481;
const SESSION_PORT: u16 = 7402;
const SESSION_ADMIN_PORT: u16 = 7482;

/// Where a datacenter's stash keeps its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded, persistent store in the container's data directory.
    Embedded,
    /// A Redis of the datacenter's own (append-only, every write synced).
    Redis,
}

/// How one datacenter runs.
#[derive(Debug, Clone, Copy)]
pub struct DatacenterSpec {
    /// The stash's backend.
    pub backend: Backend,
    /// A simulated clock offset for every service of the datacenter, seconds.
    pub clock_offset_seconds: Option<i64>,
    /// The session service's access-token lifetime (soft expiry), seconds, if not its
    /// default: load runs shorten it so sessions age, and refresh, within a run.
    pub access_token_seconds: Option<u64>,
}

impl DatacenterSpec {
    /// The embedded backend and the host's clock.
    pub fn embedded() -> Self {
        DatacenterSpec {
            backend: Backend::Embedded,
            clock_offset_seconds: None,
            access_token_seconds: None,
        }
    }

    /// A Redis backend and the host's clock.
    pub fn redis() -> Self {
        DatacenterSpec {
            backend: Backend::Redis,
            clock_offset_seconds: None,
            access_token_seconds: None,
        }
    }

    /// The same, with the datacenter's clock `seconds` ahead (negative: behind).
    pub fn skewed(self, seconds: i64) -> Self {
        DatacenterSpec {
            clock_offset_seconds: Some(seconds),
            ..self
        }
    }

    /// The same, with access tokens that soft-expire after `seconds`.
    pub fn with_access_token_seconds(self, seconds: u64) -> Self {
        DatacenterSpec {
            access_token_seconds: Some(seconds),
            ..self
        }
    }
}

/// One datacenter's containers.
#[derive(Debug)]
pub struct Datacenter {
    /// Its id, e.g. `dc-a`.
    pub name: String,
    /// Its stash.
    pub stash: Container,
    /// Its session service.
    pub session: Container,
    /// Its audit, login service and demo site.
    pub web: WebTier,
    // Dropped after the services that use them.
    _redis: Option<Container>,
    network: Network,
}

/// Two datacenters, `dc-a` and `dc-b`, and the PKI their clients use.
#[derive(Debug)]
pub struct Deployment {
    /// The PKI every container trusts; clients present its certificates.
    pub pki: TestPki,
    /// `dc-a`, then `dc-b`.
    pub datacenters: [Datacenter; 2],
    /// The user directory both datacenters' login services share, with the user's
    /// password and the sites' credentials.
    pub directory: Directory,
    // Fields drop in order: the links leave the wan network before it is removed (a
    // network with a container on it cannot be).
    _wan_links: Vec<Container>,
    wan: Network,
    files: tempfile::TempDir,
}

static RUNS: AtomicU32 = AtomicU32::new(0);

impl Deployment {
    /// Starts `dc-a` as `a` says and `dc-b` as `b` says, and waits until every service
    /// is ready. Fails loudly, saying what to do, if Docker or an image is missing.
    pub fn start(a: DatacenterSpec, b: DatacenterSpec) -> anyhow::Result<Self> {
        Self::start_with_wan_delay(a, b, Duration::ZERO)
    }

    /// [`Deployment::start`], with every byte between the datacenters delayed by
    /// `one_way` in each direction.
    pub fn start_with_wan_delay(
        a: DatacenterSpec,
        b: DatacenterSpec,
        one_way: Duration,
    ) -> anyhow::Result<Self> {
        Self::start_inner(a, b, one_way, false)
    }

    /// [`Deployment::start`], with the public fronts (the sites', and each datacenter's
    /// login) also published on port 443 of loopback addresses of their own (see
    /// [`web::people_address`]), for a person's browser. One at a time per machine.
    pub fn start_for_people(a: DatacenterSpec, b: DatacenterSpec) -> anyhow::Result<Self> {
        Self::start_inner(a, b, Duration::ZERO, true)
    }

    fn start_inner(
        a: DatacenterSpec,
        b: DatacenterSpec,
        one_way: Duration,
        for_people: bool,
    ) -> anyhow::Result<Self> {
        docker::require(&IMAGES)?;
        docker::require(&web::IMAGES)?;
        let run = format!(
            "tessera-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        let pki = TestPki::new()?;
        let dir = tempfile::tempdir()?;
        // Session tokens' stash records are found by derivation in either datacenter.
        let session_secret = random_hex()?;
        let wan = Network::create(&format!("{run}-wan"))?;
        let directory = Directory::start(&run, &wan)?;
        let web_ca = DevCa::generate("Tessera test web CA")?;
        // One issuer in both datacenters: the login services share their keys.
        let login_secrets = dir.path().join("login-secrets");
        std::fs::create_dir_all(&login_secrets)?;
        own_for_service(&login_secrets)?;
        let mut wan_links = Vec::new();
        let mut peer_host = |service: &str, dc: &str, port: u16| -> anyhow::Result<String> {
            let direct = format!("{service}-{dc}");
            if one_way.is_zero() {
                return Ok(direct);
            }
            let via = format!("wan-{service}-{dc}");
            wan_links.push(Container::start(ContainerSpec {
                name: format!("{run}-{via}"),
                image: "tessera/wan-link:latest".into(),
                args: vec![
                    "--listen".into(),
                    format!("0.0.0.0:{port}"),
                    "--to".into(),
                    format!("{direct}:{port}"),
                    "--delay-ms".into(),
                    one_way.as_millis().to_string(),
                ],
                network: wan.name().to_owned(),
                alias: via.clone(),
                ready_line: "tessera-wan-link ready:".into(),
                ..ContainerSpec::default()
            })?);
            Ok(via)
        };
        let mut peer_hosts = |dc: &str| -> anyhow::Result<PeerHosts> {
            Ok(PeerHosts {
                stash: peer_host("stash", dc, STASH_PORT)?,
                session: peer_host("session", dc, SESSION_PORT)?,
            })
        };
        let (to_a, to_b) = (peer_hosts("dc-a")?, peer_hosts("dc-b")?);
        let start = |dc: &str, peer: &str, peer_hosts: &PeerHosts, spec: DatacenterSpec| {
            let network = Network::create(&format!("{run}-{dc}"))?;
            let env = datacenter_env(spec);
            let cx = WebContext {
                run: &run,
                dir: dir.path(),
                pki: &pki,
                web_ca: &web_ca,
                wan: &wan,
                directory: &directory,
                login_secrets: &login_secrets,
                for_people,
                env: &env,
            };
            start_datacenter(&cx, network, dc, (peer, peer_hosts), spec, &session_secret)
        };
        let dc_a = start("dc-a", "dc-b", &to_b, a)?;
        let dc_b = start("dc-b", "dc-a", &to_a, b)?;
        // Linked: each session service follows its peer's revocations, each login its
        // own session service's.
        for dc in [&dc_a, &dc_b] {
            dc.session
                .wait_for_line("following the peer datacenter's revocations", 1)?;
            dc.web
                .login
                .wait_for_line("following the session service's revocations", 1)?;
        }
        Ok(Deployment {
            pki,
            datacenters: [dc_a, dc_b],
            directory,
            _wan_links: wan_links,
            wan,
            files: dir,
        })
    }

    /// The networks this deployment made (each datacenter's, and the wan).
    pub fn network_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .datacenters
            .iter()
            .map(|dc| dc.network.name().to_owned())
            .collect();
        names.push(self.wan.name().to_owned());
        names
    }

    /// Datacenter `name` (`dc-a` or `dc-b`).
    pub fn dc(&self, name: &str) -> &Datacenter {
        self.datacenters
            .iter()
            .find(|dc| dc.name == name)
            .unwrap_or_else(|| panic!("no datacenter {name}"))
    }

    /// A client of `dc`'s stash presenting the login service's certificate.
    pub async fn stash(&self, dc: &str) -> anyhow::Result<TokenStashClient<Channel>> {
        let addr = self.dc(dc).stash.host_addr(STASH_PORT)?;
        let channel = self
            .pki
            .channel_to(&self.pki.files("login"), addr, "token-stash")
            .await?;
        Ok(TokenStashClient::new(channel))
    }

    /// A client of `dc`'s session service presenting the login service's certificate.
    pub async fn sessions(&self, dc: &str) -> anyhow::Result<SessionJwtClient<Channel>> {
        let addr = self.dc(dc).session.host_addr(SESSION_PORT)?;
        let channel = self
            .pki
            .channel_to(&self.pki.files("login"), addr, "session-jwt")
            .await?;
        Ok(SessionJwtClient::new(channel))
    }

    /// Where `dc`'s login, session service and stash serve `/metrics` on this machine.
    pub fn metrics_urls(&self, dc: &str) -> anyhow::Result<[String; 3]> {
        let datacenter = self.dc(dc);
        let url = |addr: std::net::SocketAddr| format!("http://{addr}/metrics");
        Ok([
            url(datacenter.web.login.host_addr(web::LOGIN_ADMIN_PORT)?),
            url(datacenter.session.host_addr(SESSION_ADMIN_PORT)?),
            url(datacenter.stash.host_addr(STASH_ADMIN_PORT)?),
        ])
    }

    /// `dc`'s stash metrics (Prometheus text).
    pub async fn stash_metrics(&self, dc: &str) -> anyhow::Result<String> {
        let addr = self.dc(dc).stash.host_addr(STASH_ADMIN_PORT)?;
        Ok(tessera_testkit::http_get(addr, "/metrics").await?.body)
    }

    /// `dc`'s session service metrics (Prometheus text).
    pub async fn session_metrics(&self, dc: &str) -> anyhow::Result<String> {
        let addr = self.dc(dc).session.host_addr(SESSION_ADMIN_PORT)?;
        Ok(tessera_testkit::http_get(addr, "/metrics").await?.body)
    }

    /// Parts `dc-a` from `dc-b` (and from the directory, which is across the wan):
    /// `dc-a`'s services leave the only network between them.
    pub fn partition(&self) -> anyhow::Result<()> {
        let a = self.dc("dc-a");
        self.wan.disconnect(&a.stash)?;
        self.wan.disconnect(&a.session)?;
        self.wan.disconnect(&a.web.login)?;
        Ok(())
    }

    /// Ends the partition.
    pub fn heal(&self) -> anyhow::Result<()> {
        let a = self.dc("dc-a");
        self.wan.connect(&a.stash, "stash-dc-a")?;
        self.wan.connect(&a.session, "session-dc-a")?;
        self.wan.connect(&a.web.login, "login-dc-a")?;
        Ok(())
    }

    /// Where the host reaches `dc`'s login service (plain HTTP, as behind its TLS front).
    pub fn login_base(&self, dc: &str) -> anyhow::Result<String> {
        let addr = self.dc(dc).web.login.host_addr(web::LOGIN_PORT)?;
        Ok(format!("http://{addr}"))
    }

    /// `dc`'s login service metrics (Prometheus text).
    pub async fn login_metrics(&self, dc: &str) -> anyhow::Result<String> {
        let addr = self.dc(dc).web.login.host_addr(web::LOGIN_ADMIN_PORT)?;
        Ok(tessera_testkit::http_get(addr, "/metrics").await?.body)
    }

    /// The web CA's certificate, which the sites' and logins' fronts chain to.
    pub fn web_ca_file(&self) -> PathBuf {
        self.files.path().join("login-dc-a").join("web-ca.pem")
    }

    /// The audit service's admin token of `dc` (for its dashboard).
    pub fn audit_admin_token(&self, dc: &str) -> anyhow::Result<String> {
        let path = self
            .files
            .path()
            .join(format!("audit-{dc}"))
            .join("secrets")
            .join("admin.token");
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned())
    }

    /// The routes of a person whose name resolver sends them to `dc`'s login service:
    /// the login origin to it, and each site's origin to that site.
    pub fn routes_near(&self, dc: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut routes = vec![(web::LOGIN_ORIGIN.to_owned(), self.login_base(dc)?)];
        for datacenter in &self.datacenters {
            let addr = datacenter.web.site.host_addr(web::SITE_PORT)?;
            routes.push((
                web::site_origin(&web::site_of(&datacenter.name)),
                format!("http://{addr}"),
            ));
        }
        Ok(routes)
    }

    /// A fresh browser of a person routed to `dc`.
    pub fn browser_near(&self, dc: &str) -> anyhow::Result<Browser> {
        Browser::routed(&self.routes_near(dc)?)
    }
}

/// Where one datacenter's stash and session service are reached from the other.
struct PeerHosts {
    stash: String,
    session: String,
}

/// The environment of every service of a datacenter: its simulated clock offset.
/// What every container of a datacenter gets in its environment beyond its config.
fn datacenter_env(spec: DatacenterSpec) -> Vec<(String, String)> {
    let clock = spec.clock_offset_seconds.map(|seconds| {
        (
            "TESSERA_SIMULATION_CLOCK_OFFSET_SECONDS".to_owned(),
            seconds.to_string(),
        )
    });
    let access = spec.access_token_seconds.map(|seconds| {
        (
            "TESSERA_SESSION__ACCESS_TOKEN_SECONDS".to_owned(),
            seconds.to_string(),
        )
    });
    clock.into_iter().chain(access).collect()
}

fn start_datacenter(
    cx: &WebContext<'_>,
    network: Network,
    dc: &str,
    (peer, peer_hosts): (&str, &PeerHosts),
    spec: DatacenterSpec,
    session_secret: &str,
) -> anyhow::Result<Datacenter> {
    let (run, dir, pki, wan, env) = (cx.run, cx.dir, cx.pki, cx.wan, cx.env);
    let audit = web::start_audit(cx, &network, dc)?;
    let redis = match spec.backend {
        Backend::Embedded => None,
        Backend::Redis => Some(Container::start(ContainerSpec {
            name: format!("{run}-redis-{dc}"),
            image: "tessera/redis:bookworm".into(),
            args: [
                "redis-server",
                "--port",
                "6379",
                "--protected-mode",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                "/tmp",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]
            .map(String::from)
            .to_vec(),
            network: network.name().to_owned(),
            alias: "redis".into(),
            user: Some("redis".into()),
            ready_line: "Ready to accept connections".into(),
            ..ContainerSpec::default()
        })?),
    };

    let storage = match spec.backend {
        Backend::Embedded => {
            "backend = \"embedded\"\ndata_dir = \"/etc/tessera/data\"\n".to_owned()
        }
        Backend::Redis => "backend = \"redis\"\nredis_url = \"redis://redis:6379\"\n".to_owned(),
    };
    let stash_dir = service_dir(dir, pki, &format!("stash-{dc}"), "token-stash")?;
    write(
        &stash_dir.join("config.toml"),
        &format!(
            r#"datacenter = "{dc}"
listen = "0.0.0.0:{STASH_PORT}"
admin_listen = "0.0.0.0:{STASH_ADMIN_PORT}"
log_format = "json"

[storage]
{storage}
[tokens]
seal_key_file = "/etc/tessera/seal.key"

{AUDIT_SECTION}
{TLS_SECTION}
[peers.{peer}]
url = "https://{}:{STASH_PORT}"
"#,
            peer_hosts.stash
        ),
    )?;
    let stash = Container::start(ContainerSpec {
        also_on: vec![(wan.name().to_owned(), format!("stash-{dc}"))],
        ..service_spec(
            &format!("{run}-stash-{dc}"),
            "token-stash",
            &stash_dir,
            &network,
            "stash",
            env,
            [STASH_PORT, STASH_ADMIN_PORT],
        )
    })?;

    let session_dir = service_dir(dir, pki, &format!("session-{dc}"), "session-jwt")?;
    write(&session_dir.join("secret.key"), session_secret)?;
    write(
        &session_dir.join("config.toml"),
        &format!(
            r#"listen = "0.0.0.0:{SESSION_PORT}"
admin_listen = "0.0.0.0:{SESSION_ADMIN_PORT}"
log_format = "json"
keys_dir = "/etc/tessera/keys"
secret_file = "/etc/tessera/secret.key"

[stash]
url = "https://stash:{STASH_PORT}"
datacenter = "{dc}"

{AUDIT_SECTION}
{TLS_SECTION}
[peers.{peer}]
url = "https://{}:{SESSION_PORT}"
"#,
            peer_hosts.session
        ),
    )?;
    own_for_service(&session_dir)?;
    let session = Container::start(ContainerSpec {
        also_on: vec![(wan.name().to_owned(), format!("session-{dc}"))],
        ..service_spec(
            &format!("{run}-session-{dc}"),
            "session-jwt",
            &session_dir,
            &network,
            "session",
            env,
            [SESSION_PORT, SESSION_ADMIN_PORT],
        )
    })?;
    let web = web::start_web(cx, &network, dc, audit)?;
    Ok(Datacenter {
        name: dc.to_owned(),
        stash,
        session,
        web,
        _redis: redis,
        network,
    })
}

fn service_spec(
    name: &str,
    service: &str,
    dir: &Path,
    network: &Network,
    alias: &str,
    env: &[(String, String)],
    ports: [u16; 2],
) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: format!("tessera/{service}:latest"),
        args: ["serve", "--config", "/etc/tessera/config.toml"]
            .map(String::from)
            .to_vec(),
        network: network.name().to_owned(),
        alias: alias.to_owned(),
        mounts: vec![(dir.display().to_string(), "/etc/tessera".into())],
        env: env.to_vec(),
        ports: ports.to_vec(),
        user: None,
        fixed_ports: Vec::new(),
        ready_line: "ready: grpc=".into(),
        entrypoint: None,
        run_options: Vec::new(),
        also_on: Vec::new(),
    }
}

/// A directory for one container, mounted at `/etc/tessera`: the CA, the service's
/// certificate and key, and room for its state, owned by the image's user.
pub(crate) fn service_dir(
    dir: &Path,
    pki: &TestPki,
    name: &str,
    service: &str,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::create_dir_all(&path)?;
    let files = pki.files(service);
    std::fs::copy(&files.ca_file, path.join("ca.pem"))?;
    std::fs::copy(&files.cert_file, path.join("cert.pem"))?;
    std::fs::copy(&files.key_file, path.join("key.pem"))?;
    own_for_service(&path)?;
    Ok(path)
}

pub(crate) fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    own_for_service(path)
}

/// Gives `path` (and what is under it) to the image's user, so the service can read its
/// key and write its state; without root, opens it to everyone instead (a throwaway
/// test directory).
pub(crate) fn own_for_service(path: &Path) -> anyhow::Result<()> {
    let as_root = std::os::unix::fs::chown(path, Some(SERVICE_UID), Some(SERVICE_UID)).is_ok();
    if !as_root {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if path.is_dir() { 0o777 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            own_for_service(&entry?.path())?;
        }
    }
    Ok(())
}

pub(crate) fn random_hex() -> anyhow::Result<String> {
    let mut file = std::fs::File::open("/dev/urandom")?;
    let mut buffer = [0u8; 32];
    std::io::Read::read_exact(&mut file, &mut buffer)?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}
