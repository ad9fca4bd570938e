//! Local verification of Tessera session JWTs: what a site embeds.
//!
//! A session token is a compact JWS signed with Ed25519 (`alg` `EdDSA`), small enough for
//! a cookie (at most 300 bytes with 20-character user and site names). A site verifies it
//! on every request with no network call: the signature against the published keys
//! (JWKS, RFC 8037 `OKP` keys), the token type (`typ`) and audience, the soft expiry, and the
//! revocations it has heard of. Every rejection carries a stable code
//! ([`VerifyError::code`]) and, where the token names them, the user and the site, so a
//! log line says what failed, for whom and where.
//!
//! The key type is never chosen by the token: anything but `EdDSA` is refused before a
//! key is looked up.

mod cache;
mod claims;
pub mod cookie;
mod error;
#[cfg(feature = "grpc")]
pub mod grpc;
mod jwks;
mod jws;
mod revocation;
#[cfg(feature = "sign")]
mod sign;
mod site;
mod verifier;

pub use claims::{Claims, Header, ID_TOKEN_TYP, LOGOUT_TYP, MAX_TOKEN_BYTES, SESSION_TYP};
pub use error::{Rejection, Subject, VerifyError};
pub use jwks::{Jwk, Jwks};
pub use jws::verify_signed_json;
pub use revocation::{RevocationEvent, RevocationState, RevokedScope};
#[cfg(feature = "sign")]
pub use sign::SessionSigner;
pub use site::{KeySource, SiteVerifier};
pub use verifier::{VerifiedSession, Verifier, VerifierConfig};
