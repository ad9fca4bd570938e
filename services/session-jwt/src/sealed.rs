//! Sealed refresh tokens: `<home>.<base64url(nonce ‖ XChaCha20-Poly1305(content))>`.
//!
//! A refresh token carries what its exchange needs (a [`pb::SealedRefresh`]), so a refresh
//! reads nothing before its one commit. The content is encrypted, not only signed: sites
//! keep refresh tokens opaque, and nothing in them is theirs to read. The home datacenter
//! is the additional data, so a token cannot be moved to another home. The key is
//! derived from the session derivation secret, which every replica and peer datacenter
//! already shares; whoever holds that secret can mint refresh tokens for live sessions,
//! so it is guarded like the signing keys.
//!
//! Random 192-bit nonces: a long-lived key seals billions of tokens without a nonce
//! ever repeating by chance.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use prost::Message;
use tessera_proto::session::v1 as pb;

use crate::derive::Derivation;
use crate::SessionError;

const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// The longest refresh token accepted: a user id, an audience and a record token at their
/// limits, sealed, with the home prefix. Anything longer is refused before any work.
pub const MAX_REFRESH_TOKEN_BYTES: usize = 1024;

/// Seals and opens refresh tokens.
#[derive(Clone)]
pub struct RefreshSealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for RefreshSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshSealer(…)")
    }
}

/// What a presented refresh token turned out to be.
#[derive(Debug)]
pub enum Opened {
    /// A sealed token this deployment made.
    Sealed(pb::SealedRefresh),
    /// The shape of a refresh token minted before tokens were sealed, whose grant is
    /// stored.
    Stored,
    /// Neither: forged, tampered with, sealed under another secret, or garbage.
    Unknown,
}

impl RefreshSealer {
    /// The sealer keyed from `derivation`'s shared secret.
    pub fn new(derivation: &Derivation) -> Self {
        let key = derivation.key("refresh-token-seal");
        RefreshSealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// A refresh token homed at `home` carrying `content`.
    pub fn seal(&self, home: &str, content: &pb::SealedRefresh) -> Result<String, SessionError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce)
            .map_err(|e| SessionError::Keys(format!("operating system randomness: {e}")))?;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &content.encode_to_vec(),
                    aad: home.as_bytes(),
                },
            )
            .map_err(|_| SessionError::Keys("sealing a refresh token failed".into()))?;
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!("{home}.{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// What `refresh_token` is. Only tokens this deployment sealed open; nothing about a
    /// failure is told apart, so a forger learns nothing from the answer.
    pub fn open(&self, refresh_token: &str) -> Opened {
        let Some((home, body)) = refresh_token.split_once('.') else {
            return Opened::Stored;
        };
        // Unsealed tokens were 24 random bytes: 32 base64url characters.
        if body.len() == 32 {
            return Opened::Stored;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(body) else {
            return Opened::Unknown;
        };
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Opened::Unknown;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let Ok(plain) = self.cipher.decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: home.as_bytes(),
            },
        ) else {
            return Opened::Unknown;
        };
        match pb::SealedRefresh::decode(plain.as_slice()) {
            Ok(content) if content.record.is_some() => Opened::Sealed(content),
            _ => Opened::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(secret: u8) -> RefreshSealer {
        RefreshSealer::new(&Derivation::new([secret; 32], "dc-a"))
    }

    fn content() -> pb::SealedRefresh {
        pb::SealedRefresh {
            record: Some(pb::SessionRecord {
                session_id: "c2Vzc2lvbi1pZA".into(),
                user_id: "alice".into(),
                audience: "wiki-a".into(),
                created_at_unix_ms: 1_790_000_000_000,
                expires_at_unix_ms: 1_790_043_200_000,
                ..Default::default()
            }),
            generation: 3,
            idle_until_unix_ms: 1_790_001_800_000,
            session_record: String::new(),
        }
    }

    fn opened(sealer: &RefreshSealer, token: &str) -> Option<pb::SealedRefresh> {
        match sealer.open(token) {
            Opened::Sealed(content) => Some(content),
            _ => None,
        }
    }

    #[test]
    fn a_sealed_token_opens_to_its_content_and_hides_it() {
        let sealer = keyed(1);
        let token = sealer.seal("dc-a", &content()).expect("sealed");
        assert!(token.starts_with("dc-a."), "{token}");
        assert!(
            !token.contains("alice") && !token.contains("wiki"),
            "{token}"
        );
        assert_eq!(opened(&sealer, &token), Some(content()));
        let again = sealer.seal("dc-a", &content()).expect("sealed");
        assert_ne!(
            token, again,
            "every token is new, even for the same content"
        );
    }

    #[test]
    fn a_token_tampered_with_rehomed_or_sealed_elsewhere_does_not_open() {
        let sealer = keyed(1);
        let token = sealer.seal("dc-a", &content()).expect("sealed");
        let rehomed = token.replacen("dc-a.", "dc-b.", 1);
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        for bad in [
            rehomed.as_str(),
            flipped.as_str(),
            &token[..token.len() - 1],
            "dc-a.%%%%",
            "dc-a.",
        ] {
            assert!(matches!(sealer.open(bad), Opened::Unknown), "{bad}");
        }
        assert!(matches!(keyed(2).open(&token), Opened::Unknown));
    }

    #[test]
    fn tokens_of_the_unsealed_shape_are_looked_up_in_the_stash() {
        let sealer = keyed(1);
        for stored in ["dc-a.b2xkZXItbGF5b3V0LXJlZnJlc2gtdG9r", "no-home-at-all"] {
            assert!(matches!(sealer.open(stored), Opened::Stored), "{stored}");
        }
    }

    #[test]
    fn a_typical_token_stays_small_and_the_largest_fits_the_limit() {
        let sealer = keyed(1);
        let typical = sealer.seal("dc-a", &content()).expect("sealed");
        assert!(typical.len() <= 160, "{} bytes", typical.len());
        let mut largest = content();
        let record = largest.record.as_mut().expect("record");
        record.user_id = "u".repeat(256);
        record.audience = "a".repeat(128);
        record.parent_session_id = "p".repeat(12);
        largest.session_record = format!("dc-a.{}", "r".repeat(43));
        largest.generation = u32::MAX;
        let token = sealer.seal(&"d".repeat(32), &largest).expect("sealed");
        assert!(
            token.len() <= MAX_REFRESH_TOKEN_BYTES,
            "{} bytes",
            token.len()
        );
    }
}
