//! Signed JSON other than session tokens (ID tokens, logout tokens).

use serde::{Deserialize, Serialize};
use tessera_verify::{verify_signed_json, Jwks, SessionSigner, VerifyError, ID_TOKEN_TYP};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct IdClaims {
    iss: String,
    nonce: String,
}

fn claims() -> IdClaims {
    IdClaims {
        iss: "http://login.example".into(),
        nonce: "n-0S6_WzA2Mj".into(),
    }
}

#[test]
fn signed_json_verifies_with_the_published_key_and_round_trips_its_claims() {
    let signer = SessionSigner::from_seed(&[7; 32]);
    let jwks = Jwks {
        keys: vec![signer.jwk()],
    };
    let token = signer.sign_json(ID_TOKEN_TYP, &claims());
    let verified: IdClaims = verify_signed_json(&token, ID_TOKEN_TYP, &jwks).expect("verifies");
    assert_eq!(verified, claims());
}

#[test]
fn signed_json_from_an_unpublished_key_or_with_a_changed_payload_is_refused() {
    let signer = SessionSigner::from_seed(&[7; 32]);
    let stranger = SessionSigner::from_seed(&[8; 32]);
    let jwks = Jwks {
        keys: vec![signer.jwk()],
    };
    let foreign = stranger.sign_json(ID_TOKEN_TYP, &claims());
    assert!(matches!(
        verify_signed_json::<IdClaims>(&foreign, ID_TOKEN_TYP, &jwks),
        Err(VerifyError::UnknownKey { .. })
    ));
    let token = signer.sign_json(ID_TOKEN_TYP, &claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let other_payload = stranger.sign_json(
        ID_TOKEN_TYP,
        &IdClaims {
            iss: "http://evil.example".into(),
            nonce: "x".into(),
        },
    );
    parts[1] = other_payload.split('.').nth(1).expect("payload");
    assert_eq!(
        verify_signed_json::<IdClaims>(&parts.join("."), ID_TOKEN_TYP, &jwks).err(),
        Some(VerifyError::BadSignature)
    );
    assert!(matches!(
        verify_signed_json::<IdClaims>("a.b", ID_TOKEN_TYP, &jwks),
        Err(VerifyError::Malformed(_))
    ));
}
