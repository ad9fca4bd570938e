//! promtool, Prometheus's own checker, accepts the scrape configuration, the alert rules
//! and every dashboard query, and the alert rules pass their unit tests.

use std::path::Path;
use std::process::Command;

use crate::up::repository;

/// Runs promtool with `args` in `dir` and fails the test with its output unless it succeeds.
fn promtool(dir: &Path, args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs (apt-get install -y prometheus; `just test` installs it)");
    assert!(
        output.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn prometheus_dir() -> std::path::PathBuf {
    repository().join("deploy/prometheus")
}

/// Every panel query of every dashboard, by dashboard file name and panel title.
pub fn dashboard_queries() -> Vec<(String, String, String)> {
    let dir = repository().join("deploy/grafana");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("deploy/grafana")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "the six dashboards are in {}",
        dir.display()
    );
    let mut queries = Vec::new();
    for file in files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file).expect("dashboard");
        let board: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        let panels = board["panels"].as_array().cloned().unwrap_or_default();
        assert!(!panels.is_empty(), "{name} has panels");
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{name}: {title:?} has a query");
            for target in targets {
                let expr = target["expr"].as_str().unwrap_or_default().to_owned();
                queries.push((name.clone(), title.clone(), expr));
            }
        }
    }
    queries
}

#[test]
fn the_scrape_configuration_and_alert_rules_pass_promtool() {
    promtool(&prometheus_dir(), &["check", "config", "prometheus.yml"]);
    promtool(&prometheus_dir(), &["check", "rules", "alerts.yml"]);
}

#[test]
fn the_alert_rules_pass_their_unit_tests() {
    promtool(&prometheus_dir(), &["test", "rules", "alerts.test.yml"]);
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    // Each query becomes a recording rule, which promtool parses and checks; the
    // dashboards' variable stands for any datacenter.
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (index, (board, title, expr)) in dashboard_queries().into_iter().enumerate() {
        let expr = expr.replace("$datacenter", ".*");
        let quoted = serde_json::to_string(&expr).expect("a string");
        rules.push_str(&format!(
            "      # {board}: {}\n      - record: dashboard_query_{index}\n        expr: {quoted}\n",
            title.replace('\n', " ")
        ));
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("dashboards.yml"), rules).expect("rules written");
    promtool(dir.path(), &["check", "rules", "dashboards.yml"]);
}

#[test]
fn the_kubernetes_scrape_configuration_passes_promtool() {
    // Debian's Prometheus is built without Kubernetes discovery, so the discovery block
    // stands in as one static target; the relabelling that names each pod's job and
    // datacenter, and the rule file, are checked as written.
    let text = std::fs::read_to_string(prometheus_dir().join("kubernetes.yml"))
        .expect("deploy/prometheus/kubernetes.yml");
    let discovery = "    kubernetes_sd_configs:\n      - role: pod\n        namespaces:\n          names: [tessera]\n";
    assert!(
        text.contains(discovery),
        "kubernetes.yml discovers the tessera namespace's pods"
    );
    let checkable = text.replace(
        discovery,
        "    static_configs:\n      - targets: [\"127.0.0.1:7480\"]\n",
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(dir.path().join("kubernetes.yml"), checkable).expect("written");
    std::fs::copy(
        prometheus_dir().join("alerts.yml"),
        dir.path().join("alerts.yml"),
    )
    .expect("alerts copied");
    promtool(dir.path(), &["check", "config", "kubernetes.yml"]);
}
