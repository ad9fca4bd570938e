//! The whole thing in a real browser: headless Chromium signs in on wiki-a through the
//! form, is signed in on wiki-b without one, signs out on wiki-b and is signed out on
//! wiki-a, and a page on another site that auto-posts the login form with an attacker's
//! credentials is refused. Screenshots go to `target/screenshots/` for people to look at.

use std::path::PathBuf;

use tessera_login::test_util::LoginStack;
use tessera_testkit::Chromium;

use crate::support::PASSWORD;

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_sign_on_and_sign_out_across_two_sites_in_headless_chromium() {
    let mut stack = LoginStack::start(|_| {}).await.expect("stack");
    stack.add_user("alice", PASSWORD).await.expect("user");
    let wiki_a = stack.start_demo_site("wiki-a").await.expect("wiki-a");
    let wiki_b = stack.start_demo_site("wiki-b").await.expect("wiki-b");
    let browser = Chromium::start()
        .await
        .expect("headless Chromium (apt-get install -y chromium chromium-driver)");

    browser
        .goto(&format!("{}/", wiki_a.url))
        .await
        .expect("wiki-a");
    browser
        .wait_for_text("#who", "not signed in")
        .await
        .expect("signed out at first");
    let sign_in = browser.find("#signin").await.expect("sign-in button");
    browser.click(&sign_in).await.expect("click");
    let username = browser.find("#username").await.expect("login form");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .starts_with(&stack.base_url));
    browser
        .screenshot(&screenshot_dir().join("login-page.png"))
        .await
        .expect("screenshot");
    browser.type_into(&username, "alice").await.expect("type");
    let password = browser.find("#password").await.expect("password");
    browser.type_into(&password, PASSWORD).await.expect("type");
    let submit = browser.find("button[type=submit]").await.expect("submit");
    browser.click(&submit).await.expect("click");
    browser
        .wait_for_text("#who", "Signed in as alice")
        .await
        .expect("signed in on wiki-a");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .starts_with(&wiki_a.url));
    browser
        .screenshot(&screenshot_dir().join("wiki-a-signed-in.png"))
        .await
        .expect("screenshot");
    let cookies = browser.cookies().await.expect("cookies");
    let central = cookies
        .iter()
        .find(|c| c["name"] == "__Host-tessera-central")
        .expect("the central cookie was accepted by the browser");
    assert_eq!(central["httpOnly"], true);
    assert_eq!(central["secure"], true);
    assert_eq!(central["sameSite"], "Lax");

    browser
        .goto(&format!("{}/", wiki_b.url))
        .await
        .expect("wiki-b");
    browser
        .wait_for_text("#who", "not signed in")
        .await
        .expect("no session on wiki-b yet");
    let sign_in = browser.find("#signin").await.expect("sign-in");
    browser.click(&sign_in).await.expect("click");
    browser
        .wait_for_text("#who", "Signed in as alice")
        .await
        .expect("signed in on wiki-b without a form");
    browser
        .screenshot(&screenshot_dir().join("wiki-b-signed-in.png"))
        .await
        .expect("screenshot");

    let sign_out = browser.find("#signout").await.expect("sign-out");
    browser.click(&sign_out).await.expect("click");
    browser
        .wait_for_text("#who", "not signed in")
        .await
        .expect("signed out of wiki-b");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .starts_with(&wiki_b.url));

    browser
        .goto(&format!("{}/", wiki_a.url))
        .await
        .expect("wiki-a");
    browser
        .wait_for_text("#who", "not signed in")
        .await
        .expect("signed out of wiki-a too");
    let sign_in = browser.find("#signin").await.expect("sign-in");
    browser.click(&sign_in).await.expect("click");
    browser
        .find("#username")
        .await
        .expect("the form again: no automatic sign-in");

    // Login CSRF: a page on another site posts the login form with the attacker's
    // credentials and a flow the attacker fetched.
    stack.add_user("mallory", PASSWORD).await.expect("user");
    let mut attacker = tessera_testkit::Browser::new().expect("browser");
    let form = attacker
        .visit(&format!("{}/signin", wiki_a.url))
        .await
        .expect("the attacker's form");
    let flow = form.form_field("flow").expect("flow");
    let evil = evil_site(&stack.url("/login"), &flow).await;
    browser.goto(&evil).await.expect("evil page");
    browser
        .wait_for_text("h1", "came from another site")
        .await
        .expect("the cross-site post is refused");
    browser
        .screenshot(&screenshot_dir().join("cross-site-post-refused.png"))
        .await
        .expect("screenshot");
    let cookies = browser.cookies().await.expect("cookies");
    assert!(
        cookies
            .iter()
            .all(|c| c["name"] != "__Host-tessera-central"),
        "no session was planted: {cookies:?}"
    );
    browser
        .goto(&format!("{}/", wiki_a.url))
        .await
        .expect("wiki-a");
    browser
        .wait_for_text("#who", "not signed in")
        .await
        .expect("still signed out");
    browser.close().await;
}

/// Serves, on another host (127.0.0.1, not localhost), a page that posts the login form
/// to `action` by itself; its URL.
async fn evil_site(action: &str, flow: &str) -> String {
    let page = format!(
        "<!doctype html><form method=\"post\" action=\"{action}\">\
<input name=\"flow\" value=\"{flow}\"><input name=\"username\" value=\"mallory\">\
<input name=\"password\" value=\"{PASSWORD}\"></form><script>document.forms[0].submit()</script>"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let url = format!(
        "http://127.0.0.1:{}/",
        listener.local_addr().expect("addr").port()
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
