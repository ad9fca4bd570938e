//! Logout (rule F2), back-channel logout to the demo sites, and the demo site's silent
//! retry of a lost code (rule F1).

use tessera_login::test_util::LoginStack;
use tessera_testkit::Browser;

use crate::support::{world, Pkce, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_logout_authorize_shows_the_form_even_when_the_old_cookie_is_replayed() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("l");
    let code = world.code(&mut browser, &pkce).await;
    let (_, tokens) = world.redeem(&code, &pkce).await;
    let old_cookie = browser
        .cookie("__Host-tessera-central")
        .expect("central")
        .to_owned();
    let id_token = tokens["id_token"].as_str().expect("id token");

    let out = browser
        .get(&format!(
            "{}?id_token_hint={id_token}&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A9%2F&state=bye",
            world.stack.url("/logout")
        ))
        .await
        .expect("logout");
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(
        out.location().as_deref(),
        Some("http://localhost:9/?state=bye")
    );
    let deletions = out.set_cookies();
    assert!(deletions
        .iter()
        .any(|c| c.starts_with("__Host-tessera-central=deleted;")
            && c.contains("Path=/; Secure; HttpOnly; SameSite=Lax")
            && c.contains("Max-Age=0")));
    assert!(browser.cookie("__Host-tessera-central").is_none());

    let (status, _) = world
        .userinfo(tokens["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(status, 401, "the site session of the family is revoked");

    let form = browser
        .get(&world.authorize_url(&Pkce::new("n"), &[]))
        .await
        .expect("authorize");
    assert_eq!(form.status, 200, "the form, not an automatic sign-in");
    browser.set_cookie("__Host-tessera-central", &old_cookie);
    let replayed = browser
        .get(&world.authorize_url(&Pkce::new("m"), &[]))
        .await
        .expect("authorize");
    assert_eq!(
        replayed.status, 200,
        "a replayed old cookie cannot resurrect the session"
    );
    assert!(replayed.body.contains("name=\"password\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_without_a_hint_asks_first_and_an_unregistered_return_address_is_refused() {
    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    world.code(&mut browser, &Pkce::new("c")).await;
    let ask = browser
        .get(&world.stack.url("/logout"))
        .await
        .expect("logout");
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("Sign out?"));
    let flow = ask.form_field("flow").expect("flow");
    let evil =
        browser
            .get(&world.stack.url(
                "/logout?client_id=wiki-a&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            ))
            .await
            .expect("logout");
    assert_eq!(evil.status, 400);
    assert!(evil.location().is_none());
    let done = browser
        .post(&world.stack.url("/logout"), &[("flow", &flow)])
        .await
        .expect("confirm");
    assert_eq!(done.status, 200);
    assert!(done.body.contains("You are signed out"));
    let form = browser
        .get(&world.authorize_url(&Pkce::new("d"), &[]))
        .await
        .expect("authorize");
    assert_eq!(form.status, 200);
}

/// Signs in on `site` through its own pages and the login form; the page after.
async fn sign_in_on_site(browser: &mut Browser, stack: &LoginStack, site: &str) -> String {
    let start = browser
        .get(&format!("{site}/signin"))
        .await
        .expect("signin");
    let form = browser.follow(start).await.expect("to the form");
    if form.url.starts_with(site) {
        return form.body;
    }
    assert!(form.url.starts_with(&stack.base_url), "{}", form.url);
    let flow = form.form_field("flow").expect("flow");
    let back = browser
        .post(
            &stack.url("/login"),
            &[
                ("flow", &flow),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await
        .expect("login");
    browser.follow(back).await.expect("back on the site").body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_on_one_demo_site_signs_in_on_the_other_and_signing_out_of_either_ends_both() {
    let mut stack = LoginStack::start(|_| {}).await.expect("stack");
    stack.add_user("alice", PASSWORD).await.expect("user");
    let wiki_a = stack.start_demo_site("wiki-a").await.expect("wiki-a");
    let wiki_b = stack.start_demo_site("wiki-b").await.expect("wiki-b");
    let mut browser = Browser::new().expect("browser");

    let page = sign_in_on_site(&mut browser, &stack, &wiki_a.url).await;
    assert!(
        page.contains("Signed in as <strong>alice</strong>"),
        "{page}"
    );
    let start = browser
        .get(&format!("{}/signin", wiki_b.url))
        .await
        .expect("signin");
    let page = browser.follow(start).await.expect("SSO");
    assert!(
        page.url.starts_with(&wiki_b.url),
        "no form on the way: {}",
        page.url
    );
    assert!(
        page.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        page.body
    );

    let out = browser
        .post(&format!("{}/signout", wiki_b.url), &[])
        .await
        .expect("signout");
    assert!(
        !out.body.contains("id_token_hint=") && out.location().is_none(),
        "the ID token never travels in a URL"
    );
    let fields: Vec<(String, String)> = ["client_id", "post_logout_redirect_uri", "id_token_hint"]
        .iter()
        .map(|name| (name.to_string(), out.form_field(name).expect(name)))
        .collect();
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let posted = browser
        .post_from(&wiki_b.url, &stack.url("/logout"), &fields)
        .await
        .expect("logout post");
    let after = browser.follow(posted).await.expect("signed out");
    assert!(after.url.starts_with(&wiki_b.url));
    assert!(
        after.body.contains("You are not signed in"),
        "{}",
        after.body
    );
    let delivered = stack.login.metrics.backchannel.get("delivered");
    assert_eq!(delivered, 2, "a logout token reached both sites");

    // wiki-a still holds its cookie; the back channel revoked the session behind it.
    let page = browser
        .get(&format!("{}/", wiki_a.url))
        .await
        .expect("wiki-a");
    assert!(page.body.contains("You were signed out"), "{}", page.body);
    let form = browser
        .visit(&format!("{}/signin", wiki_a.url))
        .await
        .expect("form");
    assert!(
        form.url.starts_with(&stack.base_url),
        "a form, not an automatic sign-in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_code_is_retried_once_silently_and_without_a_session_the_page_offers_sign_in() {
    let mut stack = LoginStack::start(|_| {}).await.expect("stack");
    stack.add_user("alice", PASSWORD).await.expect("user");
    let wiki = stack.start_demo_site("wiki-a").await.expect("wiki-a");
    let mut browser = Browser::new().expect("browser");
    let start = browser
        .get(&format!("{}/signin", wiki.url))
        .await
        .expect("signin");
    let form = browser.follow(start).await.expect("form");
    let flow = form.form_field("flow").expect("flow");
    let back = browser
        .post(
            &stack.url("/login"),
            &[
                ("flow", &flow),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await
        .expect("login");
    // The code is lost on the way (as evicted codes were): the site gets an unknown one.
    let code = back.location_param("code").expect("code");
    let lost = back
        .location()
        .expect("location")
        .replace(&code, "dc1.AAAAAAAAAAAAAAAAAAAAAA");
    let page = browser.visit(&lost).await.expect("retried");
    assert!(
        page.body.contains("Signed in as <strong>alice</strong>"),
        "retried silently: {}",
        page.body
    );

    // Without a central session the retry cannot succeed: the page says so and offers a button.
    let mut fresh = Browser::new().expect("browser");
    let start = fresh
        .get(&format!("{}/signin", wiki.url))
        .await
        .expect("signin");
    let flow_cookie = fresh
        .cookie("__Host-tessera-wiki-a-flow")
        .expect("flow cookie")
        .to_owned();
    let state = flow_cookie.split('.').next().expect("state").to_owned();
    assert!(start.location().is_some());
    let callback = format!(
        "{}/callback?code=dc1.AAAAAAAAAAAAAAAAAAAAAA&state={state}",
        wiki.url
    );
    let page = fresh.visit(&callback).await.expect("end");
    assert!(page.url.starts_with(&wiki.url));
    assert!(page.body.contains("Sign in again"), "{}", page.body);
    assert!(page.body.contains("no longer signed in"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_hint_naming_another_session_asks_first_and_ends_only_what_is_confirmed() {
    let world = world().await;
    let mut owner = Browser::new().expect("browser");
    let pkce = Pkce::new("owner");
    let code = world.code(&mut owner, &pkce).await;
    let (_, owners) = world.redeem(&code, &pkce).await;
    let owners_hint = owners["id_token"].as_str().expect("id token");

    let mut other = Browser::new().expect("browser");
    let pkce = Pkce::new("other");
    let code = world.code(&mut other, &pkce).await;
    let (_, others) = world.redeem(&code, &pkce).await;

    let ask = other
        .get(&format!(
            "{}?id_token_hint={owners_hint}",
            world.stack.url("/logout")
        ))
        .await
        .expect("logout");
    assert_eq!(ask.status, 200, "asked, not signed out: {}", ask.body);
    assert!(ask.body.contains("Sign out?"), "{}", ask.body);
    assert!(
        !ask.body.contains("You are signed out"),
        "no sign-out is claimed"
    );
    assert!(ask.set_cookies().is_empty(), "no cookie was deleted");
    assert!(other.cookie("__Host-tessera-central").is_some());
    let at = |tokens: &serde_json::Value| tokens["access_token"].as_str().expect("at").to_owned();
    assert_eq!(
        world.userinfo(&at(&owners)).await.0,
        200,
        "the named session lives"
    );
    assert_eq!(
        world.userinfo(&at(&others)).await.0,
        200,
        "this browser's session lives"
    );

    let flow = ask.form_field("flow").expect("flow");
    let done = other
        .post(&world.stack.url("/logout"), &[("flow", &flow)])
        .await
        .expect("confirm");
    assert!(done.body.contains("You are signed out"), "{}", done.body);
    assert_eq!(
        world.userinfo(&at(&others)).await.0,
        401,
        "the confirmed sign-out ended this browser's session"
    );
    assert_eq!(
        world.userinfo(&at(&owners)).await.0,
        200,
        "another person's session is not ended by a hint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_without_a_session_says_so_and_the_confirmation_refuses_cross_site_posts() {
    let world = world().await;
    let mut nobody = Browser::new().expect("browser");
    let page = nobody
        .get(&world.stack.url("/logout"))
        .await
        .expect("logout");
    assert!(
        page.body.contains("You were not signed in"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("You are signed out"));

    let mut browser = Browser::new().expect("browser");
    world.code(&mut browser, &Pkce::new("x")).await;
    let ask = browser
        .get(&world.stack.url("/logout"))
        .await
        .expect("logout");
    let flow = ask.form_field("flow").expect("flow");
    let forced = browser
        .post_from(
            "https://evil.example",
            &world.stack.url("/logout"),
            &[("flow", &flow)],
        )
        .await
        .expect("post");
    assert_eq!(forced.status, 403, "{}", forced.body);
    let still = browser
        .get(&world.authorize_url(&Pkce::new("y"), &[]))
        .await
        .expect("authorize");
    assert_eq!(still.status, 303, "still signed in");
}
