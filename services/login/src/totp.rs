//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the
//! second factor when a user has enrolled. A code is accepted in the step before, at, or
//! after now (clock drift); the directory refuses a step already used.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

use crate::LoginError;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;

/// A new 160-bit secret, base32 as authenticator apps expect.
pub fn new_secret() -> Result<String, LoginError> {
    let mut secret = [0u8; 20];
    getrandom::fill(&mut secret).map_err(|e| LoginError::Crypto(format!("randomness: {e}")))?;
    Ok(data_encoding::BASE32_NOPAD.encode(&secret))
}

/// The `otpauth://` URI an authenticator app scans.
pub fn provisioning_uri(issuer: &str, account: &str, secret: &str) -> String {
    let mut uri =
        url::Url::parse("otpauth://totp/").unwrap_or_else(|_| unreachable!("a valid literal"));
    uri.set_path(&format!("/{issuer}:{account}"));
    uri.query_pairs_mut()
        .append_pair("secret", secret)
        .append_pair("issuer", issuer)
        .append_pair("algorithm", "SHA1")
        .append_pair("digits", "6")
        .append_pair("period", "30");
    uri.to_string()
}

/// The 6-digit code of `step`.
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    word % 1_000_000
}

/// The step `code` belongs to, if it is right for a step next to `unix_seconds`.
pub fn matching_step(secret_base32: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .ok()?;
    let now = unix_seconds / STEP_SECONDS;
    // Every candidate is computed and compared, so timing does not tell which matched.
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = format!("{:06}", code_at(&secret, step));
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 vectors (last six digits of the eight-digit codes).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59u64, 287_082u32),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
        ] {
            assert_eq!(code_at(secret, time / STEP_SECONDS), code, "t={time}");
        }
    }

    #[test]
    fn a_code_matches_its_own_and_neighbouring_steps_only() {
        let secret = new_secret().expect("secret");
        let raw = data_encoding::BASE32_NOPAD
            .decode(secret.as_bytes())
            .expect("b32");
        let now = 1_700_000_000;
        let step = now / STEP_SECONDS;
        let code = format!("{:06}", code_at(&raw, step));
        assert_eq!(matching_step(&secret, &code, now), Some(step));
        assert_eq!(
            matching_step(&secret, &code, now + STEP_SECONDS),
            Some(step)
        );
        assert_eq!(matching_step(&secret, &code, now + 3 * STEP_SECONDS), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }
}
