//! The whole thing in a real browser: headless Chromium signs in on wiki-a through the
//! form, is signed in on wiki-b without one, signs out on wiki-b and is signed out on
//! wiki-a. Screenshots go to `target/screenshots/` for people to look at.

use std::path::PathBuf;

use tessera_testkit::{Chromium, LoginStack};

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
    browser.close().await;
}
