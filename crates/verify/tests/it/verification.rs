//! What a good token is, and every way a once-good token stops being one.

use tessera_clock::UnixMillis;
use tessera_verify::{Jwks, RevocationEvent, RevokedScope, VerifyError};

use crate::support::{at, claims, now, signer, verifier, NOW_SECS};

#[test]
fn a_fresh_token_verifies_and_names_the_session() {
    let signer = signer(1);
    let token = signer.sign(&claims("user-1", "sid-1"));
    let session = verifier(&[&signer])
        .verify(&token, now())
        .expect("verifies");
    assert_eq!(session.claims.sub, "user-1");
    assert_eq!(session.claims.sid, "sid-1");
}

#[test]
fn a_token_with_20_character_user_and_site_is_at_most_300_bytes() {
    let signer = signer(1);
    let mut claims = claims("u2345678901234567890", "Qm9vdHN0cmFw");
    claims.aud = "s2345678901234567890".into();
    let token = signer.sign(&claims);
    assert!(token.len() <= 300, "{} bytes: {token}", token.len());
}

#[test]
fn past_the_soft_expiry_a_token_must_be_refreshed_and_later_is_expired() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let token = signer.sign(&claims("user-1", "sid-1"));
    assert!(verifier.verify(&token, at(299)).is_ok());
    assert_eq!(
        verifier.verify(&token, at(300)).expect_err("soft").error,
        VerifyError::SoftExpired
    );
    let much_later = at(300 + 12 * 3600);
    assert_eq!(
        verifier.verify(&token, much_later).expect_err("hard").error,
        VerifyError::Expired
    );
}

#[test]
fn a_token_issued_in_the_future_is_not_yet_valid() {
    let signer = signer(1);
    let mut future = claims("user-1", "sid-1");
    future.iat = NOW_SECS + 3600;
    future.exp = NOW_SECS + 3900;
    let token = signer.sign(&future);
    let rejection = verifier(&[&signer])
        .verify(&token, now())
        .expect_err("future");
    assert_eq!(rejection.error, VerifyError::NotYetValid);
    let mut slightly = claims("user-1", "sid-2");
    slightly.iat = NOW_SECS + 30;
    assert!(
        verifier(&[&signer])
            .verify(&signer.sign(&slightly), now())
            .is_ok(),
        "within clock skew"
    );
}

#[test]
fn tokens_for_another_site_are_refused() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let mut other_site = claims("user-1", "sid-1");
    other_site.aud = "wiki-b".into();
    let rejection = verifier
        .verify(&signer.sign(&other_site), now())
        .expect_err("audience");
    assert_eq!(rejection.code(), "wrong_audience");
    assert_eq!(rejection.audience(), Some("wiki-b"));
}

#[test]
fn an_unknown_key_is_reported_until_the_keys_are_refreshed() {
    let (old, new) = (signer(1), signer(2));
    let verifier = verifier(&[&old]);
    let token = new.sign(&claims("user-1", "sid-1"));
    let rejection = verifier.verify(&token, now()).expect_err("unknown kid");
    assert_eq!(
        rejection.error,
        VerifyError::UnknownKey {
            kid: new.kid().into()
        }
    );
    verifier.set_keys(&Jwks {
        keys: vec![old.jwk(), new.jwk()],
    });
    assert!(verifier.verify(&token, now()).is_ok());
}

#[test]
fn a_key_taken_out_of_the_jwks_stops_verifying_even_cached_tokens() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let token = signer.sign(&claims("user-1", "sid-1"));
    assert!(verifier.verify(&token, now()).is_ok(), "now cached");
    verifier.set_keys(&Jwks::default());
    assert_eq!(
        verifier.verify(&token, now()).expect_err("key gone").code(),
        "unknown_key"
    );
}

#[test]
fn a_revoked_session_is_refused_and_others_are_not() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let ended = signer.sign(&claims("user-1", "sid-1"));
    let other = signer.sign(&claims("user-1", "sid-2"));
    assert!(
        verifier.verify(&ended, now()).is_ok(),
        "cached before the revocation"
    );
    verifier.apply(RevocationEvent::Sessions {
        sids: vec!["sid-1".into()],
        until: at(300),
    });
    let rejection = verifier.verify(&ended, now()).expect_err("revoked");
    assert_eq!(rejection.error, VerifyError::Revoked(RevokedScope::Session));
    assert!(verifier.verify(&other, now()).is_ok());
}

#[test]
fn a_user_epoch_revokes_that_users_earlier_tokens_only() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let before = signer.sign(&claims("user-1", "sid-1"));
    let someone_else = signer.sign(&claims("user-2", "sid-2"));
    verifier.apply(RevocationEvent::User {
        sub: "user-1".into(),
        before: at(1),
    });
    assert_eq!(
        verifier.verify(&before, at(2)).expect_err("revoked").error,
        VerifyError::Revoked(RevokedScope::User)
    );
    assert!(verifier.verify(&someone_else, at(2)).is_ok());
    let mut after_claims = claims("user-1", "sid-3");
    after_claims.iat = NOW_SECS + 1;
    assert!(
        verifier.verify(&signer.sign(&after_claims), at(2)).is_ok(),
        "a new login after the logout works"
    );
}

#[test]
fn a_global_epoch_revokes_everyone_issued_before_it() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let tokens: Vec<_> = (0..5)
        .map(|i| signer.sign(&claims(&format!("user-{i}"), &format!("sid-{i}"))))
        .collect();
    verifier.apply(RevocationEvent::Global { before: at(1) });
    for token in &tokens {
        assert_eq!(
            verifier.verify(token, at(2)).expect_err("revoked").error,
            VerifyError::Revoked(RevokedScope::Global)
        );
    }
}

#[test]
fn pruning_forgets_only_revocations_that_can_no_longer_matter() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let token = signer.sign(&claims("user-1", "sid-1"));
    verifier.apply(RevocationEvent::Sessions {
        sids: vec!["sid-1".into()],
        until: at(300),
    });
    verifier.prune(at(299));
    assert_eq!(
        verifier
            .verify(&token, at(10))
            .expect_err("still revoked")
            .code(),
        "revoked"
    );
    verifier.prune(UnixMillis(at(300).0 + 1));
    assert_eq!(
        verifier
            .verify(&token, at(301))
            .expect_err("expired anyway")
            .code(),
        "soft_expired"
    );
}

#[test]
fn a_rejection_says_who_and_where() {
    let signer = signer(1);
    let verifier = verifier(&[&signer]);
    let mut named = claims("user-7", "sid-7");
    named.name = Some("Ada Lovelace".into());
    let token = signer.sign(&named);
    verifier.apply(RevocationEvent::User {
        sub: "user-7".into(),
        before: at(1),
    });
    let rejection = verifier.verify(&token, at(2)).expect_err("revoked");
    let line = rejection.to_string();
    assert!(
        line.contains("(revoked)")
            && line.contains("user-7")
            && line.contains("Ada Lovelace")
            && line.contains("wiki-a"),
        "{line}"
    );
}
