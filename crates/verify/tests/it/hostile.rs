//! Tokens made to fool the verifier: each is refused with the right code, none panics.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tessera_verify::{SessionSigner, VerifyError};

use crate::support::{claims, now, signer, verifier};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn forged(header_json: &str, signer: &SessionSigner, signature: &[u8]) -> String {
    let good = signer.sign(&claims("user-1", "sid-1"));
    let payload = good.split('.').nth(1).unwrap_or_default();
    format!(
        "{}.{payload}.{}",
        b64(header_json.as_bytes()),
        b64(signature)
    )
}

fn code_of(token: &str, signers: &[&SessionSigner]) -> &'static str {
    verifier(signers)
        .verify(token, now())
        .expect_err("must be refused")
        .code()
}

#[test]
fn alg_none_is_refused_before_any_key_is_used() {
    let signer = signer(1);
    let kid = signer.kid().to_owned();
    assert_eq!(
        code_of(
            &forged(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#), &signer, b""),
            &[&signer]
        ),
        "unsupported_alg"
    );
    let rejection = verifier(&[&signer])
        .verify(&forged(r#"{"alg":"none","kid":"x"}"#, &signer, b""), now())
        .expect_err("none");
    assert_eq!(
        rejection.user_id(),
        Some("user-1"),
        "reported with its claimed subject"
    );
}

#[test]
fn hmac_and_rsa_algorithms_are_refused_even_with_the_public_key_as_secret() {
    let signer = signer(1);
    let kid = signer.kid().to_owned();
    // The classic confusion: HS256 keyed with the public key. Refused by algorithm alone.
    let public_key_as_mac = signer.jwk().x.into_bytes();
    for alg in ["HS256", "HS512", "RS256", "ES256", "PS256", "EdDSA "] {
        let token = forged(
            &format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#),
            &signer,
            &public_key_as_mac,
        );
        assert_eq!(code_of(&token, &[&signer]), "unsupported_alg", "{alg}");
    }
}

#[test]
fn another_ed25519_key_claiming_a_known_kid_is_a_bad_signature() {
    let (real, impostor) = (signer(1), signer(9));
    let stolen_kid = real.kid().to_owned();
    let genuine = impostor.sign(&claims("admin", "sid-1"));
    let (_, rest) = genuine.split_once('.').unwrap_or_default();
    let relabelled = format!(
        "{}.{rest}",
        b64(format!(r#"{{"alg":"EdDSA","kid":"{stolen_kid}","typ":"ts+jwt"}}"#).as_bytes())
    );
    assert_eq!(code_of(&relabelled, &[&real]), "bad_signature");
}

#[test]
fn a_swapped_payload_is_a_bad_signature() {
    let signer = signer(1);
    let mine = signer.sign(&claims("user-1", "sid-1"));
    let theirs = signer.sign(&claims("admin", "sid-9"));
    let parts: Vec<&str> = mine.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        theirs.split('.').nth(1).unwrap_or_default(),
        parts[2]
    );
    assert_eq!(code_of(&swapped, &[&signer]), "bad_signature");
}

#[test]
fn broken_shapes_are_malformed() {
    let signer = signer(1);
    let good = signer.sign(&claims("user-1", "sid-1"));
    let cases = [
        good[..good.len() - 10].to_owned(),
        good[..good.rfind('.').unwrap_or(0)].to_owned(),
        format!("{good}.extra"),
        format!("{good}."),
        good.replacen('.', "..", 1),
        String::new(),
        ".".into(),
        "..".into(),
        "not a token".into(),
        format!(
            "{}.%%%.{}",
            good.split('.').next().unwrap_or_default(),
            good.rsplit('.').next().unwrap_or_default()
        ),
        format!(
            "{}=.{}",
            good.split('.').next().unwrap_or_default(),
            good.split_once('.').map(|(_, r)| r).unwrap_or_default()
        ),
        format!("{}.{}.{}", b64(b"{not json"), b64(b"{}"), b64(&[0; 64])),
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"EdDSA","kid":"k","typ":"ts+jwt"}"#),
            b64(b"[1,2]"),
            b64(&[0; 64])
        ),
    ];
    for token in cases {
        assert_eq!(code_of(&token, &[&signer]), "malformed", "{token:?}");
    }
}

#[test]
fn a_one_megabyte_header_is_refused_cheaply() {
    let signer = signer(1);
    let huge = format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, "k".repeat(1 << 20));
    let token = forged(&huge, &signer, &[0; 64]);
    let rejection = verifier(&[&signer])
        .verify(&token, now())
        .expect_err("too big");
    assert_eq!(rejection.error, VerifyError::Malformed("token too long"));
}

#[test]
fn a_signature_of_the_wrong_length_is_malformed() {
    let signer = signer(1);
    let kid = signer.kid().to_owned();
    let token = forged(
        &format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"ts+jwt"}}"#),
        &signer,
        &[1; 63],
    );
    assert_eq!(code_of(&token, &[&signer]), "malformed");
}
