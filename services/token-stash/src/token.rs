//! The stash's domain types, each validated once at the edge.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::StashError;

/// Bytes of OS randomness in every token (128 bits).
const TOKEN_RANDOM_BYTES: usize = 16;
/// base64url characters those bytes encode to.
const TOKEN_RANDOM_CHARS: usize = 22;
/// The largest value a put may store.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The longest owner.
pub const MAX_OWNER_BYTES: usize = 256;
/// The longest namespace.
pub const MAX_NAMESPACE_BYTES: usize = 64;
/// The shortest time to live.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time to live.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest token accepted on input.
const MAX_TOKEN_CHARS: usize = 256;

/// The id of a datacenter, e.g. `dc1`: 1-32 lowercase letters, digits and `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatacenterId(String);

impl DatacenterId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for DatacenterId {
    type Error = StashError;
    fn try_from(text: &str) -> Result<Self, StashError> {
        let valid = !text.is_empty()
            && text.len() <= 32
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(DatacenterId(text.to_owned()))
        } else {
            Err(StashError::Config(format!(
                "datacenter id {text:?} is invalid: use 1-32 lowercase letters, digits and '-'"
            )))
        }
    }
}

impl fmt::Display for DatacenterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DatacenterId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DatacenterId::try_from(text.as_str()).map_err(serde::de::Error::custom)
    }
}

/// An opaque token, `<dc>.<base64url>`. Its text is a bearer secret: it is never logged
/// (its `Debug` shows only the datacenter) and never stored (the store keys on
/// [`TokenKey`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    text: String,
    dc_len: usize,
}

impl Token {
    /// A fresh token for datacenter `dc` with 128 bits from the operating system.
    pub fn mint(dc: &DatacenterId) -> Result<Self, StashError> {
        let mut random = [0u8; TOKEN_RANDOM_BYTES];
        getrandom::fill(&mut random)
            .map_err(|e| StashError::Storage(format!("operating system randomness failed: {e}")))?;
        let text = format!("{}.{}", dc.as_str(), URL_SAFE_NO_PAD.encode(random));
        Ok(Token {
            dc_len: dc.as_str().len(),
            text,
        })
    }

    /// The datacenter that minted this token.
    pub fn home(&self) -> &str {
        &self.text[..self.dc_len]
    }

    /// The token's text, to hand back to the caller that asked for it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The key the store files this token under.
    pub fn key(&self) -> TokenKey {
        TokenKey(Sha256::digest(self.text.as_bytes()).into())
    }
}

impl TryFrom<&str> for Token {
    type Error = StashError;
    fn try_from(text: &str) -> Result<Self, StashError> {
        if text.is_empty() {
            return Err(StashError::MalformedToken("it is empty"));
        }
        if text.len() > MAX_TOKEN_CHARS {
            return Err(StashError::MalformedToken("it is too long"));
        }
        let (dc, random) = text.split_once('.').ok_or(StashError::MalformedToken(
            "it has no '.' after the datacenter id",
        ))?;
        if DatacenterId::try_from(dc).is_err() {
            return Err(StashError::MalformedToken("its datacenter id is invalid"));
        }
        if random.len() < TOKEN_RANDOM_CHARS {
            return Err(StashError::MalformedToken("its random part is too short"));
        }
        if !random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(StashError::MalformedToken(
                "its random part is not base64url",
            ));
        }
        Ok(Token {
            text: text.to_owned(),
            dc_len: dc.len(),
        })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.…)", self.home())
    }
}

/// The SHA-256 of a token's text: what the store keys on. A dump of the store holds these,
/// which cannot be turned back into tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey(pub [u8; 32]);

impl TokenKey {
    /// The key as base64url text (for Redis key names).
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKey({}…)", &self.to_text()[..8])
    }
}

/// What kind of value an entry holds, e.g. `code` or `session`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Namespace {
    type Error = StashError;
    fn try_from(text: &str) -> Result<Self, StashError> {
        if text.is_empty() {
            return Err(StashError::invalid(
                "namespace",
                "is empty; name the kind of value, e.g. \"code\" or \"session\"",
            ));
        }
        if text.len() > MAX_NAMESPACE_BYTES {
            return Err(StashError::invalid(
                "namespace",
                format!(
                    "is {} bytes; the limit is {MAX_NAMESPACE_BYTES}",
                    text.len()
                ),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(StashError::invalid(
                "namespace",
                "contains control characters",
            ));
        }
        Ok(Namespace(text.to_owned()))
    }
}

/// Who an entry belongs to, e.g. a user id; entries with an owner can be listed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// The owner as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An optional owner: the empty string means none.
    pub fn optional(text: &str) -> Result<Option<Self>, StashError> {
        if text.is_empty() {
            Ok(None)
        } else {
            Owner::try_from(text).map(Some)
        }
    }
}

impl TryFrom<&str> for Owner {
    type Error = StashError;
    fn try_from(text: &str) -> Result<Self, StashError> {
        if text.is_empty() {
            return Err(StashError::invalid(
                "owner",
                "is empty; name the owner to list",
            ));
        }
        if text.len() > MAX_OWNER_BYTES {
            return Err(StashError::invalid(
                "owner",
                format!("is {} bytes; the limit is {MAX_OWNER_BYTES}", text.len()),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(StashError::invalid("owner", "contains control characters"));
        }
        Ok(Owner(text.to_owned()))
    }
}

/// A time to live between [`MIN_TTL`] and [`MAX_TTL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl(Duration);

impl Ttl {
    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl TryFrom<u32> for Ttl {
    type Error = StashError;
    fn try_from(seconds: u32) -> Result<Self, StashError> {
        let ttl = Duration::from_secs(u64::from(seconds));
        if ttl < MIN_TTL || ttl > MAX_TTL {
            return Err(StashError::invalid(
                "ttl_seconds",
                format!(
                    "is {seconds}; it must be from {} to {} seconds",
                    MIN_TTL.as_secs(),
                    MAX_TTL.as_secs()
                ),
            ));
        }
        Ok(Ttl(ttl))
    }
}

/// A value to store: checked against [`MAX_VALUE_BYTES`].
pub fn check_value(value: &[u8]) -> Result<(), StashError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StashError::invalid(
            "value",
            format!(
                "is {} bytes; the limit is {MAX_VALUE_BYTES} (64 KiB): store a reference instead",
                value.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc() -> DatacenterId {
        DatacenterId::try_from("dc-a").expect("valid dc")
    }

    #[test]
    fn minted_tokens_parse_back_and_name_their_home() {
        let token = Token::mint(&dc()).expect("minted");
        let parsed = Token::try_from(token.expose()).expect("parses");
        assert_eq!(parsed.home(), "dc-a");
        assert_eq!(parsed.key(), token.key());
        assert!(token.expose().len() >= "dc-a.".len() + TOKEN_RANDOM_CHARS);
    }

    #[test]
    fn minted_tokens_differ() {
        let a = Token::mint(&dc()).expect("minted");
        let b = Token::mint(&dc()).expect("minted");
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "nodot",
            "dc-a.short",
            "DC.aaaaaaaaaaaaaaaaaaaaaaaa",
            "dc-a.aaaaaaaaaaaaaaaaaaaaaa!a",
        ] {
            assert!(
                matches!(Token::try_from(bad), Err(StashError::MalformedToken(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret_part() {
        let token = Token::mint(&dc()).expect("minted");
        let shown = format!("{token:?}");
        let secret = token
            .expose()
            .split_once('.')
            .map(|(_, r)| r)
            .unwrap_or_default();
        assert!(!shown.contains(secret));
    }

    #[test]
    fn ttl_bounds_are_one_second_to_a_day() {
        assert!(Ttl::try_from(0).is_err());
        assert!(Ttl::try_from(1).is_ok());
        assert!(Ttl::try_from(86_400).is_ok());
        assert!(Ttl::try_from(86_401).is_err());
    }

    #[test]
    fn value_limit_is_64_kib() {
        assert!(check_value(&vec![0; MAX_VALUE_BYTES]).is_ok());
        assert!(check_value(&vec![0; MAX_VALUE_BYTES + 1]).is_err());
    }
}
