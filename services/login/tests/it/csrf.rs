//! Login CSRF: a sign-in form is bound to the browser it was shown to, and posts that
//! come from another site are refused, so nobody can plant a session in a victim's
//! browser.

use tessera_testkit::Browser;

use crate::support::{world, Pkce, PASSWORD};

const CENTRAL: &str = "__Host-tessera-central";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_of_the_login_form_is_refused_and_sets_no_cookie() {
    let world = world().await;
    let mut attacker = Browser::new().expect("browser");
    let flow = world.open_form(&mut attacker, "evil").await;

    let mut victim = Browser::new().expect("browser");
    let answer = victim
        .post_from(
            "https://evil.example",
            &world.stack.url("/login"),
            &[
                ("flow", &flow),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await
        .expect("post");
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(
        answer.body.contains("came from another site"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("choose Sign in"), "says what to do");
    assert!(victim.cookie(CENTRAL).is_none(), "no session was planted");
    assert!(answer.location().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_fetched_by_another_browser_is_refused_even_without_cross_site_headers() {
    let world = world().await;
    let mut attacker = Browser::new().expect("browser");
    let flow = world.open_form(&mut attacker, "evil").await;

    // The victim holds a pre-login cookie of its own; the attacker's flow names another.
    let mut victim = Browser::new().expect("browser");
    victim
        .get(&world.authorize_url(&Pkce::new("victim"), &[]))
        .await
        .expect("authorize");
    for browser in [&mut victim, &mut Browser::new().expect("browser")] {
        let answer = browser
            .post(
                &world.stack.url("/login"),
                &[
                    ("flow", &flow),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await
            .expect("post");
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(
            answer.body.contains("belongs to another browser"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains("Start again"), "offers a way on");
        assert!(browser.cookie(CENTRAL).is_none(), "no session was planted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_open_in_two_tabs_of_one_browser_both_work() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let first = browser
        .get(&world.authorize_url(&Pkce::new("tab1"), &[]))
        .await
        .expect("authorize");
    let second = browser
        .get(&world.authorize_url(&Pkce::new("tab2"), &[]))
        .await
        .expect("authorize");
    assert!(
        second
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("__Host-tessera-preauth=")),
        "the held nonce is reused"
    );
    let first = first.form_field("flow").expect("flow");
    let answer = world
        .post_password(&mut browser, &first, "alice", PASSWORD)
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(browser.cookie(CENTRAL).is_some());
}
