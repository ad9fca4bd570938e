use std::path::PathBuf;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::MtlsError;

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

    /// Client settings presenting this service's certificate and trusting only the CA.
    /// `server_name` is the name checked against the server's certificate.
    pub fn client_config(&self, server_name: &str) -> Result<ClientTlsConfig, MtlsError> {
        let (identity, ca) = self.load()?;
        Ok(ClientTlsConfig::new()
            .ca_certificate(ca)
            .identity(identity)
            .domain_name(server_name))
    }

    fn load(&self) -> Result<(Identity, Certificate), MtlsError> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| MtlsError::ReadFile {
                path: path.clone(),
                source,
            })
        };
        let identity = Identity::from_pem(read(&self.cert_file)?, read(&self.key_file)?);
        let ca = Certificate::from_pem(read(&self.ca_file)?);
        Ok((identity, ca))
    }
}
