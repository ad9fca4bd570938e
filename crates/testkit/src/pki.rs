use std::path::{Path, PathBuf};

use tessera_mtls::{DevCa, DevPki, ServiceIdentity, TlsFiles};
use time::{Duration, OffsetDateTime};
use tonic::transport::Channel;

/// A dev PKI in a temporary directory, plus the means to make bad certificates.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    pki: DevPki,
}

impl TestPki {
    /// A fresh CA and certificates for every Tessera service.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let pki = DevPki::ensure(dir.path())?;
        Ok(TestPki { dir, pki })
    }

    /// The directory holding the PKI (usable as `tls.dev_pki_dir`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The files of a service, e.g. `login`.
    pub fn files(&self, service: &str) -> TlsFiles {
        self.pki.files_for(&identity(service))
    }

    /// Files for `service` signed by a CA nobody trusts.
    pub fn files_from_another_ca(&self, service: &str) -> anyhow::Result<TlsFiles> {
        let rogue = DevCa::generate("Some other CA")?;
        let issued = rogue.issue(&identity(service))?;
        self.write_files(
            &format!("rogue-{service}"),
            &issued.cert_pem,
            &issued.key_pem,
        )
    }

    /// Files for `service` from the trusted CA that also name `dns_names`: a certificate
    /// that a check of DNS names alone would take for another service.
    pub fn files_also_naming(&self, service: &str, dns_names: &[&str]) -> anyhow::Result<TlsFiles> {
        let issued = self
            .ca()?
            .issue_with_dns_names(&identity(service), dns_names)?;
        self.write_files(
            &format!("also-naming-{service}"),
            &issued.cert_pem,
            &issued.key_pem,
        )
    }

    fn ca(&self) -> anyhow::Result<DevCa> {
        let ca_dir = self.dir.path();
        Ok(DevCa::from_pem(
            &std::fs::read_to_string(ca_dir.join("ca.pem"))?,
            &std::fs::read_to_string(ca_dir.join("ca.key"))?,
        )?)
    }

    /// Files for `service` from the trusted CA whose certificate expired yesterday.
    pub fn expired_files(&self, service: &str) -> anyhow::Result<TlsFiles> {
        let now = OffsetDateTime::now_utc();
        let issued = self.ca()?.issue_valid_between(
            &identity(service),
            now - Duration::days(30),
            now - Duration::days(1),
        )?;
        self.write_files(
            &format!("expired-{service}"),
            &issued.cert_pem,
            &issued.key_pem,
        )
    }

    fn write_files(&self, stem: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<TlsFiles> {
        let cert_file = self.dir.path().join(format!("{stem}.pem"));
        let key_file = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&cert_file, cert_pem)?;
        std::fs::write(&key_file, key_pem)?;
        Ok(TlsFiles {
            ca_file: self.dir.path().join("ca.pem"),
            cert_file,
            key_file,
        })
    }

    /// A connected mutual-TLS channel to `addr` presenting `files`, checking the server
    /// is `token-stash`.
    pub async fn channel(
        &self,
        files: &TlsFiles,
        addr: std::net::SocketAddr,
    ) -> anyhow::Result<Channel> {
        self.channel_to(files, addr, "token-stash").await
    }

    /// A connected mutual-TLS channel to `addr`, accepting only a server that proves it is
    /// `service`.
    pub async fn channel_to(
        &self,
        files: &TlsFiles,
        addr: std::net::SocketAddr,
        service: &str,
    ) -> anyhow::Result<Channel> {
        let connector = files.connector_to(&identity(service))?;
        Ok(connector
            .endpoint(&format!("https://{addr}"))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .connect_with_connector(connector)
            .await?)
    }

    /// The path of the CA certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

fn identity(service: &str) -> ServiceIdentity {
    ServiceIdentity::parse(service).unwrap_or_else(|e| panic!("test identity {service:?}: {e}"))
}
