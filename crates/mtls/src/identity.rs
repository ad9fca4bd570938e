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
    KNOWN_PEERS.identity_of(leaf.as_ref())
}

/// Certificates already read, so each call need not parse its caller's certificate again
/// (a twentieth of a refresh's instructions): a certificate's bytes always name the same
/// identity. Bounded: a rotation's new certificates start it afresh.
static KNOWN_PEERS: KnownPeers = KnownPeers::new();

const KNOWN_PEERS_MAX: usize = 256;

struct KnownPeers(std::sync::RwLock<Option<std::collections::HashMap<Vec<u8>, ServiceIdentity>>>);

impl KnownPeers {
    const fn new() -> Self {
        KnownPeers(std::sync::RwLock::new(None))
    }

    fn identity_of(&self, der: &[u8]) -> Result<ServiceIdentity, MtlsError> {
        let known = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|known| known.get(der).cloned());
        if let Some(identity) = known {
            return Ok(identity);
        }
        let identity = identity_of_certificate(der)?;
        let mut known = self.0.write().unwrap_or_else(|e| e.into_inner());
        let known = known.get_or_insert_with(Default::default);
        if known.len() >= KNOWN_PEERS_MAX {
            known.clear();
        }
        known.insert(der.to_vec(), identity.clone());
        Ok(identity)
    }
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
    fn a_known_certificate_names_the_identity_it_named_when_first_read() {
        let known = KnownPeers::new();
        for name in ["token-stash", "login", "token-stash"] {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params.subject_alt_names = vec![rcgen::SanType::URI(
                format!("{SPIFFE_PREFIX}{name}").try_into().expect("uri"),
            )];
            let der = params.self_signed(&key).expect("cert").der().to_vec();
            for _ in 0..2 {
                assert_eq!(known.identity_of(&der).expect("identity").name(), name);
            }
        }
        assert!(matches!(
            known.identity_of(b"not a certificate"),
            Err(MtlsError::Certificate(_))
        ));
        assert_eq!(
            known.0.read().expect("lock").as_ref().map(|k| k.len()),
            Some(3),
            "each certificate read once, a refused one not kept"
        );
    }

    #[test]
    fn rejects_names_that_cannot_be_identities() {
        for bad in ["", "Token", "a/b", "spiffe://other/x", "with space"] {
            assert!(ServiceIdentity::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
