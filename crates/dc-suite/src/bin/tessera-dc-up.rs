//! `tessera-dc-up` (`just dc-up`): starts the two datacenters of the container suite for
//! a person to click through, prints how to reach them, and removes them on Ctrl-C (or
//! SIGTERM).
//!
//! Options: `--describe <file>` also writes the deployment's description for a load run
//! (`just load-dc`); `--access-token-seconds <n>` shortens the session services' access
//! tokens so sessions age, and refresh, within a run.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tessera_dc_suite::web::{people_address, site_of};
use tessera_dc_suite::{DatacenterSpec, Deployment, LOGIN_ORIGIN, USER};

/// The session service's default access-token lifetime, seconds.
const DEFAULT_ACCESS_TOKEN_SECONDS: u64 = 300;

#[derive(Debug, Default)]
struct Options {
    describe: Option<PathBuf>,
    access_token_seconds: Option<u64>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--describe" => {
                options.describe = Some(PathBuf::from(
                    args.next().context("--describe needs a file name")?,
                ));
            }
            "--access-token-seconds" => {
                let seconds = args
                    .next()
                    .context("--access-token-seconds needs a number")?;
                options.access_token_seconds = Some(seconds.parse().with_context(|| {
                    format!("--access-token-seconds: {seconds:?} is not a whole number")
                })?);
            }
            other => anyhow::bail!(
                "unknown option {other:?}; options: --describe <file>, --access-token-seconds <n>"
            ),
        }
    }
    Ok(options)
}

/// Writes what a load run needs to know of `dcs` to `path` (and the password beside it,
/// owner-only).
fn describe(dcs: &Deployment, path: &Path, access_token_seconds: u64) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let password_file = dir.join("password");
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&password_file)?;
        writeln!(file, "{}", dcs.directory.password)?;
    }
    let login_host = LOGIN_ORIGIN.trim_start_matches("https://");
    let mut datacenters = Vec::new();
    let mut sites = Vec::new();
    for datacenter in &dcs.datacenters {
        let dc = datacenter.name.as_str();
        let [login, session, stash] = dcs.metrics_urls(dc)?;
        datacenters.push(serde_json::json!({
            "name": dc,
            "login_address": format!("{}:443", people_address(login_host, dc)),
            "login_metrics": login,
            "session_metrics": session,
            "stash_metrics": stash,
        }));
        let host = format!("{}.tessera.test", site_of(dc));
        sites.push(serde_json::json!({
            "name": site_of(dc),
            "origin": format!("https://{host}"),
            "dc": dc,
            "address": format!("{}:443", people_address(&host, dc)),
        }));
    }
    let description = serde_json::json!({
        "name": "two datacenters in containers (just dc-up: release images)",
        "login_origin": LOGIN_ORIGIN,
        "datacenters": datacenters,
        "sites": sites,
        "accounts": [USER],
        "password_file": password_file,
        "ca_file": dcs.web_ca_file(),
        // The login sees the public fronts as its peers and believes no forwarding header.
        "forwarded_for": false,
        "access_token_seconds": access_token_seconds,
    });
    // Whole or not at all: a script waits for the file to appear.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(&description)?)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}

/// Ctrl-C or SIGTERM (a script stopping a background `tessera-dc-up`).
async fn stop_requested() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => Ok(result?),
        _ = term.recv() => Ok(()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "Starting two datacenters in containers (dc-a: embedded stash, dc-b: Redis stash)…"
    )?;
    let (a, b) = match options.access_token_seconds {
        Some(seconds) => (
            DatacenterSpec::embedded().with_access_token_seconds(seconds),
            DatacenterSpec::redis().with_access_token_seconds(seconds),
        ),
        None => (DatacenterSpec::embedded(), DatacenterSpec::redis()),
    };
    let dcs = tokio::task::spawn_blocking(move || Deployment::start_for_people(a, b)).await??;
    let login_host = LOGIN_ORIGIN.trim_start_matches("https://");
    let (wiki_a, wiki_b) = (
        format!("{}.tessera.test", site_of("dc-a")),
        format!("{}.tessera.test", site_of("dc-b")),
    );
    let rules = |login_dc: &str| {
        format!(
            "MAP {login_host} {}, MAP {wiki_a} {}, MAP {wiki_b} {}",
            people_address(login_host, login_dc),
            people_address(&wiki_a, "dc-a"),
            people_address(&wiki_b, "dc-b"),
        )
    };
    writeln!(
        out,
        r#"
Two datacenters are up. People use the public names, served here on port 443 of
loopback addresses (TLS from the deployment's own web CA, {ca}):

  https://{wiki_a}/   wiki-a, hosted in dc-a   ({wa})
  https://{wiki_b}/   wiki-b, hosted in dc-b   ({wb})
  {LOGIN_ORIGIN}/   dc-a's login ({la}) or dc-b's ({lb}): the one your resolver names

Sign in as {USER}, password {password}

Open them in a throwaway Chromium profile whose resolver sends the login name to dc-a
(put {lb} in place of {la} to be served by dc-b's login instead):

  chromium --user-data-dir="$(mktemp -d)" --ignore-certificate-errors \
    --host-resolver-rules="{rules_a}" https://{wiki_a}/

or add the names to /etc/hosts and trust {ca}.
"#,
        ca = dcs.web_ca_file().display(),
        wa = people_address(&wiki_a, "dc-a"),
        wb = people_address(&wiki_b, "dc-b"),
        la = people_address(login_host, "dc-a"),
        lb = people_address(login_host, "dc-b"),
        password = dcs.directory.password,
        rules_a = rules("dc-a"),
    )?;
    for datacenter in &dcs.datacenters {
        let dc = datacenter.name.as_str();
        writeln!(
            out,
            "  {dc}: login http={} metrics=http://{}/metrics; audit dashboard http://{}/dashboard (admin token {})",
            dcs.login_base(dc)?,
            datacenter.web.login.host_addr(tessera_dc_suite::web::LOGIN_ADMIN_PORT)?,
            datacenter.web.audit.host_addr(tessera_dc_suite::web::AUDIT_ADMIN_PORT)?,
            dcs.audit_admin_token(dc)?,
        )?;
    }
    if let Some(path) = &options.describe {
        describe(
            &dcs,
            path,
            options
                .access_token_seconds
                .unwrap_or(DEFAULT_ACCESS_TOKEN_SECONDS),
        )?;
        writeln!(out, "\nDescribed for load runs in {}", path.display())?;
    }
    writeln!(
        out,
        "\nPress Ctrl-C to stop and remove them (`just dc-down` removes what a killed run left)."
    )?;
    out.flush()?;
    stop_requested().await?;
    writeln!(out, "Removing the two datacenters…")?;
    tokio::task::spawn_blocking(move || drop(dcs)).await?;
    writeln!(out, "Removed.")?;
    Ok(())
}
