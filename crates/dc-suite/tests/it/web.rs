//! Scenarios 1-3 at the web tier: people signing in through the login services and demo
//! sites of both datacenters, one directory in PostgreSQL behind them.

use std::time::Duration;

use tessera_clock::{Clock as _, SystemClock};
use tessera_dc_suite::web::{site_of, site_origin};
use tessera_dc_suite::DatacenterSpec;

use crate::people::{sign_in_on_site, sign_out_on_site, Pkce, SiteBackEnd, SIGNED_IN, SIGNED_OUT};
use crate::support::{deploy, in_batches};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sign_in_codes_each_way_are_minted_by_one_login_and_redeemed_at_the_other() {
    let dcs = deploy(DatacenterSpec::embedded(), DatacenterSpec::redis()).await;
    for (minting, redeeming) in [("dc-a", "dc-b"), ("dc-b", "dc-a")] {
        // A person near the minting datacenter signs in on its site with the form...
        let mut browser = dcs.browser_near(minting).expect("browser");
        let page = sign_in_on_site(&mut browser, &dcs, &site_origin(&site_of(minting))).await;
        assert!(page.contains(SIGNED_IN), "{page}");
        // ...and is sent, by SSO hops, to the site of the other datacenter 1,000 times.
        let cookies = browser.cookie_header();
        let site = SiteBackEnd::new(dcs.directory.site(&site_of(redeeming)));
        let minting_login = dcs.login_base(minting).expect("login");
        let redeeming_login = dcs.login_base(redeeming).expect("login");
        let codes = in_batches(1000, |i| {
            let (site, login, cookies) = (site.clone(), minting_login.clone(), cookies.clone());
            async move {
                let pkce = Pkce::new(&format!("{i}"));
                let code = site.code(&login, &cookies, &pkce).await;
                (code, pkce)
            }
        })
        .await;
        assert!(
            codes
                .iter()
                .all(|(code, _)| code.starts_with(&format!("{minting}."))),
            "codes are minted in {minting}"
        );
        let answers = in_batches(1000, |i| {
            let (site, login) = (site.clone(), redeeming_login.clone());
            let (code, pkce) = codes[i].clone();
            async move { site.redeem(&login, &code, &pkce).await }
        })
        .await;
        let redeemed = answers
            .iter()
            .filter(|(status, body)| *status == 200 && body["id_token"].is_string())
            .count();
        println!(
            "{minting} -> {redeeming}: 1000 codes minted by {minting}'s login at once, {redeemed} redeemed at {redeeming}'s"
        );
        assert_eq!(redeemed, 1000, "{:?}", answers.iter().find(|a| a.0 != 200));
        // Each once only: a second redemption anywhere is refused.
        for login in [&minting_login, &redeeming_login] {
            let (code, pkce) = &codes[0];
            let (status, body) = site.redeem(login, code, pkce).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_raced_by_fifty_redeemers_in_each_login_has_one_winner_whose_session_the_replays_revoke(
) {
    let dcs = deploy(DatacenterSpec::embedded(), DatacenterSpec::embedded()).await;
    let mut browser = dcs.browser_near("dc-a").expect("browser");
    let page = sign_in_on_site(&mut browser, &dcs, &site_origin("wiki-a")).await;
    assert!(page.contains(SIGNED_IN), "{page}");
    let site = SiteBackEnd::new(dcs.directory.site("wiki-b"));
    let logins = [
        dcs.login_base("dc-a").expect("login"),
        dcs.login_base("dc-b").expect("login"),
    ];
    let pkce = Pkce::new("raced");
    let code = site.code(&logins[0], &browser.cookie_header(), &pkce).await;

    let racers: Vec<_> = (0..100)
        .map(|i| {
            let (site, login, code, pkce) = (
                site.clone(),
                logins[i % 2].clone(),
                code.clone(),
                pkce.clone(),
            );
            tokio::spawn(async move { site.redeem(&login, &code, &pkce).await })
        })
        .collect();
    let mut winners = Vec::new();
    let mut refused = 0;
    for racer in racers {
        let (status, body) = racer.await.expect("racer");
        match status {
            200 => winners.push(body),
            400 if body["error"] == "invalid_grant" => refused += 1,
            other => panic!("a redemption answered {other}: {body}"),
        }
    }
    println!(
        "one dc-a code, 50 redeemers at each login: {} succeeded, {refused} refused",
        winners.len()
    );
    assert_eq!((winners.len(), refused), (1, 99));

    // The replays revoke what the winner got, in both datacenters.
    let access = winners[0]["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    tessera_testkit::wait_until(
        "the winner's session is revoked in both datacenters",
        || {
            let (site, logins, access) = (&site, &logins, &access);
            async move {
                site.userinfo_status(&logins[0], access).await == 401
                    && site.userinfo_status(&logins[1], access).await == 401
            }
        },
    )
    .await;
    let refresh = winners[0]["refresh_token"].as_str().expect("refresh");
    let (status, body) = site
        .token(
            &logins[1],
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    println!("the winner's session: revoked in dc-a and dc-b, its refresh refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_in_one_datacenter_signs_the_person_out_of_the_demo_site_in_the_other() {
    let dcs = deploy(DatacenterSpec::embedded(), DatacenterSpec::embedded()).await;
    let (wiki_a, wiki_b) = (site_origin("wiki-a"), site_origin("wiki-b"));
    let near_a = dcs.routes_near("dc-a").expect("routes");
    // Lags by which login served the SSO hop to wiki-b (so which stash indexed that site
    // session): dc-a's tells wiki-b itself; dc-b's hears of the sign-out from its
    // session service, which follows dc-a's.
    let mut lags: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for i in 0..100 {
        let mut browser = tessera_testkit::Browser::routed(&near_a).expect("browser");
        let page = sign_in_on_site(&mut browser, &dcs, &wiki_a).await;
        assert!(page.contains(SIGNED_IN), "{page}");
        let hop = ["dc-a", "dc-b"][i % 2];
        browser.set_routes(&dcs.routes_near(hop).expect("routes"));
        let start = browser
            .get(&format!("{wiki_b}/signin"))
            .await
            .expect("signin");
        let page = browser.follow(start).await.expect("SSO hop");
        assert!(
            page.url.starts_with(&wiki_b) && page.body.contains(SIGNED_IN),
            "signed in on wiki-b without a form, through {hop}: {} {}",
            page.url,
            page.body
        );

        browser.set_routes(&near_a);
        let started = SystemClock.instant();
        let page = sign_out_on_site(&mut browser, &wiki_a).await;
        assert!(page.contains("You are not signed in"), "{page}");
        // wiki-b still holds its cookies; its verifier must refuse them once told.
        loop {
            let page = browser.get(&format!("{wiki_b}/")).await.expect("wiki-b");
            if page.body.contains(SIGNED_OUT) {
                break;
            }
            assert!(page.body.contains(SIGNED_IN), "{}", page.body);
            assert!(
                started.elapsed() < tessera_testkit::WAIT_LIMIT,
                "wiki-b never heard of sign-out {i}"
            );
            // The lag's resolution: a poll every 5 ms costs the machine little.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lags[i % 2].push(started.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let summary = |lags: &mut Vec<Duration>| {
        lags.sort();
        let at = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).saturating_sub(1)];
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(at(0.50)),
            ms(at(0.99)),
            ms(lags[lags.len() - 1])
        )
    };
    let mut all: Vec<Duration> = lags.iter().flatten().copied().collect();
    println!(
        "100 sign-outs on wiki-a (dc-a), wiki-b (dc-b) refusing the session after: {}",
        summary(&mut all)
    );
    println!(
        "  50 whose wiki-b hop dc-a's login served: {}",
        summary(&mut lags[0])
    );
    println!(
        "  50 whose wiki-b hop dc-b's login served: {}",
        summary(&mut lags[1])
    );
    assert_eq!(all.len(), 100);
    for dc in ["dc-a", "dc-b"] {
        let metrics = dcs.login_metrics(dc).await.expect("metrics");
        let outcome = |outcome: &str| {
            let lines: Vec<&str> = metrics
                .lines()
                .filter(|line| line.contains(&format!("outcome=\"{outcome}\"")))
                .collect();
            tessera_testkit::metric_sum(&lines.join("\n"), "tessera_login_backchannel_logout_total")
        };
        let (delivered, failed) = (
            outcome("delivered"),
            outcome("refused") + outcome("unreachable"),
        );
        println!(
            "{dc}'s login: {} back-channel logouts delivered, {} failed",
            delivered as u64, failed as u64
        );
        // dc-a's tells wiki-a 100 times and wiki-b 50; dc-b's tells wiki-b 50 times.
        let expected = if dc == "dc-a" { 150.0 } else { 50.0 };
        assert_eq!((delivered, failed), (expected, 0.0));
    }
}
