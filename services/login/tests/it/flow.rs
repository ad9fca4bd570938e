//! The authorization code flow end to end through HTTP, and single sign-on.

use tessera_testkit::Browser;
use tessera_verify::{verify_signed_json, Jwks, ID_TOKEN_TYP};

use crate::support::{claims, world, Pkce};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_and_the_site_gets_tokens_an_id_token_and_userinfo() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("one");
    let back = world.sign_in(&mut browser, &pkce).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert!(back
        .location()
        .expect("location")
        .starts_with("http://localhost:9/callback?code="));
    for cookie in back.set_cookies() {
        assert!(cookie.starts_with("__Host-tessera-central"), "{cookie}");
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
    }
    let code = back.location_param("code").expect("code");
    let (status, tokens) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access token");
    assert!(access.len() <= 300, "session JWT of {} bytes", access.len());
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    let id_token = tokens["id_token"].as_str().expect("id token");
    let jwks: Jwks = world
        .http
        .get(world.stack.url("/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let id: serde_json::Value =
        verify_signed_json(id_token, ID_TOKEN_TYP, &jwks).expect("signed by a published key");
    assert_eq!(id["iss"], world.stack.base_url.as_str());
    assert_eq!(id["aud"], "wiki-a");
    assert_eq!(id["nonce"], "nonce-one");
    assert_eq!(id["sub"], world.user_id.as_str());
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(claims(id_token)["sid"], claims(access)["sid"]);

    let (status, info) = world.userinfo(access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], world.user_id.as_str());
    assert_eq!(info["preferred_username"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_central_session_gets_a_code_at_once_without_a_form() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    world.code(&mut browser, &Pkce::new("first")).await;
    let again = Pkce::new("second");
    let answer = browser
        .get(&world.authorize_url(&again, &[]))
        .await
        .expect("authorize");
    assert_eq!(answer.status, 303, "SSO, not a form: {}", answer.body);
    assert_eq!(
        answer.location_param("state").as_deref(),
        Some("state-second")
    );
    let code = answer.location_param("code").expect("code");
    let (status, tokens) = world.redeem(&code, &again).await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_without_a_session_answers_login_required_instead_of_a_form() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let answer = browser
        .get(&world.authorize_url(&Pkce::new("p"), &[("prompt", "none")]))
        .await
        .expect("authorize");
    assert_eq!(answer.status, 303);
    assert_eq!(
        answer.location_param("error").as_deref(),
        Some("login_required")
    );
    assert_eq!(answer.location_param("state").as_deref(), Some("state-p"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_is_required_with_s256_and_plain_is_refused() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("p");
    let base = world.authorize_url(&pkce, &[]);
    for (from, to) in [
        ("code_challenge_method=S256", "code_challenge_method=plain"),
        ("&code_challenge_method=S256", ""),
        ("response_type=code", "response_type=token"),
    ] {
        let answer = browser
            .get(&base.replace(from, to))
            .await
            .expect("authorize");
        assert_eq!(answer.status, 303, "{to}");
        let error = answer.location_param("error").expect("error");
        assert!(
            error == "invalid_request" || error == "unsupported_response_type",
            "{to}: {error}"
        );
        assert!(answer.location_param("error_description").is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_site_or_unregistered_redirect_gets_a_page_never_a_redirect() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let url = world.authorize_url(&Pkce::new("p"), &[]);
    let unknown = browser
        .get(&url.replace("client_id=wiki-a", "client_id=wiki-z"))
        .await
        .expect("authorize");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("not registered"), "{}", unknown.body);
    let elsewhere = browser
        .get(&url.replace("localhost%3A9%2Fcallback", "evil.example%2Fcallback"))
        .await
        .expect("authorize");
    assert_eq!(elsewhere.status, 400);
    assert!(elsewhere.location().is_none());
    let near_miss = browser
        .get(&url.replace("%2Fcallback", "%2Fcallback%2F"))
        .await
        .expect("authorize");
    assert_eq!(near_miss.status, 400, "exact match only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_names_every_endpoint_s256_only_and_both_id_token_algorithms() {
    let world = world().await;
    let doc: serde_json::Value = world
        .http
        .get(world.stack.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    let base = world.stack.base_url.clone();
    assert_eq!(doc["issuer"], base.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("revocation_endpoint", "/revoke"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(doc[key], format!("{base}{path}").as_str(), "{key}");
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["EdDSA", "RS256"])
    );
    assert_eq!(doc["backchannel_logout_supported"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_gets_no_single_sign_on_from_an_existing_session() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    world.code(&mut browser, &Pkce::new("before")).await;
    let name = tessera_login::directory::UserName::try_from("alice").expect("name");
    world
        .stack
        .login
        .directory
        .set_disabled(&name, true)
        .await
        .expect("disabled");
    let answer = browser
        .get(&world.authorize_url(&Pkce::new("after"), &[]))
        .await
        .expect("authorize");
    assert_eq!(answer.status, 200, "the form, not a code");
    assert!(answer.body.contains("name=\"password\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_id_tokens_say_when_the_password_was_checked_and_max_age_asks_again() {
    use std::time::Duration;
    use tessera_clock::{Clock as _, ManualClock};
    let clock = ManualClock::starting_now();
    let stack =
        tessera_login::test_util::LoginStack::start_with(None, Some(clock.shared()), |_| {})
            .await
            .expect("stack");
    let world = crate::support::on_stack(stack).await;
    let mut browser = Browser::new().expect("browser");
    let signed_in_at = clock.now().0 / 1000;
    world.code(&mut browser, &Pkce::new("first")).await;

    // Past the central token's soft expiry: the SSO hop refreshes the central session.
    clock.advance(Duration::from_secs(20 * 60));
    let pkce = Pkce::new("later");
    let answer = browser
        .get(&world.authorize_url(&pkce, &[]))
        .await
        .expect("authorize");
    assert_eq!(answer.status, 303, "SSO: {}", answer.body);
    let code = answer.location_param("code").expect("code");
    let (status, tokens) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("id token");
    assert_eq!(
        claims(id_token)["auth_time"],
        signed_in_at,
        "the time the password was checked, not when the cookie was re-minted"
    );

    let stale = browser
        .get(&world.authorize_url(&Pkce::new("strict"), &[("max_age", "600")]))
        .await
        .expect("authorize");
    assert_eq!(
        stale.status, 200,
        "authenticated 20 minutes ago: sign in again"
    );
    assert!(stale.body.contains("name=\"password\""));
    let lenient = browser
        .get(&world.authorize_url(&Pkce::new("lenient"), &[("max_age", "3600")]))
        .await
        .expect("authorize");
    assert_eq!(lenient.status, 303, "within max_age: SSO");
    let bad = browser
        .get(&world.authorize_url(&Pkce::new("bad"), &[("max_age", "soon")]))
        .await
        .expect("authorize");
    assert_eq!(
        bad.location_param("error").as_deref(),
        Some("invalid_request")
    );

    // A browser whose authentication time cookie is gone cannot prove it: a form.
    browser.set_cookie("__Host-tessera-central-auth", "deleted");
    let unknown = browser
        .get(&world.authorize_url(&Pkce::new("unknown"), &[]))
        .await
        .expect("authorize");
    assert_eq!(unknown.status, 200, "{}", unknown.body);
}
