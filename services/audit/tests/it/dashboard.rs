//! The query API and the dashboard, behind the admin credential; the dashboard rendered
//! in headless Chromium.

use std::path::PathBuf;

use tessera_testkit::Chromium;

use crate::support::{audit, batch, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_api_needs_the_admin_token_and_filters_and_pages() {
    let audit = audit().await;
    let mut client = audit.client("login").await;
    let events = (1..=30)
        .map(|s| {
            event(
                "w",
                s,
                if s % 3 == 0 {
                    "login_failed"
                } else {
                    "login_succeeded"
                },
            )
        })
        .collect();
    client.append(batch(events)).await.expect("append");
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/events", audit.admin_addr);
    let refused = http.get(&url).send().await.expect("get");
    assert_eq!(refused.status().as_u16(), 401);
    let wrong = http
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status().as_u16(), 401);
    let page: serde_json::Value = http
        .get(format!("{url}?kind=login_failed&limit=4"))
        .bearer_auth(&audit.admin_token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let records = page["records"].as_array().expect("records");
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r["event"]["kind"] == "login_failed"));
    let next = page["next_after_seq"].as_u64().expect("next");
    let rest: serde_json::Value = http
        .get(format!("{url}?kind=login_failed&after_seq={next}"))
        .bearer_auth(&audit.admin_token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(rest["records"].as_array().expect("records").len(), 6);
    assert_eq!(rest["next_after_seq"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_in_headless_chromium() {
    let audit = audit().await;
    let mut client = audit.client("login").await;
    let now = tessera_clock::Clock::now(&tessera_clock::SystemClock).as_i64();
    let events = (1..=120)
        .map(|s| {
            let mut e = event(
                "w",
                s,
                [
                    "login_succeeded",
                    "login_failed",
                    "code_redeemed",
                    "rate_limited",
                ][(s % 4) as usize],
            );
            e.time_unix_ms = now - (120 - s as i64) * 20_000;
            e
        })
        .collect();
    client.append(batch(events)).await.expect("append");

    let browser = Chromium::start()
        .await
        .expect("headless Chromium (apt-get install -y chromium chromium-driver)");
    browser
        .goto(&format!(
            "http://localhost:{}/dashboard",
            audit.admin_addr.port()
        ))
        .await
        .expect("open");
    let token = browser
        .find("#token")
        .await
        .expect("asks for the admin token");
    browser
        .type_into(&token, &audit.admin_token)
        .await
        .expect("type");
    let open = browser.find("button[type=submit]").await.expect("button");
    browser.click(&open).await.expect("click");
    browser
        .wait_for_text("#latest", "login_failed")
        .await
        .expect("latest events");
    browser.find("svg polyline").await.expect("a rate chart");
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/screenshots/audit-dashboard.png");
    browser.screenshot(&shot).await.expect("screenshot");
    browser.close().await;
}

/// Event text comes from people and bots (user names typed into a form, sites, reasons):
/// on the dashboard it is text, never markup, and a raw user agent is never stored at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_in_events_and_filters_is_escaped_on_the_dashboard() {
    let audit = audit().await;
    let mut client = audit.client("login").await;
    let now = tessera_clock::Clock::now(&tessera_clock::SystemClock).as_i64();
    let script = "<script>alert(1)</script>";
    let mut hostile = event("w", 1, "login_failed");
    hostile.time_unix_ms = now;
    hostile.user_id = String::new();
    hostile.user_name =
        format!("{script}\r\nSet-Cookie: stolen=1\r\n\r\n\"><img src=x onerror=alert(2)>");
    hostile.site = "<b onmouseover=alert(3)>wiki</b>".into();
    hostile.reason = "a&b<i>".into();
    let mut raw_agent = event("w", 2, "login_failed");
    raw_agent.time_unix_ms = now;
    raw_agent.user_agent_class = format!("Mozilla/5.0 {script}");
    let answer = client
        .append(batch(vec![hostile, raw_agent]))
        .await
        .expect("append")
        .into_inner();
    assert_eq!(answer.refused, 1, "a raw user agent is refused: {answer:?}");
    assert!(
        answer
            .refusals
            .iter()
            .any(|r| r.contains("user_agent_class")),
        "{answer:?}"
    );

    let http = reqwest::Client::new();
    let page = http
        .get(format!(
            "http://{}/dashboard?user=%22%3E%3Cscript%3Ealert(4)%3C%2Fscript%3E",
            audit.admin_addr
        ))
        .bearer_auth(&audit.admin_token)
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.headers().get("set-cookie").is_none());
    let filtered = page.text().await.expect("body");
    assert!(
        filtered.contains("value=\"&quot;&gt;&lt;script&gt;alert(4)&lt;/script&gt;\""),
        "the filter is echoed as text"
    );
    assert!(!filtered.contains("<script>alert(4)"));

    let page = http
        .get(format!("http://{}/dashboard", audit.admin_addr))
        .bearer_auth(&audit.admin_token)
        .send()
        .await
        .expect("dashboard");
    assert!(
        page.headers().get("set-cookie").is_none(),
        "no header came from an event"
    );
    let body = page.text().await.expect("body");
    assert!(
        body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{body}"
    );
    assert!(body.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    assert!(body.contains("&lt;b onmouseover=alert(3)&gt;wiki&lt;/b&gt;"));
    assert!(body.contains("a&amp;b&lt;i&gt;"));
    for raw in [script, "<img src=x", "<b onmouseover", "<i>", "Mozilla"] {
        assert!(!body.contains(raw), "{raw} reached the page as markup");
    }
}
