//! A sign-in on wiki-a, through `just up`'s stack in headless Chromium, is one trace in
//! the trace viewer: every service in it, every span under its parent, no secret in it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tessera_testkit::{wait_until, Chromium};

use crate::up::{repository, UpStack};

/// The services a sign-in passes through.
const SERVICES: [&str; 5] = ["demo-site", "login", "session-jwt", "token-stash", "audit"];

/// One span of a trace as the viewer's query API gives it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: Option<String>,
    service: String,
    operation: String,
    tags: HashMap<String, String>,
}

fn spans_of(trace: &Value) -> Vec<Span> {
    let processes = &trace["processes"];
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|span| Span {
            trace: span["traceID"].as_str().unwrap_or_default().to_owned(),
            id: span["spanID"].as_str().unwrap_or_default().to_owned(),
            parent: span["references"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["refType"] == "CHILD_OF")
                .and_then(|r| r["spanID"].as_str())
                .map(str::to_owned),
            service: span["processID"]
                .as_str()
                .and_then(|p| processes[p]["serviceName"].as_str())
                .unwrap_or_default()
                .to_owned(),
            operation: span["operationName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            tags: span["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|tag| {
                    let value = match &tag["value"] {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (tag["key"].as_str().unwrap_or_default().to_owned(), value)
                })
                .collect(),
        })
        .collect()
}

async fn get_json(url: &str) -> anyhow::Result<Value> {
    let response = reqwest::get(url).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    Ok(response.json().await?)
}

/// The complete traces the viewer lists for `service` (a trace is listed once no span in
/// it waits for its parent).
async fn complete_traces(viewer: &str, service: &str) -> Vec<Value> {
    get_json(&format!("{viewer}/api/traces?service={service}&limit=50"))
        .await
        .ok()
        .and_then(|listing| listing["data"].as_array().cloned())
        .unwrap_or_default()
}

/// The sign-in's trace: the one holding the password post to login.
fn sign_in_trace(traces: &[Value]) -> Option<Vec<Span>> {
    traces.iter().map(spans_of).find(|spans| {
        spans.iter().any(|s| {
            s.service == "login" && s.tags.get("http.path").map(String::as_str) == Some("/login")
        })
    })
}

fn services_in(spans: &[Span]) -> BTreeSet<String> {
    spans.iter().map(|s| s.service.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_on_wiki_a_is_one_trace_across_every_service() {
    let stack = UpStack::start().await.expect("just up's stack starts");
    assert!(
        stack.traces_url.starts_with("http://127.0.0.1:"),
        "up.sh prints the trace viewer's URL:\n{}",
        stack.banner
    );
    let browser = Chromium::start()
        .await
        .expect("headless Chromium (apt-get install -y chromium chromium-driver)");

    browser
        .goto("http://localhost:7501/")
        .await
        .expect("wiki-a");
    let sign_in = browser.find("#signin").await.expect("sign-in button");
    browser.click(&sign_in).await.expect("click");
    let username = browser.find("#username").await.expect("login form");
    browser.type_into(&username, "demo").await.expect("type");
    let password = browser.find("#password").await.expect("password field");
    browser
        .type_into(&password, &stack.password)
        .await
        .expect("type");
    let submit = browser.find("button[type=submit]").await.expect("submit");
    browser.click(&submit).await.expect("click");
    browser
        .wait_for_text("#who", "Signed in as demo")
        .await
        .expect("signed in on wiki-a");

    // Spans arrive in batches, the audit append after the audit client's own batching.
    let viewer = stack.traces_url.clone();
    let found = Arc::new(Mutex::new(Vec::new()));
    wait_until(
        "the sign-in's trace, with a span from every service",
        || {
            let viewer = viewer.clone();
            let found = found.clone();
            async move {
                let traces = complete_traces(&viewer, "demo-site").await;
                let Some(trace) = sign_in_trace(&traces) else {
                    return false;
                };
                let every = SERVICES.iter().all(|s| services_in(&trace).contains(*s));
                *found.lock().expect("lock") = trace;
                every
            }
        },
    )
    .await;
    let spans = found.lock().expect("lock").clone();

    let ids: BTreeSet<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    let roots: Vec<&Span> = spans.iter().filter(|s| s.parent.is_none()).collect();
    assert_eq!(roots.len(), 1, "one root span: {roots:#?}");
    assert_eq!(roots[0].service, "demo-site", "{:#?}", roots[0]);
    assert_eq!(
        roots[0].tags.get("http.path").map(String::as_str),
        Some("/signin"),
        "the trace begins at the site's sign-in: {:#?}",
        roots[0]
    );
    for span in &spans {
        if let Some(parent) = &span.parent {
            assert!(
                ids.contains(parent.as_str()),
                "{span:#?} has its parent in the trace"
            );
        }
    }
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
    let parent_service = |span: &Span| {
        span.parent
            .as_deref()
            .and_then(|p| by_id.get(p))
            .map(|p| p.service.clone())
            .unwrap_or_default()
    };
    for (path, parent) in [
        ("/authorize", "demo-site"),
        ("/login", "login"),
        ("/token", "demo-site"),
    ] {
        let span = spans
            .iter()
            .find(|s| {
                s.service == "login" && s.tags.get("http.path").map(String::as_str) == Some(path)
            })
            .unwrap_or_else(|| panic!("login's {path} is in the trace: {spans:#?}"));
        assert_eq!(
            parent_service(span),
            parent,
            "login's {path} hangs under {parent}: {span:#?}"
        );
    }
    assert!(
        spans
            .iter()
            .filter(|s| s.service == "audit" && s.operation == "audit.append")
            .any(|append| parent_service(append) == "login"),
        "the audit append of login's event hangs under login's request: {spans:#?}"
    );
    for service in ["session-jwt", "token-stash"] {
        assert!(
            spans
                .iter()
                .any(|s| s.service == service && s.operation == "grpc.request"),
            "{service} served a call in the trace"
        );
    }

    // No secret in any span: not the password, not a code, not a cookie or token.
    let trace_text = format!("{spans:?}");
    assert!(
        !trace_text.contains(&stack.password),
        "the password is in a span"
    );
    for secret in ["code=", "__Host-", "eyJ", "client_secret"] {
        assert!(!trace_text.contains(secret), "{secret:?} is in a span");
    }

    // The same trace, as a person opens it in the viewer's UI.
    let trace_id = &roots[0].trace;
    browser
        .goto(&format!("{viewer}/trace/{trace_id}"))
        .await
        .expect("the trace page");
    browser
        .wait_for_text("body", "session-jwt")
        .await
        .expect("the UI shows the trace");
    browser
        .screenshot(&repository().join("target/screenshots/sign-in-trace.png"))
        .await
        .expect("screenshot");
    browser.close().await;
}
