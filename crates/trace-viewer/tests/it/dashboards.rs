//! Every metric the dashboards and alert rules query is one the running services serve:
//! a renamed metric fails here instead of leaving an empty panel or a silent alert.

use std::collections::BTreeSet;

use crate::promtool::dashboard_queries;
use crate::up::{repository, UpStack};

/// The admin ports of `just up`'s services: login, stash, sessions, audit, both wikis.
const METRICS_PORTS: [u16; 6] = [7480, 7481, 7482, 7483, 7581, 7582];

/// The Tessera metric names in a PromQL expression (or any text).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("tessera_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names a `/metrics` page can hold: each family's name and, for histograms,
/// its `_bucket`, `_sum` and `_count` series.
fn served_names(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            names.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboards_and_alerts_query_is_served() {
    let _stack = UpStack::start().await.expect("just up's stack starts");
    let mut served = BTreeSet::new();
    for port in METRICS_PORTS {
        let url = format!("http://127.0.0.1:{port}/metrics");
        let page = reqwest::get(&url)
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .text()
            .await
            .expect("metrics text");
        served.extend(served_names(&page));
    }

    let mut queried: Vec<(String, String)> = Vec::new();
    for (board, title, expr) in dashboard_queries() {
        let names = metric_names(&expr);
        assert!(
            !names.is_empty(),
            "{board}: {title:?} queries a Tessera metric"
        );
        queried.extend(names.into_iter().map(|n| (format!("{board}: {title}"), n)));
    }
    let alerts = std::fs::read_to_string(repository().join("deploy/prometheus/alerts.yml"))
        .expect("alert rules");
    queried.extend(
        metric_names(&alerts)
            .into_iter()
            .map(|n| ("alerts.yml".to_owned(), n)),
    );

    let missing: Vec<&(String, String)> = queried
        .iter()
        .filter(|(_, name)| !served.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but served by no service: {missing:#?}"
    );
    // The red metrics of every surface are there too.
    for name in [
        "tessera_http_requests_total",
        "tessera_grpc_requests_total",
        "tessera_grpc_request_duration_seconds_bucket",
    ] {
        assert!(served.contains(name), "{name} is served");
    }
}

#[test]
fn metric_names_are_read_from_queries() {
    assert_eq!(
        metric_names(r#"sum(rate(tessera_a_total{x="y"}[5m])) / tessera_b_seconds_bucket"#),
        BTreeSet::from([
            "tessera_a_total".to_owned(),
            "tessera_b_seconds_bucket".to_owned()
        ])
    );
}
