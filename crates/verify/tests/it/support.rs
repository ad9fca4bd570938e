use tessera_clock::UnixMillis;
use tessera_verify::{Claims, Jwks, SessionSigner, Verifier, VerifierConfig};

pub const SITE: &str = "wiki-a";
/// 2026-11-23T12:00:00Z, in seconds.
pub const NOW_SECS: u64 = 1_795_953_600;

pub fn now() -> UnixMillis {
    UnixMillis(NOW_SECS * 1000)
}

pub fn at(seconds_from_now: i64) -> UnixMillis {
    UnixMillis((NOW_SECS as i64 + seconds_from_now) as u64 * 1000)
}

pub fn signer(seed: u8) -> SessionSigner {
    SessionSigner::from_seed(&[seed; 32])
}

pub fn claims(sub: &str, sid: &str) -> Claims {
    Claims {
        aud: SITE.into(),
        sub: sub.into(),
        sid: sid.into(),
        iat: NOW_SECS,
        exp: NOW_SECS + 300,
        name: None,
    }
}

/// A verifier for [`SITE`] that knows the keys of `signers`.
pub fn verifier(signers: &[&SessionSigner]) -> Verifier {
    let verifier = Verifier::new(VerifierConfig::new(SITE));
    verifier.set_keys(&Jwks {
        keys: signers.iter().map(|s| s.jwk()).collect(),
    });
    verifier
}
