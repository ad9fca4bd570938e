//! Published keys in the JSON Web Key Set form, Ed25519 keys as RFC 8037 `OKP` keys.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// One key of a JWKS. Only Ed25519 `OKP` keys are ever used here; others (the RSA key
/// of RS256 ID tokens) are read so a set holding them parses, and are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `OKP` (or `RSA`).
    pub kty: String,
    /// `Ed25519`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crv: String,
    /// The public key, base64url.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
    /// An RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// An RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The key id tokens name.
    pub kid: String,
    /// `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

impl Jwk {
    /// The JWK of an Ed25519 public key.
    pub fn ed25519(kid: &str, key: &VerifyingKey) -> Self {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            n: None,
            e: None,
            kid: kid.into(),
            alg: Some("EdDSA".into()),
            key_use: Some("sig".into()),
        }
    }

    /// The Ed25519 key, if this is a well-formed Ed25519 signing key.
    pub fn ed25519_key(&self) -> Option<VerifyingKey> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return None;
        }
        if self.alg.as_deref().is_some_and(|alg| alg != "EdDSA")
            || self.key_use.as_deref().is_some_and(|u| u != "sig")
        {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(&self.x).ok()?;
        VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes.as_slice()).ok()?).ok()
    }
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The usable Ed25519 keys by `kid`; anything else in the set is skipped.
    pub(crate) fn ed25519_keys(&self) -> HashMap<String, VerifyingKey> {
        self.keys
            .iter()
            .filter_map(|jwk| Some((jwk.kid.clone(), jwk.ed25519_key()?)))
            .collect()
    }
}
