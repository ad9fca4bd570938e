//! The sign-in form: no storage for anonymous visitors (rule F6), tamper-proof state,
//! one answer for every credential failure, rate limits, TOTP.

use tessera_login::totp::{code_at, STEP_SECONDS};
use tessera_testkit::Browser;

use crate::support::{world, world_with, Pkce, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_anonymous_form_requests_store_nothing_in_the_stash() {
    let world = world_with(|c| {
        c.attempts_per_ip_per_minute = 10_000;
        c.account_failures_before_backoff = 10_000;
    })
    .await;
    let before = world.stash_entries().await;
    let mut browser = Browser::new().expect("browser");
    let mut last_flow = String::new();
    for i in 0..2_000 {
        let form = browser
            .get(&world.authorize_url(&Pkce::new(&format!("bot{i}")), &[]))
            .await
            .expect("authorize");
        assert_eq!(form.status, 200);
        last_flow = form.form_field("flow").expect("flow");
    }
    for i in 0..500 {
        let answer = browser
            .post(
                &world.stack.url("/login"),
                &[
                    ("flow", &format!("{last_flow}{i}")),
                    ("username", "alice"),
                    ("password", "x"),
                ],
            )
            .await
            .expect("post");
        assert_eq!(answer.status, 400, "tampered flow");
    }
    for _ in 0..20 {
        let answer = browser
            .post(
                &world.stack.url("/login"),
                &[
                    ("flow", &last_flow),
                    ("username", "alice"),
                    ("password", "wrong password"),
                ],
            )
            .await
            .expect("post");
        assert_eq!(answer.status, 401);
    }
    assert_eq!(
        world.stash_entries().await,
        before,
        "anonymous traffic stored nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_flow_value_is_refused_with_a_page_that_says_what_to_do() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let form = browser
        .get(&world.authorize_url(&Pkce::new("t"), &[]))
        .await
        .expect("authorize");
    let flow = form.form_field("flow").expect("flow");
    let (payload, tag) = flow.split_once('.').expect("two parts");
    let forged = format!("{}A.{tag}", &payload[..payload.len() - 1]);
    let answer = browser
        .post(
            &world.stack.url("/login"),
            &[
                ("flow", &forged),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await
        .expect("post");
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.contains("changed or damaged"),
        "{}",
        answer.body
    );
    assert!(
        answer.set_cookies().is_empty(),
        "no session for a forged form"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let form = browser
        .get(&world.authorize_url(&Pkce::new("u"), &[]))
        .await
        .expect("authorize");
    let flow = form.form_field("flow").expect("flow");
    let mut answers = Vec::new();
    for username in ["alice", "mallory"] {
        let answer = browser
            .post(
                &world.stack.url("/login"),
                &[
                    ("flow", &flow),
                    ("username", username),
                    ("password", "not the password"),
                ],
            )
            .await
            .expect("post");
        let message = answer
            .body
            .split("role=\"alert\" id=\"error\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .expect("error message")
            .to_owned();
        answers.push((answer.status, message));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_attempts_from_one_ip_or_on_one_account_get_429_with_retry_after() {
    let world = world_with(|c| {
        c.attempts_per_ip_per_minute = 5;
        c.account_failures_before_backoff = 3;
    })
    .await;
    let mut browser = Browser::new().expect("browser");
    let form = browser
        .get(&world.authorize_url(&Pkce::new("l"), &[]))
        .await
        .expect("authorize");
    let flow = form.form_field("flow").expect("flow");
    let nonce = browser
        .cookie("__Host-tessera-preauth")
        .expect("pre-login cookie")
        .to_owned();
    let attempt = |user: &'static str| {
        let flow = flow.clone();
        let url = world.stack.url("/login");
        let nonce = nonce.clone();
        async move {
            let mut browser = Browser::new().expect("browser");
            browser.set_cookie("__Host-tessera-preauth", &nonce);
            browser
                .post(
                    &url,
                    &[
                        ("flow", &flow),
                        ("username", user),
                        ("password", "wrong password"),
                    ],
                )
                .await
                .expect("post")
        }
    };
    for _ in 0..3 {
        assert_eq!(attempt("alice").await.status, 401);
    }
    let limited = attempt("alice").await;
    assert_eq!(limited.status, 429, "account limit");
    assert!(limited.body.contains("for this account"));
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        attempt("bob").await.status,
        401,
        "other accounts still get their attempts"
    );
    let limited = attempt("carol").await;
    assert_eq!(limited.status, 429, "the IP limit of 5 per minute");
    assert!(limited.body.contains("from your network"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_user_needs_a_totp_code_that_works_only_once() {
    let world = world().await;
    let (secret, uri) =
        tessera_login::admin_cli::enroll_totp(&world.stack.login.directory, "alice", "Tessera")
            .await
            .expect("enrolled");
    assert!(uri.starts_with("otpauth://totp/"));
    let raw = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .expect("base32");
    let now = world.stack.login.clock.now().0 / 1000;
    let code = format!("{:06}", code_at(&raw, now / STEP_SECONDS));

    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("totp");
    let step = world.sign_in(&mut browser, &pkce).await;
    assert_eq!(step.status, 200, "a second step, not a session yet");
    assert!(step.set_cookies().is_empty());
    assert!(step.body.contains("name=\"code\""), "{}", step.body);
    let flow = step.form_field("flow").expect("flow");

    let wrong = browser
        .post(
            &world.stack.url("/login/totp"),
            &[("flow", &flow), ("code", "000000")],
        )
        .await
        .expect("post");
    if code != "000000" {
        assert_eq!(wrong.status, 401);
    }
    let done = browser
        .post(
            &world.stack.url("/login/totp"),
            &[("flow", &flow), ("code", &code)],
        )
        .await
        .expect("post");
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location_param("code").is_some());

    let mut other = Browser::new().expect("browser");
    let step = world.sign_in(&mut other, &Pkce::new("again")).await;
    let flow = step.form_field("flow").expect("flow");
    let replay = other
        .post(
            &world.stack.url("/login/totp"),
            &[("flow", &flow), ("code", &code)],
        )
        .await
        .expect("post");
    assert_eq!(replay.status, 401);
    assert!(replay.body.contains("already used"), "{}", replay.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_accessible_self_contained_and_say_development_mode_loudly() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let form = browser
        .get(&world.authorize_url(&Pkce::new("a"), &[]))
        .await
        .expect("authorize");
    for needle in [
        "<html lang=\"en\"",
        "<label for=\"username\">",
        "<label for=\"password\">",
        "autocomplete=\"current-password\"",
        "Development mode",
    ] {
        assert!(form.body.contains(needle), "missing {needle}");
    }
    for external in ["src=\"http", "href=\"http", "<script", "<link"] {
        assert!(!form.body.contains(external), "external asset {external}");
    }
    let csp = form.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("default-src 'none'"));
}

/// Central-session cookies a bot made up (ten thousand dots, bytes that are not UTF-8,
/// a key URL) are no session: the form is shown, nothing fails, nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_session_cookies_are_no_session_and_cost_nothing() {
    let world = world().await;
    let before = world.stash_entries().await;
    let name = tessera_verify::cookie::cookie_name("central");
    let url = world.authorize_url(&Pkce::new("bot"), &[]);
    let mut not_utf8 = format!("{name}=").into_bytes();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, b'.', 0x80, b'.', 0xbf]);
    let cookies = [
        format!("{name}={}", ".".repeat(10_000)).into_bytes(),
        not_utf8,
        format!("{name}=eyJqa3UiOiJodHRwOi8vMTI3LjAuMC4xOjkvIn0.e30.AA").into_bytes(),
    ];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for cookie in cookies {
        let response = http
            .get(&url)
            .header(
                reqwest::header::COOKIE,
                reqwest::header::HeaderValue::from_bytes(&cookie).expect("header bytes"),
            )
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status().as_u16(), 200, "the form, not an error");
        let body = response.text().await.expect("body");
        assert!(body.contains("name=\"password\""), "{body}");
    }
    assert_eq!(world.stash_entries().await, before);
}
