use std::path::PathBuf;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::{DevPki, MtlsError, ServiceConnector, ServiceIdentity};

/// The three files a service needs for mutual TLS.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA certificate peers must chain to (PEM).
    pub ca_file: PathBuf,
    /// This service's certificate (PEM).
    pub cert_file: PathBuf,
    /// This service's private key (PEM). Keep it readable by the service only.
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// Server settings that demand a client certificate chaining to the CA.
    pub fn server_config(&self) -> Result<ServerTlsConfig, MtlsError> {
        let (identity, ca) = self.load()?;
        Ok(ServerTlsConfig::new()
            .identity(identity)
            .client_ca_root(ca)
            .client_auth_optional(false))
    }

    /// A connector for calling `server`, presenting this service's certificate and
    /// accepting only a server certificate from the CA that names `server`'s identity.
    pub fn connector_to(&self, server: &ServiceIdentity) -> Result<ServiceConnector, MtlsError> {
        ServiceConnector::new(
            server.clone(),
            &read(&self.ca_file)?,
            &read(&self.cert_file)?,
            &read(&self.key_file)?,
        )
    }

    fn load(&self) -> Result<(Identity, Certificate), MtlsError> {
        let identity = Identity::from_pem(read(&self.cert_file)?, read(&self.key_file)?);
        let ca = Certificate::from_pem(read(&self.ca_file)?);
        Ok((identity, ca))
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, MtlsError> {
    std::fs::read(path).map_err(|source| MtlsError::ReadFile {
        path: path.clone(),
        source,
    })
}

/// The `[tls]` section every service's configuration has: either the three files, or,
/// only when asked for by name, a development PKI directory created on first use. A
/// configuration that names neither is refused, so a production service can never fall
/// into development certificates (and a CA key lying on its disk) by omission.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// The CA certificate peers must chain to.
    pub ca_file: Option<PathBuf>,
    /// This service's certificate.
    pub cert_file: Option<PathBuf>,
    /// This service's private key.
    pub key_file: Option<PathBuf>,
    /// For development only: a dev PKI created here on first use, used when the files
    /// are not set.
    pub dev_pki_dir: Option<PathBuf>,
}

impl TlsSettings {
    /// The files `identity` uses: the configured ones, or the dev PKI's (created if
    /// missing, with a warning that they are for development).
    pub fn resolve(&self, identity: &ServiceIdentity) -> Result<TlsFiles, MtlsError> {
        match (&self.ca_file, &self.cert_file, &self.key_file) {
            (Some(ca), Some(cert), Some(key)) => Ok(TlsFiles {
                ca_file: ca.clone(),
                cert_file: cert.clone(),
                key_file: key.clone(),
            }),
            (None, None, None) => {
                let Some(dir) = &self.dev_pki_dir else {
                    return Err(MtlsError::Certificate(
                        "no certificates are configured: set tls.ca_file, tls.cert_file and tls.key_file, or for local development only tls.dev_pki_dir (e.g. \".tessera/certs\") to create and use a development CA".into(),
                    ));
                };
                let pki = DevPki::ensure(dir)?;
                tracing::warn!(dir = %dir.display(), "using development certificates; set tls.ca_file, tls.cert_file and tls.key_file in production");
                Ok(pki.files_for(identity))
            }
            _ => Err(MtlsError::Certificate(
                "tls: set all of ca_file, cert_file and key_file, or none of them to use the dev PKI".into(),
            )),
        }
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn no_certificates_and_no_dev_pki_named_is_refused_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let settings = TlsSettings::default();
        let identity = ServiceIdentity::parse("login").expect("identity");
        let err = settings.resolve(&identity).expect_err("refused");
        assert!(err.to_string().contains("tls.dev_pki_dir"), "{err}");
        let dev = TlsSettings {
            dev_pki_dir: Some(dir.path().join("certs")),
            ..TlsSettings::default()
        };
        assert!(
            dev.resolve(&identity).is_ok(),
            "named explicitly, it is made"
        );
        assert!(dir.path().join("certs").exists());
    }
}
