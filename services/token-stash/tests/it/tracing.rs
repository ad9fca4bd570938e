//! OTLP export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the stash exports its spans, and a
//! caller's W3C trace context makes them part of the caller's trace.

use std::path::Path;

use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_testkit::{OtlpCollector, ServiceProcess, TestPki, WAIT_LIMIT};
use tessera_token_stash::test_util::stash_process_env;

const BINARY: &str = env!("CARGO_BIN_EXE_tessera-token-stash");
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_in_the_callers_trace() {
    let mut collector = OtlpCollector::start().await.expect("collector");
    let pki = TestPki::new().expect("pki");
    let state = tempfile::tempdir().expect("state");
    let mut env = stash_process_env(&pki, state.path(), None);
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()));
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()));
    env.push(("RUST_LOG", "info".to_owned()));
    let process = ServiceProcess::spawn(Path::new(BINARY), &["serve"], &env)
        .await
        .expect("stash starts");
    let addr = process.addr("grpc").expect("grpc");
    let mut client = TokenStashClient::new(
        pki.channel(&pki.files("login"), addr)
            .await
            .expect("channel"),
    );

    let mut request = tonic::Request::new(pb::StatsRequest {});
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-b7ad6b7169203331-01")
            .parse()
            .expect("metadata"),
    );
    client.stats(request).await.expect("stats");
    // A clean stop flushes whatever the batch exporter still holds.
    process.terminate().await.expect("terminates");

    let span = tokio::time::timeout(WAIT_LIMIT, async {
        while let Some(span) = collector.spans.recv().await {
            if span.trace_id == TRACE_ID {
                return Some(span);
            }
        }
        None
    })
    .await
    .expect("a span in the caller's trace arrives")
    .expect("collector running");
    assert!(span.service.contains("token-stash"), "{span:?}");
}
