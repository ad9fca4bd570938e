//! The stack under load, as the command that started it describes it (`stack.json`):
//! where the sites and the login are, where each service's `/metrics` is, and the
//! accounts people sign in as.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// One stack: one datacenter (`just up`) or two (`just dc-up`).
#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    /// What it is, for the report.
    pub name: String,
    /// The login service's public origin (the issuer).
    pub login_origin: String,
    /// Its datacenters, each with its own login, session service and stash.
    pub datacenters: Vec<Datacenter>,
    /// The demo sites.
    pub sites: Vec<Site>,
    /// Accounts people sign in as (all with the password in `password_file`).
    pub accounts: Vec<String>,
    /// The accounts' password.
    pub password_file: PathBuf,
    /// A CA that issued the public fronts' certificates, when they are not publicly trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whether the login believes `x-forwarded-for` from this machine, so simulated
    /// visitors can come from addresses of their own.
    pub forwarded_for: bool,
    /// The session service's access-token lifetime (the soft expiry), seconds: how long a
    /// returning person waits for the site to refresh.
    pub access_token_seconds: u64,
}

/// One datacenter's login, session service and stash.
#[derive(Debug, Clone, Deserialize)]
pub struct Datacenter {
    /// e.g. `dc-a`.
    pub name: String,
    /// Where a browser near this datacenter reaches the login origin (its host resolves
    /// here); `None`: by the origin's own name.
    #[serde(default)]
    pub login_address: Option<SocketAddr>,
    /// The login service's `/metrics`.
    pub login_metrics: String,
    /// The session service's `/metrics`.
    pub session_metrics: String,
    /// The stash's `/metrics`.
    pub stash_metrics: String,
}

/// A demo site.
#[derive(Debug, Clone, Deserialize)]
pub struct Site {
    /// Its client id.
    pub name: String,
    /// Its public origin.
    pub origin: String,
    /// The datacenter hosting it.
    pub dc: String,
    /// Where its origin's host resolves; `None`: by its own name.
    #[serde(default)]
    pub address: Option<SocketAddr>,
}

impl Stack {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the stack description {}", path.display()))?;
        let stack: Stack = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a stack description", path.display()))?;
        anyhow::ensure!(
            !stack.datacenters.is_empty(),
            "{} names no datacenter",
            path.display()
        );
        anyhow::ensure!(
            stack.sites.len() >= 2,
            "{} names fewer than two sites; the single-sign-on hop needs two",
            path.display()
        );
        anyhow::ensure!(
            !stack.accounts.is_empty(),
            "{} names no account",
            path.display()
        );
        for site in &stack.sites {
            anyhow::ensure!(
                stack.datacenter_index(&site.dc).is_some(),
                "site {} is in datacenter {}, which {} does not name",
                site.name,
                site.dc,
                path.display()
            );
        }
        Ok(stack)
    }

    /// The accounts' password.
    pub fn password(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.password_file).with_context(|| {
            format!("reading the password file {}", self.password_file.display())
        })?;
        Ok(text.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// The position of datacenter `name`.
    pub fn datacenter_index(&self, name: &str) -> Option<usize> {
        self.datacenters.iter().position(|dc| dc.name == name)
    }

    /// Whether more than one datacenter serves.
    pub fn is_multi_dc(&self) -> bool {
        self.datacenters.len() > 1
    }

    /// For a visitor whose login is served by datacenter `home`: the site to sign in on
    /// first (hosted in another datacenter when there is one, so its code is redeemed
    /// where it was not minted) and the site of the single-sign-on hop.
    pub fn sites_for(&self, home: usize) -> (&Site, &Site) {
        let home_name = &self.datacenters[home].name;
        let first = self
            .sites
            .iter()
            .position(|site| &site.dc != home_name)
            .unwrap_or(0);
        let second = (first + 1) % self.sites.len();
        (&self.sites[first], &self.sites[second])
    }
}
