use std::path::PathBuf;

/// What can go wrong setting up mutual TLS or establishing a caller's identity.
#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}; run `just certs` to create the dev certificates, or fix the path in the [tls] section")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key file could not be written.
    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation or parsing failed.
    #[error("certificate error: {0}")]
    Certificate(String),
    /// A service name is not usable in an identity.
    #[error("invalid service name {0:?}: use 1-63 lowercase letters, digits and '-'")]
    InvalidServiceName(String),
    /// The caller presented no client certificate.
    #[error("no client certificate was presented; connect with mutual TLS using a certificate from the Tessera CA")]
    NoPeerCertificate,
    /// A service URL cannot be used for a mutual-TLS call.
    #[error("invalid service url {0}")]
    Url(String),
    /// The caller's certificate carries no Tessera identity.
    #[error("the client certificate has no `spiffe://tessera/<service>` URI SAN; issue it from the Tessera CA with the service's identity")]
    NoIdentity,
}

impl MtlsError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            MtlsError::ReadFile { .. } => "mtls.read_file",
            MtlsError::WriteFile { .. } => "mtls.write_file",
            MtlsError::Certificate(_) => "mtls.certificate",
            MtlsError::InvalidServiceName(_) => "mtls.invalid_service_name",
            MtlsError::NoPeerCertificate => "mtls.no_peer_certificate",
            MtlsError::NoIdentity => "mtls.no_identity",
            MtlsError::Url(_) => "mtls.url",
        }
    }
}

impl From<rcgen::Error> for MtlsError {
    fn from(err: rcgen::Error) -> Self {
        MtlsError::Certificate(err.to_string())
    }
}
