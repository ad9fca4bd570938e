//! `just dc-up`'s promise: a person's browser, its resolver pointed at the public fronts,
//! signs in on wiki-a (hosted in dc-a) with the form of dc-a's login, then on wiki-b
//! (hosted in dc-b, redeeming at dc-b's login) without a second form, and signs out of
//! both with one click.

use tessera_dc_suite::web::{people_address, site_of};
use tessera_dc_suite::{DatacenterSpec, Deployment, LOGIN_ORIGIN, USER};
use tessera_testkit::Chromium;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_clicks_through_both_datacenters_in_chromium_as_dc_up_serves_them() {
    let dcs = tokio::task::spawn_blocking(|| {
        Deployment::start_for_people(DatacenterSpec::embedded(), DatacenterSpec::redis())
    })
    .await
    .expect("start task")
    .expect("two datacenters for people");
    let login_host = LOGIN_ORIGIN.trim_start_matches("https://");
    let site = |dc: &str| format!("{}.tessera.test", site_of(dc));
    let resolver = |login_dc: &str| {
        format!(
            "--host-resolver-rules=MAP {login_host} {}, MAP {} {}, MAP {} {}",
            people_address(login_host, login_dc),
            site("dc-a"),
            people_address(&site("dc-a"), "dc-a"),
            site("dc-b"),
            people_address(&site("dc-b"), "dc-b"),
        )
    };
    // The fronts' certificates chain to the deployment's own web CA.
    let browser =
        Chromium::start_with_args(&[resolver("dc-a"), "--ignore-certificate-errors".into()])
            .await
            .expect("headless Chromium");
    browser
        .goto(&format!("https://{}/", site("dc-a")))
        .await
        .expect("wiki-a");
    let sign_in = browser.find("#signin").await.expect("sign-in button");
    browser.click(&sign_in).await.expect("click");
    let username = browser.find("#username").await.expect("the login form");
    assert!(browser
        .current_url()
        .await
        .expect("url")
        .starts_with(LOGIN_ORIGIN));
    browser.type_into(&username, USER).await.expect("type");
    let password = browser.find("#password").await.expect("password");
    browser
        .type_into(&password, &dcs.directory.password)
        .await
        .expect("type");
    let submit = browser.find("button[type=submit]").await.expect("submit");
    browser.click(&submit).await.expect("click");
    browser
        .wait_for_text("#who", "Signed in as alice")
        .await
        .expect("signed in on wiki-a through dc-a's login");
    browser
        .goto(&format!("https://{}/", site("dc-b")))
        .await
        .expect("wiki-b");
    let sign_in = browser.find("#signin").await.expect("sign-in");
    browser.click(&sign_in).await.expect("click");
    browser
        .wait_for_text("#who", "Signed in as alice")
        .await
        .expect("signed in on wiki-b without a form");
    let sign_out = browser.find("#signout").await.expect("sign-out");
    browser.click(&sign_out).await.expect("click");
    browser
        .wait_for_text("#who", "not signed in")
        .await
        .expect("signed out of wiki-b");
    browser
        .goto(&format!("https://{}/", site("dc-a")))
        .await
        .expect("wiki-a");
    browser
        .wait_for_text("#who", "not signed in")
        .await
        .expect("and of wiki-a");
    browser.close().await;
    println!("a person signed in on wiki-a (dc-a) and wiki-b (dc-b) with one form, and out of both with one click");
}
