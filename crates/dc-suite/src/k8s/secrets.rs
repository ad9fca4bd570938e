//! The Secrets an overlay's pods mount, made as an operator makes them: key sets by
//! `k8s/make-secrets.sh`, certificates as cert-manager would issue them from each
//! Certificate (its one SPIFFE URI, from a CA of the run's own), the directory's URL
//! and the demo site's client secret from the directory the run registered them in.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _};
use tessera_mtls::{DevCa, ServiceIdentity};

use super::manifests::Rendered;
use crate::web::Directory;

/// Secret name → key → value.
pub type Secrets = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Every Secret of one datacenter: `k8s/make-secrets.sh` run into `scratch`, the
/// Certificates of `rendered` issued, and the directory's.
pub fn make(
    root: &Path,
    scratch: &Path,
    rendered: &Rendered,
    directory: &Directory,
    site_client_id: &str,
) -> anyhow::Result<Secrets> {
    let made = scratch.join("made-secrets");
    let output = Command::new("bash")
        .arg(root.join("k8s/make-secrets.sh"))
        .arg(&made)
        .output()
        .context("cannot run bash")?;
    if !output.status.success() {
        bail!(
            "k8s/make-secrets.sh failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut secrets = read_folders(&made)?;

    let ca = DevCa::generate("Tessera manifest test CA")?;
    for certificate in rendered.certificates()? {
        let identity = ServiceIdentity::parse(&certificate.uri)?;
        let issued = ca.issue(&identity)?;
        // The keys cert-manager writes.
        secrets.insert(
            certificate.secret_name,
            BTreeMap::from([
                ("ca.crt".to_owned(), ca.cert_pem().as_bytes().to_vec()),
                ("tls.crt".to_owned(), issued.cert_pem.into_bytes()),
                ("tls.key".to_owned(), issued.key_pem.into_bytes()),
            ]),
        );
    }

    secrets.insert(
        "tessera-directory".into(),
        BTreeMap::from([("url".to_owned(), directory.url.clone().into_bytes())]),
    );
    let site = directory.site(site_client_id);
    secrets.insert(
        "demo-site-client".into(),
        BTreeMap::from([("secret".to_owned(), site.secret.clone().into_bytes())]),
    );
    Ok(secrets)
}

/// One Secret per folder of `dir`, one key per file.
fn read_folders(dir: &Path) -> anyhow::Result<Secrets> {
    let mut secrets = Secrets::new();
    for folder in std::fs::read_dir(dir)? {
        let folder = folder?.path();
        let name = file_name(&folder)?;
        let mut keys = BTreeMap::new();
        for file in std::fs::read_dir(&folder)? {
            let file = file?.path();
            keys.insert(file_name(&file)?, std::fs::read(&file)?);
        }
        secrets.insert(name, keys);
    }
    Ok(secrets)
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no UTF-8 name", path.display()))
}
