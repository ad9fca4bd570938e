//! The token's parts: header and claims, and how a token string is taken apart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{Rejection, VerifyError};

/// The largest token accepted; anything longer is refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// `typ` of a session token (RFC 8725 section 3.11: explicit typing, so a token of
/// another kind can never pass as one).
pub const SESSION_TYP: &str = "ts+jwt";
/// `typ` of an OpenID Connect ID token.
pub const ID_TOKEN_TYP: &str = "JWT";
/// `typ` of a back-channel logout token (Back-Channel Logout 1.0 section 2.4).
pub const LOGOUT_TYP: &str = "logout+jwt";

/// The JOSE header. `alg`, `kid`, `typ` and `crit` are read; other members are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Must be `EdDSA`.
    pub alg: String,
    /// The id of the signing key.
    pub kid: String,
    /// What the token is: [`SESSION_TYP`], [`ID_TOKEN_TYP`] or [`LOGOUT_TYP`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub typ: String,
    /// Extensions the verifier must understand (RFC 7515 section 4.1.11). Tessera
    /// understands none, so any token naming one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<serde_json::Value>,
}

impl Header {
    /// Refuses a header that names critical extensions or is not of `expected` type.
    pub(crate) fn check(&self, expected: &'static str) -> Result<(), VerifyError> {
        if self.crit.is_some() {
            return Err(VerifyError::CriticalExtension);
        }
        if !self.typ.eq_ignore_ascii_case(expected) {
            return Err(VerifyError::WrongType {
                expected,
                actual: self.typ.chars().take(32).collect(),
            });
        }
        Ok(())
    }
}

/// The claims of a session token. `exp` is the *soft* expiry: past it a site refreshes.
///
/// There is no `iss`: session tokens are verified only with the session service's own
/// keys (published apart from every other key), so the key names the issuer, and the
/// bytes go to `typ` instead, within the 300-byte budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audience: the site (client id), or the login domain for the central session.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The session id.
    pub sid: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Soft expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// The user's display name, when the issuer includes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A token taken apart, not yet verified.
#[derive(Debug)]
pub(crate) struct Decoded<'t> {
    pub header: Header,
    pub claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t str,
    pub signature: [u8; 64],
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed(what))
}

/// Splits and decodes `token`. Claims are read even when the header is refused, so that
/// the rejection can name the user and site.
pub(crate) fn decode(token: &str) -> Result<Decoded<'_>, Box<Rejection>> {
    let bare = |e| Box::new(Rejection::bare(e));
    if token.len() > MAX_TOKEN_BYTES {
        return Err(bare(VerifyError::Malformed("token too long")));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bare(VerifyError::Malformed(
            "not three dot-separated parts",
        )));
    };
    let claims: Result<Claims, VerifyError> =
        b64(payload, "payload is not base64url").and_then(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|_| VerifyError::Malformed("payload is not valid claims JSON"))
        });
    let with_claims = |error: VerifyError| match &claims {
        Ok(claims) => Rejection::about(error, claims),
        Err(_) => Rejection::bare(error),
    };

    let header: Header = b64(header, "header is not base64url")
        .and_then(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|_| VerifyError::Malformed("header is not valid JSON"))
        })
        .map_err(|e| Box::new(with_claims(e)))?;
    if header.alg != "EdDSA" {
        return Err(Box::new(with_claims(VerifyError::UnsupportedAlg(
            header.alg,
        ))));
    }
    header
        .check(SESSION_TYP)
        .map_err(|e| Box::new(with_claims(e)))?;
    let signature = b64(signature, "signature is not base64url")
        .and_then(|bytes| {
            <[u8; 64]>::try_from(bytes.as_slice())
                .map_err(|_| VerifyError::Malformed("signature is not 64 bytes"))
        })
        .map_err(|e| Box::new(with_claims(e)))?;
    let claims = claims.map_err(|e| Box::new(Rejection::bare(e)))?;
    let signing_input = &token[..token.len() - signature_len(token)];
    Ok(Decoded {
        header,
        claims,
        signing_input,
        signature,
    })
}

/// The length of `.signature` at the end of `token`.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map(|dot| token.len() - dot).unwrap_or(0)
}

/// base64url without padding, as JWS uses.
#[cfg(feature = "sign")]
pub(crate) fn encode_part(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
