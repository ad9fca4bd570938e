use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::MtlsError;

/// The URI prefix of every Tessera identity.
pub const SPIFFE_PREFIX: &str = "spiffe://tessera/";

/// The identity of a Tessera service, e.g. `token-stash`, carried in certificates as the
/// URI SAN `spiffe://tessera/token-stash`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceIdentity(String);

impl ServiceIdentity {
    /// The service name, e.g. `token-stash`.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The token stash's identity.
    pub fn token_stash() -> Self {
        ServiceIdentity("token-stash".to_owned())
    }

    /// The session service's identity.
    pub fn session_jwt() -> Self {
        ServiceIdentity("session-jwt".to_owned())
    }

    /// The login service's identity.
    pub fn login() -> Self {
        ServiceIdentity("login".to_owned())
    }

    /// The audit service's identity.
    pub fn audit() -> Self {
        ServiceIdentity("audit".to_owned())
    }

    /// The full URI, e.g. `spiffe://tessera/token-stash`.
    pub fn uri(&self) -> String {
        format!("{SPIFFE_PREFIX}{}", self.0)
    }

    /// Parses either a bare service name or a full `spiffe://tessera/…` URI.
    pub fn parse(text: &str) -> Result<Self, MtlsError> {
        let name = text.strip_prefix(SPIFFE_PREFIX).unwrap_or(text);
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(ServiceIdentity(name.to_owned()))
        } else {
            Err(MtlsError::InvalidServiceName(text.to_owned()))
        }
    }
}

impl FromStr for ServiceIdentity {
    type Err = MtlsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceIdentity::parse(s)
    }
}

impl fmt::Display for ServiceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

impl<'de> serde::Deserialize<'de> for ServiceIdentity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ServiceIdentity::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ServiceIdentity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The Tessera identity of the peer that sent `request`, read from the URI SAN of its
/// client certificate. TLS has already checked the certificate chains to the Tessera CA
/// and is within its validity period; this only reads who it names.
pub fn peer_identity<T>(request: &tonic::Request<T>) -> Result<ServiceIdentity, MtlsError> {
    let certs = request.peer_certs().ok_or(MtlsError::NoPeerCertificate)?;
    let leaf = certs.first().ok_or(MtlsError::NoPeerCertificate)?;
    identity_of_certificate(leaf.as_ref())
}

/// The Tessera identity named by a DER certificate's URI SAN.
pub fn identity_of_certificate(der: &[u8]) -> Result<ServiceIdentity, MtlsError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| MtlsError::Certificate(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| MtlsError::Certificate(e.to_string()))?
        .ok_or(MtlsError::NoIdentity)?;
    san.value
        .general_names
        .iter()
        .find_map(|name| match name {
            GeneralName::URI(uri) if uri.starts_with(SPIFFE_PREFIX) => {
                ServiceIdentity::parse(uri).ok()
            }
            _ => None,
        })
        .ok_or(MtlsError::NoIdentity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_names_and_uris_alike() {
        let bare = ServiceIdentity::parse("token-stash").expect("bare name");
        let uri = ServiceIdentity::parse("spiffe://tessera/token-stash").expect("uri");
        assert_eq!(bare, uri);
        assert_eq!(bare.uri(), "spiffe://tessera/token-stash");
    }

    #[test]
    fn rejects_names_that_cannot_be_identities() {
        for bad in ["", "Token", "a/b", "spiffe://other/x", "with space"] {
            assert!(ServiceIdentity::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
