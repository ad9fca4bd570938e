//! The visitors, as goose scenarios: scrapers, people, returning people, refresh
//! storms and credential stuffers. Every step goes through the demo sites and the login
//! as a browser would: the site's page, its redirect to `/authorize`, the form, the
//! password post, the redirect back with a code, which the site's back end redeems at
//! `/token`, and the signed-in page.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use goose::prelude::*;

use crate::plan::{Mix, Plan};
use crate::stack::Site;
use crate::tally::{Tally, Timeline};
use crate::visitor::{
    cookie_value, fail, form_action, hidden_field, hidden_fields, open_browser, send, visitor, Page,
};

/// How many tabs of one session refresh at once in a storm.
pub const STORM_TABS: usize = 8;
/// Where stuffers come from: this many addresses of TEST-NET-3.
const STUFFING_SOURCES: u64 = 64;
/// Accounts that do not exist, which stuffers try besides the real ones.
const MADE_UP_ACCOUNTS: u64 = 500;

/// The scenarios of `mix`; only the scrapers when `anonymous_only`.
pub fn scenarios(mix: &Mix, anonymous_only: bool) -> Result<Vec<Scenario>, GooseError> {
    let ttl = Plan::get().stack.access_token_seconds;
    // A returning person comes back once the access token has passed its soft expiry.
    let aged = (Duration::from_secs(ttl + 1), Duration::from_secs(ttl + 2));
    let reading = (Duration::from_millis(500), Duration::from_millis(1500));
    let mut all = Vec::new();
    let weight = |kind: &str| {
        if anonymous_only && kind != "scraper" {
            0
        } else {
            mix.weight(kind)
        }
    };
    if weight("scraper") > 0 {
        let weight = if anonymous_only { 1 } else { weight("scraper") };
        all.push(
            scenario!("scraper")
                .set_weight(weight)?
                .register_transaction(
                    transaction!(open_anonymous_browser)
                        .set_on_start()
                        .set_name("open a browser"),
                )
                .register_transaction(transaction!(scrape_login_page).set_name("login page"))
                .register_transaction(
                    transaction!(scrape_random_authorize).set_name("authorize, made-up site"),
                )
                .register_transaction(
                    transaction!(scrape_stale_authorize).set_name("authorize, stale link"),
                ),
        );
    }
    if weight("person") > 0 {
        all.push(
            scenario!("person")
                .set_weight(weight("person"))?
                .set_wait_time(reading.0, reading.1)?
                .register_transaction(browser_start())
                .register_transaction(transaction!(visit_first_site).set_name("site page"))
                .register_transaction(transaction!(sign_in_first_site).set_name("sign in"))
                .register_transaction(transaction!(hop_to_second_site).set_name("SSO hop"))
                .register_transaction(transaction!(sign_out_first_site).set_name("sign out")),
        );
    }
    if weight("returning") > 0 {
        all.push(
            scenario!("returning")
                .set_weight(weight("returning"))?
                .set_wait_time(aged.0, aged.1)?
                .register_transaction(browser_start())
                .register_transaction(transaction!(sign_in_first_site).set_name("sign in"))
                .register_transaction(transaction!(revisit_first_site).set_name("revisit, aged"))
                .register_transaction(transaction!(revisit_first_site).set_name("revisit, aged"))
                .register_transaction(transaction!(sign_out_first_site).set_name("sign out")),
        );
    }
    if weight("storm") > 0 {
        all.push(
            scenario!("storm")
                .set_weight(weight("storm"))?
                .set_wait_time(aged.0, aged.1)?
                .register_transaction(browser_start())
                .register_transaction(transaction!(sign_in_first_site).set_name("sign in"))
                .register_transaction(transaction!(refresh_storm).set_name("refresh storm"))
                .register_transaction(transaction!(sign_out_first_site).set_name("sign out")),
        );
    }
    if weight("stuffer") > 0 {
        all.push(
            scenario!("stuffer")
                .set_weight(weight("stuffer"))?
                .register_transaction(browser_start())
                .register_transaction(transaction!(stuff).set_name("wrong password")),
        );
    }
    Ok(all)
}

fn browser_start() -> Transaction {
    transaction!(open_cookie_browser)
        .set_on_start()
        .set_name("open a browser")
}

async fn open_cookie_browser(user: &mut GooseUser) -> TransactionResult {
    open_browser(user, true).await
}

/// Scrapers keep no cookies: every visit is a first visit.
async fn open_anonymous_browser(user: &mut GooseUser) -> TransactionResult {
    open_browser(user, false).await
}

fn sites(user: &GooseUser) -> Result<(&'static Site, &'static Site), Box<TransactionError>> {
    let home = visitor(user)?.home;
    Ok(Plan::get().stack.sites_for(home))
}

fn snippet(page: &Page) -> String {
    let text: String = page.body.chars().take(300).collect();
    format!("{} ({}): {text}", page.url, page.status)
}

// ---- scrapers -------------------------------------------------------------------

async fn scrape_login_page(user: &mut GooseUser) -> TransactionResult {
    let (site, _) = sites(user)?;
    let url = format!("{}/signin", site.origin);
    let (page, mut metric) = send(
        user,
        "site sign-in → login form",
        GooseMethod::Get,
        &url,
        |b| b,
        None,
    )
    .await?;
    Tally::bump(&Tally::get().anonymous_visits);
    if !page.is_login_form() {
        return Err(fail(
            user,
            &mut metric,
            &format!("no login form: {}", snippet(&page)),
        ));
    }
    Ok(())
}

static SCRAPES: AtomicU64 = AtomicU64::new(0);

async fn scrape_random_authorize(user: &mut GooseUser) -> TransactionResult {
    let n = SCRAPES.fetch_add(1, Ordering::Relaxed);
    let plan = Plan::get();
    let url = format!(
        "{}/authorize?response_type=code&client_id=scraped-{n}&redirect_uri=https%3A%2F%2Fscraper.invalid%2Fcb&state={n}&code_challenge=x{n}&code_challenge_method=S256",
        plan.stack.login_origin
    );
    send(
        user,
        "authorize, made-up site",
        GooseMethod::Get,
        &url,
        |b| b,
        Some(400),
    )
    .await?;
    Tally::bump(&Tally::get().anonymous_visits);
    Ok(())
}

/// A link to `/authorize` that a site handed out earlier, fetched again much later (a
/// crawler's stored link): a form again, and still nothing stored.
async fn scrape_stale_authorize(user: &mut GooseUser) -> TransactionResult {
    let (site, _) = sites(user)?;
    let stale = stale_link(site).await;
    let Some(url) = stale else {
        return Ok(());
    };
    let (page, mut metric) = send(
        user,
        "authorize, stale link",
        GooseMethod::Get,
        &url,
        |b| b,
        None,
    )
    .await?;
    Tally::bump(&Tally::get().anonymous_visits);
    if !page.is_login_form() {
        return Err(fail(
            user,
            &mut metric,
            &format!("no login form: {}", snippet(&page)),
        ));
    }
    Ok(())
}

/// One `/authorize` link per site, taken from the site's redirect at first use.
async fn stale_link(site: &Site) -> Option<String> {
    static LINKS: std::sync::OnceLock<
        tokio::sync::Mutex<std::collections::HashMap<String, String>>,
    > = std::sync::OnceLock::new();
    let links = LINKS.get_or_init(Default::default);
    let mut links = links.lock().await;
    if let Some(link) = links.get(&site.name) {
        return Some(link.clone());
    }
    let plan = Plan::get();
    let client = crate::visitor::client_builder(plan, 0, "10.255.255.255", false)
        .ok()?
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    let response = client
        .get(format!("{}/signin", site.origin))
        .send()
        .await
        .ok()?;
    let link = response
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?
        .to_owned();
    links.insert(site.name.clone(), link.clone());
    Some(link)
}

// ---- people ---------------------------------------------------------------------

async fn visit_first_site(user: &mut GooseUser) -> TransactionResult {
    let (site, _) = sites(user)?;
    let url = format!("{}/", site.origin);
    send(user, "site page", GooseMethod::Get, &url, |b| b, None).await?;
    Ok(())
}

async fn sign_in_first_site(user: &mut GooseUser) -> TransactionResult {
    let (site, _) = sites(user)?;
    sign_in(user, site).await
}

/// The site's sign-in, the login form, the password, and back at the site signed in.
async fn sign_in(user: &mut GooseUser, site: &Site) -> TransactionResult {
    let plan = Plan::get();
    let me = visitor(user)?;
    let url = format!("{}/signin", site.origin);
    let (form, mut metric) = send(
        user,
        "site sign-in → login form",
        GooseMethod::Get,
        &url,
        |b| b,
        None,
    )
    .await?;
    let Some(flow) = hidden_field(&form.body, "flow") else {
        return Err(fail(
            user,
            &mut metric,
            &format!("no login form: {}", snippet(&form)),
        ));
    };
    let tally = Tally::get();
    Tally::bump(&tally.sign_ins_started);
    let login = format!("{}/login", plan.stack.login_origin);
    let origin = plan.stack.login_origin.clone();
    let fields = [
        ("flow", flow),
        ("username", me.account.clone()),
        ("password", plan.password.clone()),
    ];
    let (page, mut metric) = send(
        user,
        "password → code → site /token → signed in",
        GooseMethod::Post,
        &login,
        |b| b.header("origin", origin).form(&fields),
        None,
    )
    .await?;
    if !page.signed_in() {
        return Err(fail(
            user,
            &mut metric,
            &format!("sign-in did not end signed in: {}", snippet(&page)),
        ));
    }
    Tally::bump(&tally.sign_ins_completed);
    if site.dc != plan.stack.datacenters[me.home].name {
        Tally::bump(&tally.cross_dc_sign_ins);
    }
    Ok(())
}

async fn hop_to_second_site(user: &mut GooseUser) -> TransactionResult {
    let (_, second) = sites(user)?;
    let url = format!("{}/signin", second.origin);
    let (page, mut metric) = send(
        user,
        "second site sign-in → signed in (SSO)",
        GooseMethod::Get,
        &url,
        |b| b,
        None,
    )
    .await?;
    let tally = Tally::get();
    if !page.signed_in() {
        Tally::bump(&tally.sso_hops_failed);
        return Err(fail(
            user,
            &mut metric,
            &format!("the SSO hop did not sign in: {}", snippet(&page)),
        ));
    }
    Tally::bump(&tally.sso_hops);
    Ok(())
}

async fn sign_out_first_site(user: &mut GooseUser) -> TransactionResult {
    let (site, _) = sites(user)?;
    let url = format!("{}/signout", site.origin);
    let (page, mut metric) = send(
        user,
        "site sign-out",
        GooseMethod::Post,
        &url,
        |b| b.header("origin", site.origin.clone()),
        None,
    )
    .await?;
    let Some(action) = form_action(&page.body) else {
        return Err(fail(
            user,
            &mut metric,
            &format!("no sign-out form: {}", snippet(&page)),
        ));
    };
    let fields = hidden_fields(&page.body);
    let origin = site.origin.clone();
    let (page, mut metric) = send(
        user,
        "login logout → site signed out",
        GooseMethod::Post,
        &action,
        |b| b.header("origin", origin).form(&fields),
        None,
    )
    .await?;
    if !page.signed_out() {
        return Err(fail(
            user,
            &mut metric,
            &format!("sign-out did not end signed out: {}", snippet(&page)),
        ));
    }
    Tally::bump(&Tally::get().sign_outs);
    Ok(())
}

/// A visit after the access token's soft expiry: the site refreshes through `/token`
/// and sets new cookies, and the person stays signed in.
async fn revisit_first_site(user: &mut GooseUser) -> TransactionResult {
    let (site, _) = sites(user)?;
    let url = format!("{}/", site.origin);
    let (page, mut metric) = send(
        user,
        "site page, aged session → refreshed",
        GooseMethod::Get,
        &url,
        |b| b,
        None,
    )
    .await?;
    let tally = Tally::get();
    let refreshed = page
        .set_cookies
        .iter()
        .any(|c| cookie_value(c, "refresh").is_some());
    if !page.signed_in() || !refreshed {
        Tally::bump(&tally.refreshes_failed);
        return Err(fail(
            user,
            &mut metric,
            &format!("the aged session was not refreshed: {}", snippet(&page)),
        ));
    }
    Tally::bump(&tally.refreshes);
    Ok(())
}

/// Many tabs of one aged session load the site at once: each makes the site refresh
/// with the same refresh token, and all must be handed the same new pair.
async fn refresh_storm(user: &mut GooseUser) -> TransactionResult {
    let (site, _) = sites(user)?;
    let client = user.client.clone();
    let url = format!("{}/", site.origin);
    let tabs = (0..STORM_TABS).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let started = Instant::now();
            let outcome = async {
                let response = client.get(&url).send().await?;
                let status = response.status().as_u16();
                let pairs: Vec<String> = response
                    .headers()
                    .get_all(reqwest::header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(|c| cookie_value(c, "refresh").map(str::to_owned))
                    .collect();
                let body = response.text().await?;
                Ok::<_, reqwest::Error>((status, pairs, body.contains("Signed in as")))
            }
            .await;
            (started.elapsed(), outcome)
        }
    });
    let results = futures::future::join_all(tabs).await;
    let tally = Tally::get();
    let mut pairs = HashSet::new();
    let mut problem = None;
    for (elapsed, outcome) in results {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        Timeline::get().record(ms);
        match outcome {
            Ok((status, handed, signed_in)) => {
                if status >= 500 {
                    Tally::bump(&tally.server_errors);
                }
                pairs.extend(handed);
                let ok = status == 200 && signed_in;
                if !ok {
                    problem = Some(format!("a tab got {status}, signed in: {signed_in}"));
                }
                let error = (!ok).then_some("tab not signed in");
                user.record_custom_request(
                    "GET",
                    "storm tab: site page, aged session",
                    ms,
                    ok,
                    Some(status),
                    error,
                )
                .await?;
            }
            Err(e) => {
                Tally::bump(&tally.transport_errors);
                problem = Some(format!("a tab got no answer: {e}"));
                user.record_custom_request(
                    "GET",
                    "storm tab: site page, aged session",
                    ms,
                    false,
                    None,
                    Some("no answer"),
                )
                .await?;
            }
        }
    }
    Tally::bump(&tally.storms);
    Tally::raise(&tally.storm_most_pairs, pairs.len() as u64);
    if pairs.len() > 1 {
        Tally::bump(&tally.storms_split);
        problem = Some(format!(
            "{} tabs were handed {} different pairs",
            STORM_TABS,
            pairs.len()
        ));
    }
    if pairs.is_empty() && problem.is_none() {
        problem = Some("no tab was refreshed: the session had not aged".into());
    }
    match problem {
        Some(why) => Err(Box::new(TransactionError::Custom(why))),
        None => Ok(()),
    }
}

// ---- credential stuffing --------------------------------------------------------

static STUFFED: AtomicU64 = AtomicU64::new(0);

/// Wrong passwords in a burst from one source against one account.
const GUESSES_PER_BURST: usize = 8;

/// A burst of wrong passwords for one account from one of many sources: each refused,
/// with 429 once the account's failures from that network pass the free ones (or the
/// network's attempts pass the per-minute limit), never a 5xx, never signed in.
async fn stuff(user: &mut GooseUser) -> TransactionResult {
    let plan = Plan::get();
    let n = STUFFED.fetch_add(1, Ordering::Relaxed);
    let source = format!("203.0.113.{}", n % STUFFING_SOURCES);
    // Where the login tells sources apart, stuffers also try people's own accounts:
    // failures count per account *and* network, so people, elsewhere, never wait.
    let accounts = &plan.stack.accounts;
    let account = if plan.stack.forwarded_for && n % 2 == 0 {
        accounts[(n / 2) as usize % accounts.len()].clone()
    } else {
        format!("nobody-{}", n % MADE_UP_ACCOUNTS)
    };
    let (site, _) = sites(user)?;
    let url = format!("{}/signin", site.origin);
    let xff = source.clone();
    let (form, mut metric) = send(
        user,
        "site sign-in → login form (stuffer)",
        GooseMethod::Get,
        &url,
        |b| b.header("x-forwarded-for", xff),
        None,
    )
    .await?;
    let Some(mut flow) = hidden_field(&form.body, "flow") else {
        return Err(fail(
            user,
            &mut metric,
            &format!("no login form: {}", snippet(&form)),
        ));
    };
    let login = format!("{}/login", plan.stack.login_origin);
    let tally = Tally::get();
    for guess in 0..GUESSES_PER_BURST {
        let fields = [
            ("flow", flow.clone()),
            ("username", account.clone()),
            ("password", format!("not-the-password-{n}-{guess}")),
        ];
        let post = user
            .client
            .post(&login)
            .header("origin", plan.stack.login_origin.as_str())
            .header("x-forwarded-for", source.as_str())
            .form(&fields);
        // Recorded by hand: a refusal (401, or 429 past a limit) is what a wrong password
        // must get, so goose should count it a success, and it cannot expect two codes.
        let started = Instant::now();
        let answer = async {
            let response = post.send().await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        }
        .await;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Timeline::get().record(ms);
        let (status, body) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                Tally::bump(&tally.transport_errors);
                user.record_custom_request(
                    "POST",
                    "wrong password",
                    ms,
                    false,
                    None,
                    Some("no answer"),
                )
                .await?;
                return Err(Box::new(TransactionError::Custom(format!(
                    "a stuffing post got no answer: {e}"
                ))));
            }
        };
        Tally::bump(&tally.stuffing_posts);
        let refused = matches!(status, 401 | 429);
        user.record_custom_request(
            "POST",
            "wrong password",
            ms,
            refused,
            Some(status),
            (!refused).then_some("not refused"),
        )
        .await?;
        if status == 429 {
            Tally::bump(&tally.stuffing_limited);
        }
        if status >= 500 {
            Tally::bump(&tally.server_errors);
            return Err(Box::new(TransactionError::Custom(format!(
                "stuffing got a {status}"
            ))));
        }
        if body.contains("Signed in as") || !refused {
            Tally::bump(&tally.stuffing_succeeded);
            return Err(Box::new(TransactionError::Custom(format!(
                "a wrong password was not refused: {status}"
            ))));
        }
        if let Some(next) = hidden_field(&body, "flow") {
            flow = next;
        }
    }
    Ok(())
}
