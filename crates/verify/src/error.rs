use std::fmt;

/// Why a session token was refused. Each variant has a stable code ([`VerifyError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS: wrong number of parts, bad base64url, bad JSON, too large.
    #[error("the session token is malformed ({0}); sign in again")]
    Malformed(&'static str),
    /// Signed with anything but EdDSA (including `none` and HMAC or RSA algorithms).
    #[error("the session token uses algorithm {0:?}; only EdDSA is accepted; sign in again")]
    UnsupportedAlg(String),
    /// No published key has the token's `kid`.
    #[error("the session token was signed with key {kid:?}, which is not published; refresh the keys, or sign in again")]
    UnknownKey {
        /// The `kid` the token names.
        kid: String,
    },
    /// The signature does not match the token.
    #[error("the session token's signature is not valid; sign in again")]
    BadSignature,
    /// Past its soft expiry by longer than a refresh may bridge.
    #[error("the session has expired; sign in again")]
    Expired,
    /// Past its soft expiry: the site should refresh it.
    #[error("the session token needs refreshing; refresh it through /token")]
    SoftExpired,
    /// Issued in the future (beyond the allowed clock skew).
    #[error("the session token is not valid yet (issued in the future); check the clocks")]
    NotYetValid,
    /// Issued for another site.
    #[error("the session token is for {actual:?}, not {expected:?}; sign in to this site")]
    WrongAudience {
        /// This site.
        expected: String,
        /// The token's `aud`.
        actual: String,
    },
    /// A token of another kind (`typ`): an ID token or a logout token is never a session.
    #[error(
        "the token is of type {actual:?}, not {expected:?}; present the token meant for this use"
    )]
    WrongType {
        /// The type expected here.
        expected: &'static str,
        /// The token's `typ`.
        actual: String,
    },
    /// `exp` is not after `iat`, or further from it than any session may live.
    #[error("the session token claims a validity no session has (exp not after iat, or too far after it); sign in again")]
    ImplausibleLifetime,
    /// Names a critical extension (`crit`), which Tessera does not understand.
    #[error("the token names critical extensions (crit) that are not understood; sign in again")]
    CriticalExtension,
    /// The session, the user's sessions, or all sessions were revoked.
    #[error("the session was ended ({0}); sign in again")]
    Revoked(crate::RevokedScope),
}

impl VerifyError {
    /// The stable code: `malformed`, `unsupported_alg`, `unknown_key`, `bad_signature`,
    /// `expired`, `soft_expired`, `not_yet_valid`, `wrong_audience`, `wrong_type`,
    /// `critical_extension`, `implausible_lifetime` or
    /// `revoked`.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "malformed",
            VerifyError::UnsupportedAlg(_) => "unsupported_alg",
            VerifyError::UnknownKey { .. } => "unknown_key",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Expired => "expired",
            VerifyError::SoftExpired => "soft_expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::WrongAudience { .. } => "wrong_audience",
            VerifyError::WrongType { .. } => "wrong_type",
            VerifyError::CriticalExtension => "critical_extension",
            VerifyError::ImplausibleLifetime => "implausible_lifetime",
            VerifyError::Revoked(_) => "revoked",
        }
    }
}

/// Who and where a refused token was for, as far as its claims say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The token's `sub`.
    pub user_id: String,
    /// The token's `name`, if present.
    pub user_name: Option<String>,
    /// The token's `aud`: the site or provider it was issued for.
    pub audience: String,
}

/// A refused token, with who and where as far as the token says.
///
/// The subject comes from the token's claims when they could be read; for
/// `bad_signature` and `unknown_key` it is what the token *claims*, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub error: VerifyError,
    /// For whom and where, if the claims could be read. Boxed: rejections are returned
    /// on the hot path and should stay small.
    pub subject: Option<Box<Subject>>,
}

impl Rejection {
    pub(crate) fn bare(error: VerifyError) -> Self {
        Rejection {
            error,
            subject: None,
        }
    }

    pub(crate) fn about(error: VerifyError, claims: &crate::Claims) -> Self {
        Rejection {
            error,
            subject: Some(Box::new(Subject {
                user_id: claims.sub.chars().take(256).collect(),
                user_name: claims.name.as_ref().map(|n| n.chars().take(256).collect()),
                audience: claims.aud.chars().take(256).collect(),
            })),
        }
    }

    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        self.error.code()
    }

    /// The user id the token names, if readable.
    pub fn user_id(&self) -> Option<&str> {
        self.subject.as_ref().map(|s| s.user_id.as_str())
    }

    /// The user's display name, if the token carries it.
    pub fn user_name(&self) -> Option<&str> {
        self.subject.as_ref().and_then(|s| s.user_name.as_deref())
    }

    /// The site or provider the token was issued for, if readable.
    pub fn audience(&self) -> Option<&str> {
        self.subject.as_ref().map(|s| s.audience.as_str())
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session token rejected ({})", self.code())?;
        match (self.user_id(), self.user_name()) {
            (Some(id), Some(name)) => write!(f, " for user {id} ({name})")?,
            (Some(id), None) => write!(f, " for user {id}")?,
            _ => write!(f, " for an unknown user")?,
        }
        if let Some(audience) = self.audience() {
            write!(f, " at {audience}")?;
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for Rejection {}
