//! `/token`, `/userinfo` and `/revoke`: code redemption rules, errors that say which,
//! refresh, revocation.

use std::sync::Arc;
use std::time::Duration;

use tessera_clock::ManualClock;
use tessera_login::test_util::LoginStack;
use tessera_testkit::Browser;
use tessera_token_stash::test_util::StashHarness;

use crate::support::{on_stack, world, Pkce};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_redeems_once_and_a_replay_is_refused_and_revokes_what_it_issued() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("r");
    let code = world.code(&mut browser, &pkce).await;
    let home = world.stack.base_url.clone();
    let replay = redeem_then_replay(&world, &home, &home, &code, &pkce).await;
    assert_eq!(replay["error"], "invalid_grant");
}

/// Redeems `code` at `first_at` (a working session), replays it at `replay_at` ("code
/// already used"), and checks the first redemption's session is revoked; the replay's
/// answer.
async fn redeem_then_replay(
    world: &crate::support::World,
    first_at: &str,
    replay_at: &str,
    code: &str,
    pkce: &Pkce,
) -> serde_json::Value {
    let (status, first) = world.redeem_at(first_at, code, pkce).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().expect("token");
    assert_eq!(world.userinfo(access).await.0, 200);

    let (status, replay) = world.redeem_at(replay_at, code, pkce).await;
    assert_eq!(status, 400, "{replay}");
    assert!(
        replay["error_description"]
            .as_str()
            .expect("text")
            .starts_with("code already used"),
        "{replay}"
    );
    let (status, info) = world.userinfo(access).await;
    assert_eq!(
        status, 401,
        "redeemed at {first_at}, replayed at {replay_at}: the first redemption's session is revoked: {info}"
    );
    replay
}

/// Two datacenters: login and stash in each, stashes peered, one directory and secrets.
/// A code minted in dc1 and replayed through the other datacenter (in either order) is
/// refused and ends the session its first redemption issued, because the redemption
/// record lives beside the code, at its home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_replayed_through_the_other_datacenter_is_refused_and_revokes_what_it_issued() {
    let mut world = world().await;
    let stash_b = StashHarness::builder(world.stack.pki.clone())
        .datacenter("dc-b")
        .peer("dc1", world.stack.stash.grpc_addr)
        .start()
        .await
        .expect("dc-b stash");
    let login_b = world
        .stack
        .start_login_in("dc-b", &stash_b)
        .await
        .expect("dc-b login");
    let login_a = world.stack.base_url.clone();
    let mut browser = Browser::new().expect("browser");

    for (seed, first_at, replay_at) in [("ab", &login_a, &login_b), ("ba", &login_b, &login_a)] {
        let pkce = Pkce::new(seed);
        let code = world.code(&mut browser, &pkce).await;
        assert!(code.starts_with("dc1."), "minted at home: {code}");
        redeem_then_replay(&world, first_at, replay_at, &code, &pkce).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_redemptions_of_one_code_have_exactly_one_success() {
    let world = Arc::new(world().await);
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("c");
    let code = world.code(&mut browser, &pkce).await;
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let (world, code, pkce) = (world.clone(), code.clone(), pkce.clone());
            tokio::spawn(async move { world.redeem(&code, &pkce).await })
        })
        .collect();
    let mut successes = Vec::new();
    for racer in racers {
        let (status, body) = racer.await.expect("task");
        if status == 200 {
            successes.push(body);
        } else {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    assert_eq!(successes.len(), 1, "exactly one redemption succeeds");
    // The losers were replays: whichever came first, the winner's session ends.
    let access = successes[0]["access_token"].as_str().expect("token");
    assert_eq!(world.userinfo(access).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redemption_error_says_which_one_it_is() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("e");

    let code = world.code(&mut browser, &pkce).await;
    let wrong_verifier = Pkce::new("other");
    let (status, body) = world.redeem(&code, &wrong_verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .starts_with("PKCE mismatch"),
        "{body}"
    );

    let code = world.code(&mut browser, &pkce).await;
    let (status, body) = world
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9/other"),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .starts_with("redirect mismatch"),
        "{body}"
    );

    let (status, body) = world.redeem("dc1.AAAAAAAAAAAAAAAAAAAAAA", &pkce).await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .starts_with("code unknown"),
        "{body}"
    );

    let (status, body) = world.token(&[("grant_type", "password")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );

    let (status, body) = world.token(&[("grant_type", "authorization_code")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(body["error_description"]
        .as_str()
        .expect("text")
        .contains("code is missing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_older_than_sixty_seconds_is_refused_as_expired() {
    let clock = ManualClock::starting_now();
    let stack = LoginStack::start_with(None, Some(clock.shared()), |_| {})
        .await
        .expect("stack");
    let world = on_stack(stack).await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("x");
    let code = world.code(&mut browser, &pkce).await;
    clock.advance(Duration::from_secs(61));
    let (status, body) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .starts_with("code expired"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_authenticate_by_basic_or_post_and_a_wrong_secret_is_invalid_client() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("a");
    let code = world.code(&mut browser, &pkce).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", world.site.redirect_uri.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let wrong = world
        .http
        .post(world.stack.url("/token"))
        .basic_auth("wiki-a", Some("not-the-secret"))
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = wrong.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");

    let mut post_form = form.to_vec();
    post_form.push(("client_id", "wiki-a"));
    post_form.push(("client_secret", world.site.secret.as_str()));
    let by_post = world
        .http
        .post(world.stack.url("/token"))
        .form(&post_form)
        .send()
        .await
        .expect("token");
    assert_eq!(
        by_post.status().as_u16(),
        200,
        "client_secret_post works (the code was not burnt by the refused call)"
    );
    assert_eq!(
        by_post
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_through_token_rotates_and_only_the_owning_site_may_refresh() {
    let world = world().await;
    let other_secret = world
        .stack
        .add_site("wiki-b", "http://localhost:8/callback", None, None)
        .await
        .expect("site");
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("f");
    let code = world.code(&mut browser, &pkce).await;
    let (_, tokens) = world.redeem(&code, &pkce).await;
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh");

    let foreign = world
        .http
        .post(world.stack.url("/token"))
        .basic_auth("wiki-b", Some(&other_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(
        foreign.status().as_u16(),
        400,
        "another site's refresh token"
    );

    let (status, fresh) = world
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["refresh_token"], tokens["refresh_token"]);
    let access = fresh["access_token"].as_str().expect("access");
    assert_eq!(world.userinfo(access).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_ends_the_session_and_userinfo_notices_at_once() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    for (seed, which) in [("rt", "refresh_token"), ("at", "access_token")] {
        let pkce = Pkce::new(seed);
        let code = world.code(&mut browser, &pkce).await;
        let (_, tokens) = world.redeem(&code, &pkce).await;
        let access = tokens["access_token"].as_str().expect("access");
        let revoked = world
            .http
            .post(world.stack.url("/revoke"))
            .basic_auth(&world.site.client_id, Some(&world.site.secret))
            .form(&[("token", tokens[which].as_str().expect("token"))])
            .send()
            .await
            .expect("revoke");
        assert_eq!(revoked.status().as_u16(), 200, "{which}");
        let (status, info) = world.userinfo(access).await;
        assert_eq!(status, 401, "{which}: {info}");
        assert!(
            info["error_description"]
                .as_str()
                .expect("text")
                .starts_with("revoked"),
            "{info}"
        );
    }
    let unknown = world
        .http
        .post(world.stack.url("/revoke"))
        .basic_auth(&world.site.client_id, Some(&world.site.secret))
        .form(&[("token", "never-issued")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(
        unknown.status().as_u16(),
        200,
        "RFC 7009: unknown tokens are no error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_without_a_valid_bearer_token_is_401_with_a_challenge() {
    let world = world().await;
    let none = world
        .http
        .get(world.stack.url("/userinfo"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(none.status().as_u16(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let (status, body) = world.userinfo("a.b.c").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_presented_by_another_site_or_with_a_wrong_binding_is_not_consumed() {
    let world = world().await;
    let other_secret = world
        .stack
        .add_site("wiki-z", "http://localhost:9/z-callback", None, None)
        .await
        .expect("site");
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("burn");
    let code = world.code(&mut browser, &pkce).await;

    let stolen = world
        .http
        .post(world.stack.url("/token"))
        .basic_auth("wiki-z", Some(&other_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:9/z-callback"),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(stolen.status().as_u16(), 400);
    let body: serde_json::Value = stolen.json().await.expect("json");
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("another site"),
        "{body}"
    );
    let (status, _) = world.redeem(&code, &Pkce::new("wrong")).await;
    assert_eq!(status, 400, "a wrong verifier is refused");

    let (status, tokens) = world.redeem(&code, &pkce).await;
    assert_eq!(
        status, 200,
        "the owner still redeems the code nobody else could burn: {tokens}"
    );
}
