//! A small Prometheus text-format registry: counters, labelled counters, gauges and
//! histograms, lock-free on the hot path except for labelled counters (a short lock on a
//! tiny map, never held across an `.await`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Something that can write itself in the Prometheus text format.
pub trait Metric: Send + Sync {
    /// Appends this metric's `# HELP`, `# TYPE` and sample lines to `out`.
    fn render(&self, out: &mut String);
}

/// A set of metrics rendered together on `/metrics`.
#[derive(Default, Clone)]
pub struct Registry {
    metrics: Arc<Mutex<Vec<Arc<dyn Metric>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Adds `metric` to the registry and hands it back for recording.
    pub fn register<M: Metric + 'static>(&self, metric: M) -> Arc<M> {
        let metric = Arc::new(metric);
        if let Ok(mut metrics) = self.metrics.lock() {
            metrics.push(metric.clone());
        }
        metric
    }

    /// Every registered metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(metrics) = self.metrics.lock() {
            for metric in metrics.iter() {
                metric.render(&mut out);
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A monotonically increasing count.
#[derive(Debug)]
pub struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    /// A counter named `name` (conventionally ending in `_total`).
    pub fn new(name: &'static str, help: &'static str) -> Self {
        Counter {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }

    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl Metric for Counter {
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        let _ = writeln!(out, "{} {}", self.name, self.get());
    }
}

/// Counts split by the value of one label, e.g. failures by `reason`.
#[derive(Debug)]
pub struct LabeledCounter {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    values: Mutex<BTreeMap<&'static str, u64>>,
}

impl LabeledCounter {
    /// A counter family whose samples differ by `label`.
    pub fn new(name: &'static str, help: &'static str, label: &'static str) -> Self {
        LabeledCounter {
            name,
            help,
            label,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds one to the sample labelled `value`.
    pub fn inc(&self, value: &'static str) {
        if let Ok(mut values) = self.values.lock() {
            *values.entry(value).or_insert(0) += 1;
        }
    }

    /// The count for `value`.
    pub fn get(&self, value: &str) -> u64 {
        self.values
            .lock()
            .ok()
            .and_then(|values| values.get(value).copied())
            .unwrap_or(0)
    }
}

impl Metric for LabeledCounter {
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        if let Ok(values) = self.values.lock() {
            for (value, count) in values.iter() {
                let _ = writeln!(
                    out,
                    "{}{{{}=\"{}\"}} {}",
                    self.name, self.label, value, count
                );
            }
        }
    }
}

/// A value that goes up and down.
#[derive(Debug)]
pub struct Gauge {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Gauge {
    /// A gauge named `name`.
    pub fn new(name: &'static str, help: &'static str) -> Self {
        Gauge {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }

    /// Sets the value.
    pub fn set(&self, value: u64) {
        self.value.store(value, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl Metric for Gauge {
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "gauge");
        let _ = writeln!(out, "{} {}", self.name, self.get());
    }
}

/// A distribution of durations in seconds over fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    bounds_seconds: &'static [f64],
    bucket_counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with upper bounds `bounds_seconds` (ascending).
    pub fn new(name: &'static str, help: &'static str, bounds_seconds: &'static [f64]) -> Self {
        Histogram {
            name,
            help,
            bounds_seconds,
            bucket_counts: bounds_seconds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: std::time::Duration) {
        let seconds = value.as_secs_f64();
        for (bound, count) in self.bounds_seconds.iter().zip(&self.bucket_counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Metric for Histogram {
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        for (bound, count) in self.bounds_seconds.iter().zip(&self.bucket_counts) {
            let _ = writeln!(
                out,
                "{}_bucket{{le=\"{}\"}} {}",
                self.name,
                bound,
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{}_bucket{{le=\"+Inf\"}} {}", self.name, count);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{}_sum {}", self.name, sum);
        let _ = writeln!(out, "{}_count {}", self.name, count);
    }
}

/// Label values for one sample, escaped as the text format requires.
fn label_pairs(names: &[&str], values: &[String]) -> String {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The value every label takes once a family holds its most series: a flood of new label
/// values (a caller inventing paths) lands in one series instead of growing memory and
/// every scrape.
pub const OVERFLOW_LABEL: &str = "other";

/// The key of the sample labelled `values`, or the overflow key when the family is full.
fn series_key<V>(series: &BTreeMap<Vec<String>, V>, values: &[&str], max: usize) -> Vec<String> {
    let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    if series.contains_key(&key) || series.len() < max {
        key
    } else {
        values.iter().map(|_| OVERFLOW_LABEL.to_owned()).collect()
    }
}

/// Counts split by several labels (e.g. `route` and `status`), holding at most a fixed
/// number of series.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    max_series: usize,
    series: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    /// A counter family labelled `labels`, with at most `max_series` samples.
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        max_series: usize,
    ) -> Self {
        CounterVec {
            name,
            help,
            labels,
            max_series,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds one to the sample labelled `values` (in the order of the labels).
    pub fn inc(&self, values: &[&str]) {
        if let Ok(mut series) = self.series.lock() {
            let key = series_key(&series, values, self.max_series);
            *series.entry(key).or_insert(0) += 1;
        }
    }

    /// The count labelled `values`.
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        self.series
            .lock()
            .ok()
            .and_then(|series| series.get(&key).copied())
            .unwrap_or(0)
    }
}

impl Metric for CounterVec {
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        if let Ok(series) = self.series.lock() {
            for (values, count) in series.iter() {
                let labels = label_pairs(self.labels, values);
                let _ = writeln!(out, "{}{{{labels}}} {count}", self.name);
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Buckets {
    counts: Vec<u64>,
    sum_seconds: f64,
    count: u64,
}

/// Duration distributions split by one label (e.g. `rpc`), holding at most a fixed
/// number of series. Its lock is held for one observation: a few additions.
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    bounds_seconds: &'static [f64],
    max_series: usize,
    series: Mutex<BTreeMap<Vec<String>, Buckets>>,
}

impl HistogramVec {
    /// A histogram family labelled `label`, over `bounds_seconds` (ascending).
    pub fn new(
        name: &'static str,
        help: &'static str,
        label: &'static str,
        bounds_seconds: &'static [f64],
        max_series: usize,
    ) -> Self {
        HistogramVec {
            name,
            help,
            label,
            bounds_seconds,
            max_series,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one observation for the series labelled `value`.
    pub fn observe(&self, value: &str, duration: std::time::Duration) {
        let seconds = duration.as_secs_f64();
        if let Ok(mut series) = self.series.lock() {
            let key = series_key(&series, &[value], self.max_series);
            let buckets = series.entry(key).or_insert_with(|| Buckets {
                counts: vec![0; self.bounds_seconds.len()],
                ..Buckets::default()
            });
            for (bound, count) in self.bounds_seconds.iter().zip(&mut buckets.counts) {
                if seconds <= *bound {
                    *count += 1;
                }
            }
            buckets.sum_seconds += seconds;
            buckets.count += 1;
        }
    }

    /// How many observations the series labelled `value` holds.
    pub fn count(&self, value: &str) -> u64 {
        self.series
            .lock()
            .ok()
            .and_then(|series| series.get(&vec![value.to_owned()]).map(|b| b.count))
            .unwrap_or(0)
    }
}

impl Metric for HistogramVec {
    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        let Ok(series) = self.series.lock() else {
            return;
        };
        for (values, buckets) in series.iter() {
            let labels = label_pairs(&[self.label], values);
            for (bound, count) in self.bounds_seconds.iter().zip(&buckets.counts) {
                let _ = writeln!(
                    out,
                    "{}_bucket{{{labels},le=\"{bound}\"}} {count}",
                    self.name
                );
            }
            let _ = writeln!(
                out,
                "{}_bucket{{{labels},le=\"+Inf\"}} {}",
                self.name, buckets.count
            );
            let _ = writeln!(out, "{}_sum{{{labels}}} {}", self.name, buckets.sum_seconds);
            let _ = writeln!(out, "{}_count{{{labels}}} {}", self.name, buckets.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_prometheus_text() {
        let registry = Registry::default();
        let puts = registry.register(Counter::new("puts_total", "Puts."));
        let failures =
            registry.register(LabeledCounter::new("failures_total", "Failures.", "reason"));
        let latency = registry.register(Histogram::new("latency_seconds", "Latency.", &[0.1, 1.0]));
        puts.inc();
        failures.inc("capacity");
        failures.inc("capacity");
        latency.observe(Duration::from_millis(500));
        let text = registry.render();
        assert!(text.contains("puts_total 1\n"), "{text}");
        assert!(
            text.contains("failures_total{reason=\"capacity\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{le=\"0.1\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("latency_seconds_bucket{le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("latency_seconds_count 1\n"), "{text}");
    }
    #[test]
    fn labelled_families_escape_values_and_stop_growing_at_their_cap() {
        let registry = Registry::default();
        let requests = registry.register(CounterVec::new(
            "requests_total",
            "Requests.",
            &["route", "status"],
            2,
        ));
        let durations = registry.register(HistogramVec::new(
            "duration_seconds",
            "Durations.",
            "route",
            &[0.1],
            1,
        ));
        requests.inc(&["/a", "2xx"]);
        requests.inc(&["/\"b\"", "2xx"]);
        requests.inc(&["/invented-1", "4xx"]);
        requests.inc(&["/invented-2", "4xx"]);
        durations.observe("/a", Duration::from_millis(50));
        durations.observe("/b", Duration::from_millis(500));
        let text = registry.render();
        assert!(
            text.contains("requests_total{route=\"/a\",status=\"2xx\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("route=\"/\\\"b\\\"\""), "{text}");
        assert!(
            text.contains("requests_total{route=\"other\",status=\"other\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("duration_seconds_count{route=\"other\"} 1\n"),
            "{text}"
        );
    }
}
