//! Other Ed25519-signed JSON the login service issues to sites (OpenID Connect ID tokens
//! and back-channel logout tokens): the signature is checked here, the claims by the
//! caller, who knows what they must say.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signature;
use serde::de::DeserializeOwned;

use crate::{Header, Jwks, VerifyError, MAX_TOKEN_BYTES};

/// The claims of `token` if it is an `EdDSA` compact JWS of type `typ` (e.g.
/// [`crate::ID_TOKEN_TYP`], [`crate::LOGOUT_TYP`]) naming no critical extension, signed
/// by a key of `jwks`. Issuer, audience and expiry are the caller's to check.
pub fn verify_signed_json<T: DeserializeOwned>(
    token: &str,
    typ: &'static str,
    jwks: &Jwks,
) -> Result<T, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed("not three dot-separated parts"));
    };
    let decode = |part: &str, what: &'static str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| VerifyError::Malformed(what))
    };
    let header: Header = serde_json::from_slice(&decode(header, "header is not base64url")?)
        .map_err(|_| VerifyError::Malformed("header is not valid JSON"))?;
    if header.alg != "EdDSA" {
        return Err(VerifyError::UnsupportedAlg(
            header.alg.chars().take(32).collect(),
        ));
    }
    header.check(typ)?;
    let signature = <[u8; 64]>::try_from(decode(signature, "signature is not base64url")?)
        .map_err(|_| VerifyError::Malformed("signature is not 64 bytes"))?;
    let key = jwks
        .ed25519_keys()
        .remove(&header.kid)
        .ok_or_else(|| VerifyError::UnknownKey {
            kid: header.kid.chars().take(64).collect(),
        })?;
    let signing_input = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
    key.verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| VerifyError::BadSignature)?;
    serde_json::from_slice(&decode(payload, "payload is not base64url")?)
        .map_err(|_| VerifyError::Malformed("payload is not the expected claims"))
}
