//! The web tier of the two datacenters: one user directory in PostgreSQL that both
//! datacenters' login services share, and in each datacenter an audit service, a login
//! service and a demo site behind a TLS front.
//!
//! Names people and sites use are public and the same in both datacenters: the login
//! service is `https://login.tessera.test` wherever a person is routed, the sites are
//! `https://wiki-a.tessera.test` (hosted in `dc-a`) and `https://wiki-b.tessera.test`
//! (in `dc-b`). Inside, the sites' fronts hold certificates of a web CA of the
//! deployment's own, which the login services trust for back-channel logout.

use std::path::Path;

use tessera_mtls::DevCa;
use tessera_testkit::TestPki;

use crate::deployment::{own_for_service, random_hex, service_dir, write};
use crate::docker::{self, Container, ContainerSpec, Network};

/// The login service's public origin, the OpenID issuer, in both datacenters.
pub const LOGIN_ORIGIN: &str = "https://login.tessera.test";
/// The user every deployment has.
pub const USER: &str = "alice";
pub(crate) const LOGIN_PORT: u16 = 7400;
pub const LOGIN_ADMIN_PORT: u16 = 7480;
pub(crate) const AUDIT_PORT: u16 = 7403;
pub const AUDIT_ADMIN_PORT: u16 = 7483;
pub(crate) const SITE_PORT: u16 = 7501;
const DIRECTORY_PORT: u16 = 5432;
/// The images the web tier adds.
pub const IMAGES: [&str; 4] = [
    "tessera/login:latest",
    "tessera/audit:latest",
    "tessera/demo-site:latest",
    "tessera/postgres:bookworm",
];

/// The demo site a datacenter hosts: `wiki-a` in `dc-a`, `wiki-b` in `dc-b`.
pub fn site_of(dc: &str) -> String {
    format!("wiki-{}", dc.trim_start_matches("dc-"))
}

/// A site's public origin.
pub fn site_origin(client_id: &str) -> String {
    format!("https://{client_id}.tessera.test")
}

/// A registered site, as its back end knows itself.
#[derive(Debug, Clone)]
pub struct SiteCredentials {
    /// Its client id.
    pub client_id: String,
    /// Its client secret.
    pub secret: String,
    /// Its public origin.
    pub origin: String,
}

impl SiteCredentials {
    /// Its registered redirect URI.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.origin)
    }
}

/// The directory every login service uses: PostgreSQL, reached over the wan.
#[derive(Debug)]
pub struct Directory {
    /// The container.
    pub container: Container,
    /// The URL the login services connect with.
    pub url: String,
    /// The password of [`USER`].
    pub password: String,
    /// Every registered site.
    pub sites: Vec<SiteCredentials>,
}

impl Directory {
    /// Starts PostgreSQL on `wan` and registers the user and both demo sites through the
    /// login image's own administrative commands.
    pub fn start(run: &str, wan: &Network) -> anyhow::Result<Self> {
        let sites: Vec<(String, String)> = ["wiki-a", "wiki-b"]
            .into_iter()
            .map(|client_id| (client_id.to_owned(), site_origin(client_id)))
            .collect();
        Self::start_with_sites(run, wan, &sites)
    }

    /// Starts PostgreSQL on `network`, where services find it as `directory`, and
    /// registers the user and `sites` (client id, public origin) through the login
    /// image's own administrative commands.
    pub fn start_with_sites(
        run: &str,
        network: &Network,
        sites: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let db_password = random_hex()?;
        let bin = "/usr/lib/postgresql/15/bin";
        // A throwaway cluster in the container; password authentication over the network.
        let script = format!(
            "set -e; printf '%s\\n' {db_password} >/tmp/pw; \
             {bin}/initdb -D /tmp/pg -U tessera --pwfile=/tmp/pw --auth=scram-sha-256 >/dev/null; \
             echo 'host all all 0.0.0.0/0 scram-sha-256' >>/tmp/pg/pg_hba.conf; \
             exec {bin}/postgres -D /tmp/pg -c listen_addresses='*' -c unix_socket_directories=/tmp"
        );
        let container = Container::start(ContainerSpec {
            name: format!("{run}-directory"),
            image: "tessera/postgres:bookworm".into(),
            args: vec!["sh".into(), "-c".into(), script],
            network: network.name().to_owned(),
            alias: "directory".into(),
            user: Some("postgres".into()),
            ready_line: "database system is ready to accept connections".into(),
            ..ContainerSpec::default()
        })?;
        let url = format!("postgres://tessera:{db_password}@directory:{DIRECTORY_PORT}/postgres");
        let password = random_hex()?;
        let admin = |args: &[&str], stdin: &str| {
            docker::run_once(
                "tessera/login:latest",
                network.name(),
                &[("TESSERA_LOGIN__DATABASE_URL", url.as_str())],
                args,
                stdin,
            )
        };
        admin(&["user", "add", USER], &format!("{password}\n"))?;
        let mut registered = Vec::new();
        for (client_id, origin) in sites {
            let printed = admin(
                &[
                    "site",
                    "add",
                    client_id,
                    "--redirect-uri",
                    &format!("{origin}/callback"),
                    "--post-logout-uri",
                    &format!("{origin}/"),
                    "--backchannel-logout-uri",
                    &format!("{origin}/backchannel-logout"),
                ],
                "",
            )?;
            // The secret is printed last, once.
            let secret = printed.lines().last().unwrap_or_default().trim().to_owned();
            anyhow::ensure!(secret.len() >= 32, "site add printed no secret: {printed}");
            registered.push(SiteCredentials {
                client_id: client_id.clone(),
                secret,
                origin: origin.clone(),
            });
        }
        Ok(Directory {
            container,
            url,
            password,
            sites: registered,
        })
    }

    /// The credentials of `client_id`.
    pub fn site(&self, client_id: &str) -> &SiteCredentials {
        self.sites
            .iter()
            .find(|site| site.client_id == client_id)
            .unwrap_or_else(|| panic!("no site {client_id}"))
    }
}

/// One datacenter's web tier.
#[derive(Debug)]
pub struct WebTier {
    /// Its audit service.
    pub audit: Container,
    /// Its login service.
    pub login: Container,
    /// Its demo site.
    pub site: Container,
    /// The site's TLS front.
    pub site_front: Container,
    /// The login's TLS front, when the deployment is for people.
    pub login_front: Option<Container>,
}

/// What starting a datacenter's web tier needs.
pub(crate) struct WebContext<'a> {
    pub run: &'a str,
    pub dir: &'a Path,
    pub pki: &'a TestPki,
    pub web_ca: &'a DevCa,
    pub wan: &'a Network,
    pub directory: &'a Directory,
    /// The login services' shared secrets (flow, ID-token and derivation keys).
    pub login_secrets: &'a Path,
    /// Publish the public fronts on this machine's loopback for a person's browser.
    pub for_people: bool,
    pub env: &'a [(String, String)],
}

/// Starts `dc`'s audit service (before anything else that writes to it).
pub(crate) fn start_audit(
    cx: &WebContext<'_>,
    network: &Network,
    dc: &str,
) -> anyhow::Result<Container> {
    let audit_dir = service_dir(cx.dir, cx.pki, &format!("audit-{dc}"), "audit")?;
    write(
        &audit_dir.join("config.toml"),
        &format!(
            r#"listen = "0.0.0.0:{AUDIT_PORT}"
admin_listen = "0.0.0.0:{AUDIT_ADMIN_PORT}"
datacenter = "{dc}"
log_format = "json"
data_dir = "/etc/tessera/data"
secrets_dir = "/etc/tessera/secrets"

{TLS_SECTION}"#
        ),
    )?;
    Container::start(ContainerSpec {
        ready_line: "tessera-audit ready:".into(),
        ..service_container(
            cx,
            network,
            dc,
            "audit",
            &audit_dir,
            [AUDIT_PORT, AUDIT_ADMIN_PORT],
        )
    })
}

/// Starts `dc`'s login service and demo site; the audit service, stash and session
/// service run already.
pub(crate) fn start_web(
    cx: &WebContext<'_>,
    network: &Network,
    dc: &str,
    audit: Container,
) -> anyhow::Result<WebTier> {
    let login_dir = service_dir(cx.dir, cx.pki, &format!("login-{dc}"), "login")?;
    write(&login_dir.join("web-ca.pem"), cx.web_ca.cert_pem())?;
    write(
        &login_dir.join("config.toml"),
        &format!(
            r#"listen = "0.0.0.0:{LOGIN_PORT}"
admin_listen = "0.0.0.0:{LOGIN_ADMIN_PORT}"
log_format = "json"
public_url = "{LOGIN_ORIGIN}"
database_url = "{database_url}"
secrets_dir = "/secrets"
backchannel_ca_file = "/etc/tessera/web-ca.pem"
# Every request of the tests comes from one address (the host); the limit is not
# what they measure.
attempts_per_ip_per_minute = 1000000

[session_jwt]
url = "https://session:7402"

[stash]
url = "https://stash:7401"
datacenter = "{dc}"

{AUDIT_SECTION}
{TLS_SECTION}"#,
            database_url = cx.directory.url,
        ),
    )?;
    // It is on the wan, where the directory it opens at start-up is (and the sites'
    // fronts, for back-channel logout), and on its datacenter's network, whose services
    // it calls from its first moment (it follows the session service's revocations).
    let mut login_spec = service_container(
        cx,
        cx.wan,
        dc,
        "login",
        &login_dir,
        [LOGIN_PORT, LOGIN_ADMIN_PORT],
    );
    login_spec.alias = format!("login-{dc}");
    login_spec.also_on = vec![(network.name().to_owned(), "login".into())];
    login_spec
        .mounts
        .push((cx.login_secrets.display().to_string(), "/secrets".into()));
    let login = Container::start(ContainerSpec {
        ready_line: "tessera-login ready:".into(),
        ..login_spec
    })?;

    let client_id = site_of(dc);
    let credentials = cx.directory.site(&client_id);
    let site_dir = cx.dir.join(format!("site-{dc}"));
    std::fs::create_dir_all(&site_dir)?;
    write(&site_dir.join("client.secret"), &credentials.secret)?;
    own_for_service(&site_dir)?;
    let site = Container::start(ContainerSpec {
        name: format!("{}-site-{dc}", cx.run),
        image: "tessera/demo-site:latest".into(),
        args: [
            "--client-id",
            &client_id,
            "--client-secret-file",
            "/etc/tessera/client.secret",
            "--listen",
            &format!("0.0.0.0:{SITE_PORT}"),
            "--public-url",
            &credentials.origin,
            "--login-url",
            LOGIN_ORIGIN,
            // The site's back end reaches its datacenter's login directly, inside.
            "--login-api-url",
            &format!("http://login:{LOGIN_PORT}"),
        ]
        .map(String::from)
        .to_vec(),
        network: network.name().to_owned(),
        alias: "site".into(),
        mounts: vec![(site_dir.display().to_string(), "/etc/tessera".into())],
        env: cx.env.to_vec(),
        ports: vec![SITE_PORT],
        user: None,
        fixed_ports: Vec::new(),
        ready_line: "ready: http=".into(),
        entrypoint: None,
        run_options: Vec::new(),
        also_on: Vec::new(),
    })?;

    let host = credentials.origin.trim_start_matches("https://").to_owned();
    // Sites are on the public side: any datacenter's login reaches them by name.
    let site_front = tls_front(
        cx,
        network,
        dc,
        &host,
        &format!("site:{SITE_PORT}"),
        Some(cx.wan),
    )?;
    let login_front = if cx.for_people {
        let host = LOGIN_ORIGIN.trim_start_matches("https://");
        Some(tls_front(
            cx,
            network,
            dc,
            host,
            &format!("login:{LOGIN_PORT}"),
            None,
        )?)
    } else {
        None
    };
    Ok(WebTier {
        audit,
        login,
        site,
        site_front,
        login_front,
    })
}

/// Where a person's browser finds `host` (a public name) of `dc` on this machine, when
/// the deployment is started for people: each on port 443 of a loopback address of its
/// own.
pub fn people_address(host: &str, dc: &str) -> &'static str {
    match (host, dc) {
        ("wiki-a.tessera.test", _) => "127.0.0.2",
        ("wiki-b.tessera.test", _) => "127.0.0.3",
        (_, "dc-a") => "127.0.0.4",
        _ => "127.0.0.5",
    }
}

/// A TLS front for public name `host` in `dc`, carrying to `to`; published on port 443
/// of its [`people_address`] when the deployment is for people, and found as `host` on
/// `public` when given.
fn tls_front(
    cx: &WebContext<'_>,
    network: &Network,
    dc: &str,
    host: &str,
    to: &str,
    public: Option<&Network>,
) -> anyhow::Result<Container> {
    let label = host.split('.').next().unwrap_or(host);
    let front_dir = cx.dir.join(format!("front-{label}-{dc}"));
    std::fs::create_dir_all(&front_dir)?;
    let issued = cx.web_ca.issue_web_server(host)?;
    write(&front_dir.join("cert.pem"), &issued.cert_pem)?;
    write(&front_dir.join("key.pem"), &issued.key_pem)?;
    own_for_service(&front_dir)?;
    let fixed_ports = if cx.for_people {
        vec![(format!("{}:443", people_address(host, dc)), 443)]
    } else {
        Vec::new()
    };
    Container::start(ContainerSpec {
        name: format!("{}-front-{label}-{dc}", cx.run),
        image: "tessera/wan-link:latest".into(),
        args: [
            "--listen",
            "0.0.0.0:443",
            "--to",
            to,
            "--tls-cert",
            "/etc/tessera/cert.pem",
            "--tls-key",
            "/etc/tessera/key.pem",
        ]
        .map(String::from)
        .to_vec(),
        network: network.name().to_owned(),
        alias: format!("front-{label}"),
        mounts: vec![(front_dir.display().to_string(), "/etc/tessera".into())],
        fixed_ports,
        ready_line: "tessera-wan-link ready:".into(),
        also_on: public
            .map(|wan| (wan.name().to_owned(), host.to_owned()))
            .into_iter()
            .collect(),
        ..ContainerSpec::default()
    })
}

/// A service container of `dc` on its network, configured from `dir`.
fn service_container(
    cx: &WebContext<'_>,
    network: &Network,
    dc: &str,
    service: &str,
    dir: &Path,
    ports: [u16; 2],
) -> ContainerSpec {
    ContainerSpec {
        name: format!("{}-{service}-{dc}", cx.run),
        image: format!("tessera/{service}:latest"),
        args: ["serve", "--config", "/etc/tessera/config.toml"]
            .map(String::from)
            .to_vec(),
        network: network.name().to_owned(),
        alias: service.to_owned(),
        mounts: vec![(dir.display().to_string(), "/etc/tessera".into())],
        env: cx.env.to_vec(),
        ports: ports.to_vec(),
        user: None,
        fixed_ports: Vec::new(),
        ready_line: String::new(),
        entrypoint: None,
        run_options: Vec::new(),
        also_on: Vec::new(),
    }
}

/// Every service's certificates, mounted at `/etc/tessera`.
pub(crate) const TLS_SECTION: &str = r#"[tls]
ca_file = "/etc/tessera/ca.pem"
cert_file = "/etc/tessera/cert.pem"
key_file = "/etc/tessera/key.pem"
"#;

/// Security events to the datacenter's audit service, spooled in the container while
/// it is away.
pub(crate) const AUDIT_SECTION: &str = r#"[audit]
url = "https://audit:7403"
spool_dir = "/etc/tessera/spool"
"#;
