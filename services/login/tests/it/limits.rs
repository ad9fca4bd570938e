//! Sign-in limits that slow a guesser without letting anyone lock a person out, a
//! forwarding header believed only from a trusted proxy, a second factor that locks
//! across replicas, and fields of absurd size refused before any work is done.

use tessera_login::totp::{code_at, STEP_SECONDS};
use tessera_testkit::Browser;

use crate::support::{world_with, Pkce, World, PASSWORD};

/// Posts the login form of a fresh flow as if from `client` (through the proxy on
/// loopback, which adds `x-forwarded-for`); the status.
async fn post_from_network(world: &World, client: &str, password: &str) -> u16 {
    let mut browser = Browser::new().expect("browser");
    let flow = world.open_form(&mut browser, "net").await;
    let nonce = browser
        .cookie("__Host-tessera-preauth")
        .expect("pre-login cookie")
        .to_owned();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(world.stack.url("/login"))
        .header("cookie", format!("__Host-tessera-preauth={nonce}"))
        .header("x-forwarded-for", format!("192.0.2.1, {client}"))
        .form(&[
            ("flow", flow.as_str()),
            ("username", "alice"),
            ("password", password),
        ])
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_one_network_do_not_lock_the_person_out_elsewhere() {
    let world = world_with(|c| {
        c.account_failures_before_backoff = 3;
        c.client_ip_header = Some("x-forwarded-for".into());
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(post_from_network(&world, "198.51.100.7", "guess").await);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "the guesser waits");
    assert_eq!(
        post_from_network(&world, "203.0.113.5", PASSWORD).await,
        303,
        "alice, from her own network, signs in at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_header_from_a_peer_that_is_not_a_trusted_proxy_buys_no_attempts() {
    let world = world_with(|c| {
        c.attempts_per_ip_per_minute = 3;
        c.client_ip_header = Some("x-forwarded-for".into());
        c.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(post_from_network(&world, &format!("198.51.100.{i}"), "guess").await);
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429],
        "every post counts against the real peer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_second_factor_codes_lock_the_second_factor_for_every_new_flow() {
    let world = world_with(|c| c.totp_failures_before_backoff = 5).await;
    let (secret, _) =
        tessera_login::admin_cli::enroll_totp(&world.stack.login.directory, "alice", "Tessera")
            .await
            .expect("enrolled");
    let raw = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("base32");
    let now = world.stack.login.clock.now().0 / 1000;
    let right = format!("{:06}", code_at(&raw, now / STEP_SECONDS));
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        // A new browser and flow each time: nothing held by a flow or a replica resets it.
        let mut browser = Browser::new().expect("browser");
        let step = world.sign_in(&mut browser, &Pkce::new("t")).await;
        let flow = step.form_field("flow").expect("flow");
        let answer = browser
            .post(
                &world.stack.url("/login/totp"),
                &[("flow", &flow), ("code", wrong)],
            )
            .await
            .expect("post");
        assert_eq!(answer.status, 401);
    }
    let mut browser = Browser::new().expect("browser");
    let step = world.sign_in(&mut browser, &Pkce::new("t")).await;
    let flow = step.form_field("flow").expect("flow");
    let locked = browser
        .post(
            &world.stack.url("/login/totp"),
            &[("flow", &flow), ("code", &right)],
        )
        .await
        .expect("post");
    assert_eq!(
        locked.status, 429,
        "even the right code waits: {}",
        locked.body
    );
    assert!(locked.headers.contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_fields_are_refused_before_the_limiter_and_the_hasher() {
    let world = world_with(|c| c.account_failures_before_backoff = 1).await;
    let mut browser = Browser::new().expect("browser");
    let form = browser
        .get(&world.authorize_url(&Pkce::new("big"), &[]))
        .await
        .expect("authorize");
    let flow = form.form_field("flow").expect("flow");
    let long_password = "p".repeat(50_000);
    let answer = browser
        .post(
            &world.stack.url("/login"),
            &[
                ("flow", &flow),
                ("username", "alice"),
                ("password", &long_password),
            ],
        )
        .await
        .expect("post");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.contains("password is longer than 1024"),
        "{}",
        answer.body
    );
    let long_name = "a".repeat(10_000);
    let answer = world
        .post_password(&mut browser, &flow, &long_name, "x")
        .await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.contains("user name is longer than 100"),
        "{}",
        answer.body
    );
    // The server closes a connection whose body it refused to read, so this post goes
    // through a browser of its own (same pre-login cookie, its own connection).
    let huge = "p".repeat(100_000);
    let mut sender = Browser::new().expect("browser");
    sender.set_cookie(
        "__Host-tessera-preauth",
        browser.cookie("__Host-tessera-preauth").expect("nonce"),
    );
    let answer = world
        .post_password(&mut sender, &flow, "alice", &huge)
        .await;
    assert_eq!(answer.status, 413);
    assert!(
        answer.body.contains("far larger than any sign-in form"),
        "{}",
        answer.body
    );
    assert_eq!(
        world.stack.login.metrics.logins.get("bad_credentials"),
        0,
        "nothing was hashed"
    );
    let answer = world
        .post_password(&mut browser, &flow, "alice", PASSWORD)
        .await;
    assert_eq!(
        answer.status, 303,
        "no failure was counted: {}",
        answer.body
    );
}
