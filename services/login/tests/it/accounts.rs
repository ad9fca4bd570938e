//! Ending a user ends their sessions: disabling them or changing their password revokes
//! every session at once (the user epoch), and a refresh never extends the session of a
//! disabled user.

use tessera_login::admin_cli;
use tessera_login::directory::UserName;
use tessera_testkit::Browser;

use crate::support::{world, Pkce, World};

/// Signs alice in through `browser` and redeems the code: (access, refresh).
async fn signed_in(world: &World, browser: &mut Browser) -> (String, String) {
    let pkce = Pkce::new("acct");
    let code = world.code(browser, &pkce).await;
    let (status, tokens) = world.redeem(&code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    (
        tokens["access_token"].as_str().expect("at").to_owned(),
        tokens["refresh_token"].as_str().expect("rt").to_owned(),
    )
}

async fn refresh(world: &World, refresh_token: &str) -> (u16, serde_json::Value) {
    world
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_their_sessions_and_refresh_stops_at_once() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let (access, refresh_token) = signed_in(&world, &mut browser).await;
    let login = &world.stack.login;
    admin_cli::set_disabled(&login.config, &login.directory, "alice", true)
        .await
        .expect("disabled");
    assert_eq!(world.userinfo(&access).await.0, 401, "the session ended");
    let (status, body) = refresh(&world, &refresh_token).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_every_session_and_the_new_password_signs_in() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let (access, refresh_token) = signed_in(&world, &mut browser).await;
    let login = &world.stack.login;
    admin_cli::set_password(
        &login.config,
        &login.directory,
        "alice",
        "a brand new long password".into(),
    )
    .await
    .expect("changed");
    assert_eq!(world.userinfo(&access).await.0, 401);
    assert_eq!(refresh(&world, &refresh_token).await.0, 400);
    let sso = browser
        .get(&world.authorize_url(&Pkce::new("after"), &[]))
        .await
        .expect("authorize");
    assert_eq!(sso.status, 200, "the central session ended too: a form");
    let flow = sso.form_field("flow").expect("flow");
    let back = browser
        .post(
            &world.stack.url("/login"),
            &[
                ("flow", &flow),
                ("username", "alice"),
                ("password", "a brand new long password"),
            ],
        )
        .await
        .expect("post");
    assert_eq!(back.status, 303, "{}", back.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_for_a_disabled_user_is_refused_even_if_no_revocation_arrived() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let (_, refresh_token) = signed_in(&world, &mut browser).await;
    world
        .stack
        .login
        .directory
        .set_disabled(&UserName::try_from("alice").expect("name"), true)
        .await
        .expect("disabled in the directory only");
    let (status, body) = refresh(&world, &refresh_token).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .expect("text")
            .contains("account is disabled"),
        "{body}"
    );
}
