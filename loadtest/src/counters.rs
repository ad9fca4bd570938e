//! The services' own counters, read from their `/metrics` before and after each phase:
//! the run's verdicts rest on what the services counted, not only on what goose saw.

use std::collections::BTreeMap;

use anyhow::Context as _;

use crate::stack::Stack;

/// One series: a metric name and an optional `label="value"`.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// The metric's name (for a histogram, e.g. `…_count`).
    pub name: &'static str,
    /// `(label, value)` to select one labelled series; `None` sums all of them.
    pub label: Option<(&'static str, &'static str)>,
}

const fn total(name: &'static str) -> Series {
    Series { name, label: None }
}

const fn labelled(name: &'static str, label: &'static str, value: &'static str) -> Series {
    Series {
        name,
        label: Some((label, value)),
    }
}

/// Successful sign-ins (right password, and the second factor where enrolled).
pub const SIGN_INS: Series = labelled("tessera_login_attempts_total", "outcome", "succeeded");
/// Wrong passwords.
pub const BAD_CREDENTIALS: Series =
    labelled("tessera_login_attempts_total", "outcome", "bad_credentials");
/// Sign-in posts refused by a limit (per network or per account).
pub const RATE_LIMITED: Series = total("tessera_login_rate_limited_total");
/// Authorization codes minted.
pub const CODES_MINTED: Series = total("tessera_login_codes_issued_total");
/// Authorization codes redeemed (the mint-to-redeem histogram counts each one).
pub const CODES_REDEEMED: Series = total("tessera_login_code_mint_to_redeem_seconds_count");
/// Redemptions refused, any reason.
pub const CODES_REFUSED: Series = total("tessera_login_code_redemption_failures_total");
/// Login-domain requests without a session.
pub const ANONYMOUS_REQUESTS: Series = labelled("tessera_login_requests_total", "visitor", "anon");
/// Login-domain requests with one.
pub const AUTHENTICATED_REQUESTS: Series =
    labelled("tessera_login_requests_total", "visitor", "authenticated");
/// Site sessions issued.
pub const SESSIONS_ISSUED: Series = total("tessera_session_issued_total");
/// Refreshes answered.
pub const SESSIONS_REFRESHED: Series = total("tessera_session_refreshed_total");
/// Session calls refused, any reason.
pub const SESSION_FAILURES: Series = total("tessera_session_failures_total");
/// Values written to the stash.
pub const STASH_PUTS: Series = total("tessera_stash_puts_total");
/// Values held by the stash now.
pub const STASH_LIVE: Series = total("tessera_stash_live_entries");
/// Stash writes refused, any reason.
pub const STASH_WRITE_FAILURES: Series = total("tessera_stash_write_failures_total");
/// Stash writes refused because the key was taken: how concurrent refreshes of one token
/// agree on a single winner, not a failure.
pub const STASH_WRITE_RACES: Series = labelled(
    "tessera_stash_write_failures_total",
    "reason",
    "already_exists",
);
/// Stash operations carried to the token's home datacenter.
pub const STASH_FORWARDED: Series = total("tessera_stash_forwarded_total");

/// Every series a run reads.
const ALL: [Series; 16] = [
    SIGN_INS,
    BAD_CREDENTIALS,
    RATE_LIMITED,
    CODES_MINTED,
    CODES_REDEEMED,
    CODES_REFUSED,
    ANONYMOUS_REQUESTS,
    AUTHENTICATED_REQUESTS,
    SESSIONS_ISSUED,
    SESSIONS_REFRESHED,
    SESSION_FAILURES,
    STASH_PUTS,
    STASH_LIVE,
    STASH_WRITE_FAILURES,
    STASH_WRITE_RACES,
    STASH_FORWARDED,
];

/// Every series of every datacenter at one moment, summed over the datacenters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    values: BTreeMap<String, f64>,
}

fn key(series: &Series) -> String {
    match series.label {
        Some((label, value)) => format!("{}{{{label}=\"{value}\"}}", series.name),
        None => series.name.to_owned(),
    }
}

impl Snapshot {
    /// Reads every datacenter's login, session and stash `/metrics`.
    pub async fn take(stack: &Stack, http: &reqwest::Client) -> anyhow::Result<Self> {
        let mut texts = Vec::new();
        for dc in &stack.datacenters {
            for url in [&dc.login_metrics, &dc.session_metrics, &dc.stash_metrics] {
                texts.push(fetch(http, url).await?);
            }
        }
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(Snapshot::from_texts(&texts))
    }

    /// Every series of [`ALL`], summed over the Prometheus texts `texts`.
    pub fn from_texts(texts: &[&str]) -> Self {
        let mut snapshot = Snapshot::default();
        for series in &ALL {
            let value = texts.iter().map(|text| sum(text, series)).sum();
            snapshot.values.insert(key(series), value);
        }
        snapshot
    }

    /// The value of `series`.
    pub fn get(&self, series: Series) -> f64 {
        self.values.get(&key(&series)).copied().unwrap_or_default()
    }

    /// How far `series` moved from `earlier` to this snapshot.
    pub fn since(&self, earlier: &Snapshot, series: Series) -> i64 {
        (self.get(series) - earlier.get(series)).round() as i64
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("reading {url} (is the stack still running?)"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    Ok(response.text().await?)
}

/// The sum of every sample of `series` in Prometheus text `text`.
pub fn sum(text: &str, series: &Series) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name_and_labels, value) = line.rsplit_once(' ')?;
            let (name, labels) = match name_and_labels.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (name_and_labels, ""),
            };
            if name != series.name {
                return None;
            }
            if let Some((label, wanted)) = series.label {
                let found = labels.split(',').any(|pair| {
                    pair.split_once('=').is_some_and(|(l, v)| {
                        l.trim() == label && v.trim().trim_matches('"') == wanted
                    })
                });
                if !found {
                    return None;
                }
            }
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP tessera_login_attempts_total Sign-in attempts by outcome.
# TYPE tessera_login_attempts_total counter
tessera_login_attempts_total{outcome="succeeded"} 12
tessera_login_attempts_total{outcome="bad_credentials"} 30
tessera_login_rate_limited_total{limit="ip"} 4
tessera_login_rate_limited_total{limit="account"} 5
tessera_login_code_mint_to_redeem_seconds_bucket{le="0.05"} 3
tessera_login_code_mint_to_redeem_seconds_count 9
tessera_stash_live_entries 17
"#;

    #[test]
    fn a_labelled_series_is_read_alone_and_an_unlabelled_one_sums_its_labels() {
        assert_eq!(sum(TEXT, &SIGN_INS), 12.0);
        assert_eq!(sum(TEXT, &BAD_CREDENTIALS), 30.0);
        assert_eq!(sum(TEXT, &RATE_LIMITED), 9.0);
        assert_eq!(sum(TEXT, &CODES_REDEEMED), 9.0);
        assert_eq!(sum(TEXT, &STASH_LIVE), 17.0);
        assert_eq!(sum(TEXT, &STASH_PUTS), 0.0);
    }
}
