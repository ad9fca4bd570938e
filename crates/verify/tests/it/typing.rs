//! Every token says what it is (`typ`, RFC 8725 section 3.11) and names no critical
//! extension Tessera does not understand (`crit`, RFC 7515 section 4.1.11): an ID token
//! or a logout token signed by a trusted key is still never a session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::json;
use tessera_verify::{
    verify_signed_json, Jwks, VerifyError, ID_TOKEN_TYP, LOGOUT_TYP, SESSION_TYP,
};

use crate::support::{claims, now, signer, verifier};

/// A token with `header` over the session claims, signed by key seed 1.
fn signed_with_header(header: serde_json::Value) -> String {
    let key = SigningKey::from_bytes(&[1; 32]);
    let claims = serde_json::to_vec(&claims("user-1", "sid-1")).expect("json");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

#[test]
fn session_tokens_carry_their_type_and_others_are_refused_as_sessions() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let session = signer.sign(&claims("user-1", "sid-1"));
    assert!(verifier.verify(&session, now()).is_ok());
    for typ in [ID_TOKEN_TYP, LOGOUT_TYP] {
        let other = signer.sign_json(typ, &claims("user-1", "sid-1"));
        let rejection = verifier.verify(&other, now()).expect_err("not a session");
        assert_eq!(rejection.code(), "wrong_type", "{typ}");
    }
    let untyped = signed_with_header(json!({"alg": "EdDSA", "kid": signer.kid()}));
    assert_eq!(
        verifier
            .verify(&untyped, now())
            .expect_err("untyped")
            .code(),
        "wrong_type"
    );
}

#[test]
fn a_token_naming_a_critical_extension_is_refused() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let critical = signed_with_header(json!({
        "alg": "EdDSA", "kid": signer.kid(), "typ": SESSION_TYP,
        "crit": ["exp"], "exp": 1,
    }));
    let rejection = verifier.verify(&critical, now()).expect_err("crit");
    assert_eq!(rejection.code(), "critical_extension");
    assert_eq!(
        rejection.user_id(),
        Some("user-1"),
        "still says whose it was"
    );
}

#[test]
fn signed_json_is_checked_for_its_type_and_critical_extensions() {
    let signer = signer(1);
    let jwks = Jwks {
        keys: vec![signer.jwk()],
    };
    let logout = signer.sign_json(LOGOUT_TYP, &json!({"sub": "user-1"}));
    assert!(verify_signed_json::<serde_json::Value>(&logout, LOGOUT_TYP, &jwks).is_ok());
    assert!(matches!(
        verify_signed_json::<serde_json::Value>(&logout, ID_TOKEN_TYP, &jwks),
        Err(VerifyError::WrongType { .. })
    ));
    let session = signer.sign(&claims("user-1", "sid-1"));
    assert!(matches!(
        verify_signed_json::<serde_json::Value>(&session, ID_TOKEN_TYP, &jwks),
        Err(VerifyError::WrongType { .. })
    ));
}

#[test]
fn a_token_claiming_to_live_longer_than_any_session_is_refused() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let mut forever = claims("user-1", "sid-1");
    forever.exp = 1 << 63;
    assert_eq!(
        verifier
            .verify(&signer.sign(&forever), now())
            .expect_err("exp of 2^63")
            .code(),
        "implausible_lifetime"
    );
    let mut backwards = claims("user-1", "sid-1");
    backwards.exp = backwards.iat;
    assert_eq!(
        verifier
            .verify(&signer.sign(&backwards), now())
            .expect_err("exp not after iat")
            .code(),
        "implausible_lifetime"
    );
    let mut day = claims("user-1", "sid-1");
    day.exp = day.iat + 24 * 60 * 60;
    assert!(
        verifier.verify(&signer.sign(&day), now()).is_ok(),
        "a day is plausible"
    );
}
