//! What a run leaves behind: `summary.md` and `summary.json` (the correctness counters
//! and each phase's headline), `chart.svg`, and a link to them in goose's HTML reports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use goose::metrics::GooseMetrics;
use serde_json::json;

use crate::checks::{Check, Seen, Snapshots};
use crate::counters;
use crate::plan::Mix;
use crate::stack::Stack;

/// Everything a report is made of.
#[derive(Debug)]
pub struct Run<'a> {
    pub out: &'a Path,
    pub stack: &'a Stack,
    pub mix: &'a Mix,
    pub goose_args: &'a [String],
    pub phases: Vec<(&'static str, &'a GooseMetrics)>,
    pub seen: &'a Seen,
    pub checks: &'a [Check],
    pub chart: &'a str,
    pub anonymous_share: Option<f64>,
}

/// The files a run wrote.
#[derive(Debug)]
pub struct Written {
    pub summary: PathBuf,
    pub chart: PathBuf,
    pub goose_reports: Vec<PathBuf>,
}

/// A phase's headline: how long, how many requests, how many failed, how fast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headline {
    pub seconds: usize,
    pub requests: usize,
    pub failed: usize,
    pub per_second: f64,
}

/// The headline of goose's `metrics`.
pub fn headline(metrics: &GooseMetrics) -> Headline {
    let (requests, failed) = metrics.requests.values().fold((0, 0), |(all, failed), r| {
        (all + r.success_count + r.fail_count, failed + r.fail_count)
    });
    Headline {
        seconds: metrics.duration,
        requests,
        failed,
        per_second: requests as f64 / metrics.duration.max(1) as f64,
    }
}

/// The share of the login's requests that carried no session, over the whole run.
pub fn anonymous_share(s: &Snapshots) -> Option<f64> {
    let anonymous = s.after.since(&s.before, counters::ANONYMOUS_REQUESTS) as f64;
    let authenticated = s.after.since(&s.before, counters::AUTHENTICATED_REQUESTS) as f64;
    let all = anonymous + authenticated;
    (all > 0.0).then(|| anonymous / all)
}

/// Writes the summary, the chart and the links; the paths written.
pub fn write(run: &Run<'_>) -> anyhow::Result<Written> {
    let chart = run.out.join("chart.svg");
    std::fs::write(&chart, run.chart).with_context(|| format!("writing {}", chart.display()))?;
    let summary = run.out.join("summary.md");
    std::fs::write(&summary, markdown(run))
        .with_context(|| format!("writing {}", summary.display()))?;
    let json_path = run.out.join("summary.json");
    let phases: Vec<_> = run
        .phases
        .iter()
        .map(|(name, metrics)| {
            let h = headline(metrics);
            json!({"phase": name, "seconds": h.seconds, "requests": h.requests,
                   "failed": h.failed, "requests_per_second": h.per_second})
        })
        .collect();
    let body = json!({
        "stack": run.stack.name,
        "mix": run.mix.weights,
        "goose_args": run.goose_args,
        "phases": phases,
        "seen": run.seen,
        "checks": run.checks,
        "anonymous_share_of_login_requests": run.anonymous_share,
        "passed": run.checks.iter().all(|c| c.ok),
    });
    std::fs::write(&json_path, serde_json::to_vec_pretty(&body)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let mut goose_reports = Vec::new();
    for (phase, _) in &run.phases {
        let html = run.out.join(phase).join("report.html");
        link_from(&html)?;
        goose_reports.push(html);
        goose_reports.push(run.out.join(phase).join("report.json"));
    }
    Ok(Written {
        summary,
        chart,
        goose_reports,
    })
}

/// Puts a link to the run's summary and chart at the top of goose's HTML report.
fn link_from(html: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(html)
        .with_context(|| format!("goose wrote no report at {}", html.display()))?;
    let note = "<div style=\"padding:.6rem 1rem;background:#eef3ee;font-family:sans-serif\">\
<strong>Tessera load run:</strong> <a href=\"../summary.md\">correctness counters (summary.md)</a> · \
<a href=\"../summary.json\">summary.json</a> · <a href=\"../chart.svg\">throughput and p99 chart</a>\
<br><img src=\"../chart.svg\" alt=\"requests per second and p99 latency over the run\"></div>";
    let linked = match text.find("<body>") {
        Some(at) => format!(
            "{}{note}{}",
            &text[..at + "<body>".len()],
            &text[at + "<body>".len()..]
        ),
        None => format!("{note}{text}"),
    };
    std::fs::write(html, linked).with_context(|| format!("writing {}", html.display()))
}

fn markdown(run: &Run<'_>) -> String {
    let mut out = String::new();
    let passed = run.checks.iter().all(|c| c.ok);
    let _ = writeln!(out, "# Tessera load run: {}\n", run.stack.name);
    let _ = writeln!(
        out,
        "Verdict: **{}**. Mix: {}. Goose flags: `{}`.\n",
        if passed { "nothing lost" } else { "FAILED" },
        run.mix
            .weights
            .iter()
            .map(|(k, w)| format!("{k}={w}"))
            .collect::<Vec<_>>()
            .join(","),
        run.goose_args.join(" ")
    );
    let _ = writeln!(
        out,
        "| phase | seconds | requests | failed | requests/s | goose report |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
    for (phase, metrics) in &run.phases {
        let h = headline(metrics);
        let _ = writeln!(
            out,
            "| {phase} | {} | {} | {} | {:.0} | [{phase}/report.html]({phase}/report.html), [json]({phase}/report.json) |",
            h.seconds, h.requests, h.failed, h.per_second
        );
    }
    for (phase, _) in &run.phases {
        let _ = write!(
            out,
            "{}",
            request_table(&run.out.join(phase).join("report.json"), phase)
        );
    }
    if let Some(share) = run.anonymous_share {
        let _ = writeln!(
            out,
            "\nRequests to the login without a session: {:.2}% of all it served.",
            share * 100.0
        );
    }
    let _ = writeln!(out, "\n![throughput and p99](chart.svg)\n");
    let _ = writeln!(out, "| counter | value | must be | |");
    let _ = writeln!(out, "|---|---:|---|---|");
    for check in run.checks {
        let mark = match (check.rule.is_empty(), check.ok) {
            (true, _) => "",
            (false, true) => "ok",
            (false, false) => "**WRONG**",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {mark} |",
            check.what, check.value, check.rule
        );
    }
    out
}

/// Per request of a phase, from goose's JSON report: how many, how fast, p50/p95/p99
/// (ms), failures. Empty if the report cannot be read.
fn request_table(report_json: &Path, phase: &str) -> String {
    let Some(report) = std::fs::read(report_json)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    else {
        return String::new();
    };
    let empty = Vec::new();
    let list = |key: &str| report[key].as_array().unwrap_or(&empty).clone();
    let percentiles = list("raw_response_metrics");
    let mut out = format!(
        "\n{phase}: per request\n\n| request | count | per s | p50 ms | p95 ms | p99 ms | failed |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for request in list("raw_request_metrics") {
        let (method, name) = (&request["method"], &request["name"]);
        let times = percentiles
            .iter()
            .find(|p| &p["method"] == method && &p["name"] == name);
        let at = |key: &str| {
            times
                .and_then(|t| t[key].as_u64())
                .map_or_else(|| "-".to_owned(), |v| v.to_string())
        };
        let _ = writeln!(
            out,
            "| {} {} | {} | {:.1} | {} | {} | {} | {} |",
            method.as_str().unwrap_or_default(),
            name.as_str().unwrap_or_default(),
            request["number_of_requests"],
            request["requests_per_second"].as_f64().unwrap_or_default(),
            at("percentile_50"),
            at("percentile_95"),
            at("percentile_99"),
            request["number_of_failures"],
        );
    }
    out
}

/// What the console shows at the end of a run.
pub fn console(checks: &[Check], written: &Written) -> String {
    let mut out =
        String::from("\nCorrectness counters (services' /metrics and the visitors' own counts):\n");
    let width = checks.iter().map(|c| c.what.len()).max().unwrap_or(0);
    for check in checks {
        let mark = match (check.rule.is_empty(), check.ok) {
            (true, _) => String::new(),
            (false, true) => format!("ok ({})", check.rule),
            (false, false) => format!("WRONG: must be {}", check.rule),
        };
        let _ = writeln!(out, "  {:<width$}  {:>9}  {mark}", check.what, check.value);
    }
    let wrong = checks.iter().filter(|c| !c.ok).count();
    let _ = writeln!(
        out,
        "\n{}",
        if wrong == 0 {
            "tessera-load: every check holds: nothing lost.".to_owned()
        } else {
            format!("tessera-load: {wrong} check(s) WRONG (see above).")
        }
    );
    let _ = writeln!(out, "Reports:");
    let _ = writeln!(out, "  summary  {}", written.summary.display());
    let _ = writeln!(out, "  chart    {}", written.chart.display());
    for report in &written.goose_reports {
        let _ = writeln!(out, "  goose    {}", report.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_table_joins_counts_and_percentiles_of_goose_json() {
        let path = std::env::temp_dir().join(format!("tessera-load-{}.json", std::process::id()));
        let report = json!({
            "raw_request_metrics": [
                {"method": "GET", "name": "site page", "number_of_requests": 41,
                 "number_of_failures": 0, "requests_per_second": 1.36},
                {"method": "POST", "name": "password", "number_of_requests": 5,
                 "number_of_failures": 1, "requests_per_second": 0.2}
            ],
            "raw_response_metrics": [
                {"method": "GET", "name": "site page", "percentile_50": 1,
                 "percentile_95": 3, "percentile_99": 8}
            ]
        });
        std::fs::write(&path, report.to_string()).expect("written");
        let table = request_table(&path, "mixed");
        let _ = std::fs::remove_file(&path);
        assert!(
            table.contains("| GET site page | 41 | 1.4 | 1 | 3 | 8 | 0 |"),
            "{table}"
        );
        assert!(
            table.contains("| POST password | 5 | 0.2 | - | - | - | 1 |"),
            "{table}"
        );
        assert_eq!(
            request_table(Path::new("/nonexistent/report.json"), "mixed"),
            ""
        );
    }
}
