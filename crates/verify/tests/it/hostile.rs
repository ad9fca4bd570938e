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

/// A token signed over any header this test likes, with the raw key of `signer(seed)`.
fn signed_with_header(seed: u8, header_json: &str, payload_json: &str) -> String {
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let input = format!(
        "{}.{}",
        b64(header_json.as_bytes()),
        b64(payload_json.as_bytes())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

#[test]
fn key_urls_and_keys_carried_in_the_header_are_never_fetched_or_trusted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let bait = format!("http://{}", listener.local_addr().expect("addr"));
    let (real, attacker) = (signer(1), signer(9));
    let payload = serde_json::to_string(&claims("admin", "sid-1")).expect("claims");
    let attacker_jwk = serde_json::to_string(&attacker.jwk()).expect("jwk");
    for kid in [attacker.kid(), real.kid()] {
        let header = format!(
            r#"{{"alg":"EdDSA","kid":"{kid}","typ":"ts+jwt","jku":"{bait}/jwks.json","x5u":"{bait}/cert.pem","x5c":["MIIB"],"jwk":{attacker_jwk}}}"#
        );
        let token = signed_with_header(9, &header, &payload);
        let expected = if kid == real.kid() {
            "bad_signature"
        } else {
            "unknown_key"
        };
        assert_eq!(code_of(&token, &[&real]), expected, "kid {kid}");
        let id_token = signed_with_header(
            9,
            &header.replace("ts+jwt", tessera_verify::ID_TOKEN_TYP),
            &payload,
        );
        let jwks = tessera_verify::Jwks {
            keys: vec![real.jwk()],
        };
        assert!(tessera_verify::verify_signed_json::<serde_json::Value>(
            &id_token,
            tessera_verify::ID_TOKEN_TYP,
            &jwks
        )
        .is_err());
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the verifier connected to a URL a token named"
    );
}

/// Ed25519's group order L, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The same signature with S + L in place of S: equal modulo L, so a lax verifier accepts
/// it, and a token could then be re-signed without the key (malleability).
fn with_non_canonical_s(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    let mut carry = 0u16;
    for (byte, l) in signature[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes");
    format!("{input}.{}", b64(&signature))
}

#[test]
fn a_non_canonical_signature_with_s_past_the_group_order_is_refused() {
    let signer = signer(1);
    let good = signer.sign(&claims("user-1", "sid-1"));
    verifier(&[&signer])
        .verify(&good, now())
        .expect("the canonical token verifies");
    assert_eq!(
        code_of(&with_non_canonical_s(&good), &[&signer]),
        "bad_signature"
    );
    let id_token = signer.sign_json(
        tessera_verify::ID_TOKEN_TYP,
        &serde_json::json!({ "sub": "user-1" }),
    );
    let jwks = tessera_verify::Jwks {
        keys: vec![signer.jwk()],
    };
    let refused = tessera_verify::verify_signed_json::<serde_json::Value>(
        &with_non_canonical_s(&id_token),
        tessera_verify::ID_TOKEN_TYP,
        &jwks,
    )
    .expect_err("non-canonical");
    assert_eq!(refused, VerifyError::BadSignature);
}

#[test]
fn a_kid_shaped_like_a_path_a_query_or_a_url_is_just_an_unknown_key() {
    let signer = signer(1);
    for kid in [
        "../../../../etc/passwd",
        "..\\\\..\\\\keys\\\\session.key",
        "' OR '1'='1",
        "k'; DROP TABLE keys;--",
        "%2e%2e%2fsecrets",
        "\\u0000",
        "https://evil.example/jwks.json",
        "*",
    ] {
        let token = forged(
            &format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"ts+jwt"}}"#),
            &signer,
            &[0; 64],
        );
        assert_eq!(code_of(&token, &[&signer]), "unknown_key", "{kid}");
    }
}

#[test]
fn ten_thousand_dots_and_bytes_that_are_not_utf8_are_malformed_before_any_work() {
    let signer = signer(1);
    let refusal = |token: &str| {
        verifier(&[&signer])
            .verify(token, now())
            .expect_err("refused")
            .error
    };
    // Past the size limit nothing is even split.
    assert_eq!(
        refusal(&".".repeat(10_000)),
        VerifyError::Malformed("token too long")
    );
    // Under it, splitting stops at the fourth part.
    assert_eq!(
        refusal(&".".repeat(4_000)),
        VerifyError::Malformed("not three dot-separated parts")
    );
    assert_eq!(
        tessera_verify::verify_signed_json::<serde_json::Value>(
            &".".repeat(10_000),
            tessera_verify::ID_TOKEN_TYP,
            &tessera_verify::Jwks { keys: vec![] }
        ),
        Err(VerifyError::Malformed("token too long"))
    );
    // Parts that decode to bytes that are not UTF-8 (or JSON) are malformed.
    let not_utf8 = b64(&[0xff, 0xfe, 0xc3, 0x28, 0x80]);
    let good = signer.sign(&claims("user-1", "sid-1"));
    let parts: Vec<&str> = good.split('.').collect();
    for token in [
        format!("{not_utf8}.{}.{}", parts[1], parts[2]),
        format!("{}.{not_utf8}.{}", parts[0], parts[2]),
    ] {
        assert_eq!(code_of(&token, &[&signer]), "malformed", "{token}");
    }
}
