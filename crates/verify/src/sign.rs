//! Minting session tokens (feature `sign`): used by the session service only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

use crate::claims::encode_part;
use crate::{Claims, Header, Jwk};

/// An Ed25519 signing key with its key id.
pub struct SessionSigner {
    kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for SessionSigner {
    // The private key never appears in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SessionSigner {
    /// A signer from a 32-byte Ed25519 seed. The key id is derived from the public key:
    /// four base64url characters of its SHA-256, short because every cookie carries it.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let digest = Sha256::digest(key.verifying_key().as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..3]);
        SessionSigner { kid, key }
    }

    /// The key id tokens carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as published in the JWKS.
    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(&self.kid, &self.key.verifying_key())
    }

    /// The compact JWS of session `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_json(crate::SESSION_TYP, claims)
    }

    /// The compact JWS of any claims of type `typ` (an ID token, a logout token).
    pub fn sign_json<T: serde::Serialize>(&self, typ: &str, claims: &T) -> String {
        let header = Header {
            alg: "EdDSA".into(),
            kid: self.kid.clone(),
            typ: typ.to_owned(),
            crit: None,
        };
        // Serialising these plain structs cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let claims = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = encode_part(&header);
        token.push('.');
        token.push_str(&encode_part(&claims));
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&encode_part(&signature.to_bytes()));
        token
    }
}
