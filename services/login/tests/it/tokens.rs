//! Every token says what it is and is signed by a key kept for that purpose: session
//! tokens by the session service's keys (published at `/session-keys.json`), ID and
//! logout tokens by the login's keys (`/jwks.json`), so one can never pass for the
//! other. ID tokens are EdDSA unless the site registered for RS256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use tessera_login::directory::IdTokenAlg;
use tessera_testkit::Browser;
use tessera_verify::{Jwks, Verifier, VerifierConfig};

use crate::support::{claims, world, Pkce, Site};

fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().expect("header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

async fn keys(world: &crate::support::World, path: &str) -> Value {
    world
        .http
        .get(world.stack.url(path))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json")
}

fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_id_tokens_are_typed_and_signed_by_keys_published_apart() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("typed");
    let code = world.code(&mut browser, &pkce).await;
    let (status, tokens) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access");
    let id_token = tokens["id_token"].as_str().expect("id token");
    assert_eq!(header(access)["typ"], "ts+jwt");
    assert_eq!(header(id_token)["typ"], "JWT");
    assert!(
        claims(access).get("iss").is_none(),
        "the key names the issuer"
    );

    let id_keys = keys(&world, "/jwks.json").await;
    let session_keys = keys(&world, "/session-keys.json").await;
    let session_kid = header(access)["kid"].as_str().expect("kid").to_owned();
    let id_kid = header(id_token)["kid"].as_str().expect("kid").to_owned();
    assert!(kids(&session_keys).contains(&session_kid));
    assert!(!kids(&id_keys).contains(&session_kid));
    assert!(kids(&id_keys).contains(&id_kid));
    assert!(!kids(&session_keys).contains(&id_kid));

    // Even a site that trusted both sets at once would not take an ID token as a session.
    let mut both: Jwks = serde_json::from_value(session_keys).expect("jwks");
    let id_set: Jwks = serde_json::from_value(id_keys).expect("jwks");
    both.keys.extend(id_set.keys);
    let verifier = Verifier::new(VerifierConfig::new("wiki-a"));
    verifier.set_keys(&both);
    let now = world.stack.login.clock.now();
    assert!(verifier.verify(access, now).is_ok());
    assert_eq!(
        verifier
            .verify(id_token, now)
            .expect_err("an ID token")
            .code(),
        "wrong_type"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_registered_for_rs256_gets_id_tokens_that_verify_with_the_published_rsa_key() {
    use rsa::signature::Verifier as _;
    let world = world().await;
    let discovery = keys(&world, "/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        serde_json::json!(["EdDSA", "RS256"])
    );
    let redirect_uri = "http://localhost:9/rs-callback".to_owned();
    let site = tessera_login::directory::NewSite {
        client_id: tessera_login::admin_cli::client_id("legacy-wiki").expect("id"),
        display_name: None,
        redirect_uris: vec![redirect_uri.clone()],
        post_logout_uris: vec!["http://localhost:9/".into()],
        backchannel_logout_uri: None,
        id_token_alg: IdTokenAlg::Rs256,
    };
    let secret = world
        .stack
        .login
        .directory
        .add_site(&site, world.stack.login.clock.now())
        .await
        .expect("site");
    let world = crate::support::World {
        site: Site {
            client_id: "legacy-wiki".into(),
            secret,
            redirect_uri,
        },
        ..world
    };
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("rsa");
    let code = world.code(&mut browser, &pkce).await;
    let (status, tokens) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("id token");
    assert_eq!(header(id_token)["alg"], "RS256");
    assert_eq!(header(id_token)["typ"], "JWT");
    assert_eq!(
        header(tokens["access_token"].as_str().expect("at"))["alg"],
        "EdDSA",
        "session tokens stay EdDSA"
    );

    let published = keys(&world, "/jwks.json").await;
    let kid = header(id_token)["kid"].clone();
    let jwk = published["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the RSA key is published")
        .clone();
    assert_eq!(jwk["kty"], "RSA");
    let number = |name: &str| {
        rsa::BigUint::from_bytes_be(
            &URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().expect("member"))
                .expect("b64"),
        )
    };
    let public = rsa::RsaPublicKey::new(number("n"), number("e")).expect("rsa key");
    let verifying = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
    let (input, signature) = id_token.rsplit_once('.').expect("jws");
    let signature = rsa::pkcs1v15::Signature::try_from(
        URL_SAFE_NO_PAD.decode(signature).expect("b64").as_slice(),
    )
    .expect("signature");
    verifying
        .verify(input.as_bytes(), &signature)
        .expect("verifies with the published RSA key");
    assert_eq!(claims(id_token)["aud"], "legacy-wiki");
    assert_eq!(claims(id_token)["nonce"], "nonce-rsa");

    // An RS256 ID token works as a sign-out hint like any other.
    let out = browser
        .get(&format!(
            "{}?id_token_hint={id_token}",
            world.stack.url("/logout")
        ))
        .await
        .expect("logout");
    assert!(out.body.contains("You are signed out"), "{}", out.body);
}
