//! One sign-in is one trace: a site's `traceparent` on `/token` reaches the stash and the
//! session service the login service calls, and their spans join the site's trace.

use tessera_testkit::{Browser, OtlpCollector, WAIT_LIMIT};

use crate::support::{world, Pkce};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_exchange_is_one_trace_across_login_stash_and_session_service() {
    let mut collector = OtlpCollector::start().await.expect("collector");
    // Each test runs in its own process (nextest), so this process's telemetry is ours.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint());
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let guard =
        tessera_telemetry::init("login", tessera_telemetry::LogFormat::Human).expect("telemetry");

    let world = world().await;
    let mut browser = Browser::new().expect("browser");
    let pkce = Pkce::new("trace");
    let code = world.code(&mut browser, &pkce).await;
    let response = world
        .http
        .post(world.stack.url("/token"))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .basic_auth(&world.site.client_id, Some(&world.site.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", world.site.redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status().as_u16(), 200);
    drop(guard);

    let mut names = Vec::new();
    let _ = tokio::time::timeout(WAIT_LIMIT, async {
        while let Some(span) = collector.spans.recv().await {
            if span.trace_id == TRACE_ID {
                names.push(span.name);
                let grpc = names.iter().filter(|n| *n == "grpc.request").count();
                // The take (stash), the issue (session service) and its stash writes.
                if names.iter().any(|n| n == "http.request") && grpc >= 3 {
                    return;
                }
            }
        }
    })
    .await;
    assert!(names.iter().any(|n| n == "http.request"), "{names:?}");
    assert!(
        names.iter().filter(|n| *n == "grpc.request").count() >= 3,
        "the stash and session service spans joined the trace: {names:?}"
    );
}
