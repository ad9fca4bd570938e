//! The run's correctness counters and their verdicts: nothing a person started may be
//! lost, anonymous visits may store nothing, a storm's tabs share one pair, stuffing is
//! refused and never answered with a 5xx.

use serde::Serialize;

use crate::counters::{self, Snapshot};

/// One counter and whether it is as it must be.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is counted.
    pub what: String,
    /// Its value.
    pub value: i64,
    /// What it must be, in words; empty for a figure shown for context.
    pub rule: String,
    /// Whether the rule holds (figures always hold).
    pub ok: bool,
}

fn must(what: &str, value: i64, rule: &str, ok: bool) -> Check {
    Check {
        what: what.to_owned(),
        value,
        rule: rule.to_owned(),
        ok,
    }
}

fn figure(what: &str, value: i64) -> Check {
    must(what, value, "", true)
}

/// What the visitors counted themselves (see [`crate::tally::Tally`]).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Seen {
    pub sign_ins_started: u64,
    pub sign_ins_completed: u64,
    pub cross_dc_sign_ins: u64,
    pub sso_hops: u64,
    pub sso_hops_failed: u64,
    pub refreshes: u64,
    pub refreshes_failed: u64,
    pub storms: u64,
    pub storms_split: u64,
    pub storm_most_pairs: u64,
    pub sign_outs: u64,
    pub stuffing_posts: u64,
    pub stuffing_limited: u64,
    pub stuffing_succeeded: u64,
    pub anonymous_visits: u64,
    pub anonymous_phase_visits: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
}

/// The three snapshots of a run: before it, between its phases, after it.
#[derive(Debug, Clone)]
pub struct Snapshots {
    pub before: Snapshot,
    pub between: Snapshot,
    pub after: Snapshot,
}

/// Every check of a run; `multi_dc` adds the cross-datacenter ones.
pub fn run_checks(seen: &Seen, s: &Snapshots, multi_dc: bool) -> Vec<Check> {
    let (before, between, after) = (&s.before, &s.between, &s.after);
    let whole = |series| after.since(before, series);
    let mut checks = Vec::new();

    // Anonymous phase: scrapers alone.
    let anonymous_puts = between.since(before, counters::STASH_PUTS);
    let anonymous_growth = between.since(before, counters::STASH_LIVE);
    checks.push(figure(
        "anonymous phase: login-page and /authorize visits by scrapers",
        seen.anonymous_phase_visits as i64,
    ));
    checks.push(must(
        "anonymous phase: stash writes",
        anonymous_puts,
        "= 0",
        anonymous_puts == 0,
    ));
    checks.push(must(
        "anonymous phase: growth of the stash's live entries",
        anonymous_growth,
        "<= 0",
        anonymous_growth <= 0,
    ));

    // Sign-ins.
    let started = seen.sign_ins_started as i64;
    let completed = seen.sign_ins_completed as i64;
    let login_counted = whole(counters::SIGN_INS);
    checks.push(figure(
        "sign-ins started (people's password posts)",
        started,
    ));
    checks.push(must(
        "sign-ins lost (started, not ended signed in at the site)",
        started - completed,
        "= 0",
        started == completed,
    ));
    checks.push(must(
        "sign-ins the login services counted as succeeded",
        login_counted,
        "= sign-ins started",
        login_counted == started,
    ));
    checks.push(must(
        "single-sign-on hops that did not sign in",
        seen.sso_hops_failed as i64,
        "= 0",
        seen.sso_hops_failed == 0,
    ));

    // Codes.
    let minted = whole(counters::CODES_MINTED);
    let redeemed = whole(counters::CODES_REDEEMED);
    let refused = whole(counters::CODES_REFUSED);
    let expected_codes = completed + seen.sso_hops as i64;
    checks.push(must(
        "codes minted (login services)",
        minted,
        "= sign-ins completed + SSO hops",
        minted == expected_codes,
    ));
    checks.push(must(
        "codes minted but not redeemed",
        minted - redeemed,
        "= 0",
        minted == redeemed,
    ));
    checks.push(must(
        "code redemptions refused",
        refused,
        "= 0",
        refused == 0,
    ));

    // Refreshes.
    checks.push(figure(
        "refreshes the returning people saw",
        seen.refreshes as i64,
    ));
    checks.push(must(
        "aged sessions not refreshed",
        seen.refreshes_failed as i64,
        "= 0",
        seen.refreshes_failed == 0,
    ));
    checks.push(figure("refresh storms", seen.storms as i64));
    checks.push(must(
        "distinct pairs handed to one storm's tabs, at most",
        seen.storm_most_pairs as i64,
        "= 1 (when storms ran)",
        seen.storms == 0 || (seen.storm_most_pairs == 1 && seen.storms_split == 0),
    ));
    checks.push(figure(
        "refreshes the session services answered",
        whole(counters::SESSIONS_REFRESHED),
    ));

    // Stuffing.
    let limited = whole(counters::RATE_LIMITED);
    checks.push(figure(
        "stuffing: wrong passwords posted",
        seen.stuffing_posts as i64,
    ));
    checks.push(must(
        "stuffing: refused with 429",
        seen.stuffing_limited as i64,
        "> 0 (when stuffing ran)",
        seen.stuffing_posts == 0 || seen.stuffing_limited > 0,
    ));
    checks.push(must(
        "stuffing: refusals the login services counted as rate limited",
        limited,
        "= stuffing refused with 429",
        limited == seen.stuffing_limited as i64,
    ));
    checks.push(must(
        "stuffing: answered other than 401 or 429 (let through)",
        seen.stuffing_succeeded as i64,
        "= 0",
        seen.stuffing_succeeded == 0,
    ));

    // Errors.
    checks.push(must(
        "5xx responses",
        seen.server_errors as i64,
        "= 0",
        seen.server_errors == 0,
    ));
    checks.push(must(
        "requests without an answer",
        seen.transport_errors as i64,
        "= 0",
        seen.transport_errors == 0,
    ));
    let races = whole(counters::STASH_WRITE_RACES);
    let write_failures = whole(counters::STASH_WRITE_FAILURES) - races;
    checks.push(figure(
        "stash puts that lost a race for one key (concurrent refreshes agreeing)",
        races,
    ));
    checks.push(must(
        "stash writes refused for any other reason",
        write_failures,
        "= 0",
        write_failures == 0,
    ));
    checks.push(figure(
        "session service refusals (revoked or ended sessions included)",
        whole(counters::SESSION_FAILURES),
    ));

    // Share of anonymous traffic at the login.
    checks.push(figure(
        "scrapers' visits, both phases",
        seen.anonymous_visits as i64,
    ));
    let anonymous = whole(counters::ANONYMOUS_REQUESTS);
    let authenticated = whole(counters::AUTHENTICATED_REQUESTS);
    checks.push(figure("login-domain requests without a session", anonymous));
    checks.push(figure("login-domain requests with one", authenticated));

    if multi_dc {
        let forwarded = whole(counters::STASH_FORWARDED);
        checks.push(must(
            "sign-ins whose code was redeemed in the other datacenter",
            seen.cross_dc_sign_ins as i64,
            "> 0",
            seen.cross_dc_sign_ins > 0,
        ));
        checks.push(must(
            "stash calls carried to the token's home datacenter",
            forwarded,
            ">= cross-datacenter sign-ins",
            forwarded >= seen.cross_dc_sign_ins as i64,
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prometheus(pairs: &[(&str, f64)]) -> String {
        pairs
            .iter()
            .map(|(series, value)| format!("{series} {value}\n"))
            .collect()
    }

    fn snapshot(text: &str) -> Snapshot {
        Snapshot::from_texts(&[text])
    }

    fn clean_run() -> (Seen, Snapshots) {
        let seen = Seen {
            sign_ins_started: 10,
            sign_ins_completed: 10,
            sso_hops: 4,
            storms: 2,
            storm_most_pairs: 1,
            stuffing_posts: 16,
            stuffing_limited: 6,
            anonymous_visits: 300,
            anonymous_phase_visits: 120,
            ..Seen::default()
        };
        let before = snapshot(&prometheus(&[("tessera_stash_live_entries", 3.0)]));
        let between = before.clone();
        let after = snapshot(&prometheus(&[
            ("tessera_login_attempts_total{outcome=\"succeeded\"}", 10.0),
            ("tessera_login_codes_issued_total", 14.0),
            ("tessera_login_code_mint_to_redeem_seconds_count", 14.0),
            ("tessera_login_rate_limited_total{limit=\"account\"}", 6.0),
            ("tessera_stash_live_entries", 40.0),
        ]));
        (
            seen,
            Snapshots {
                before,
                between,
                after,
            },
        )
    }

    fn failing(checks: &[Check]) -> Vec<String> {
        checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.clone())
            .collect()
    }

    #[test]
    fn a_clean_run_passes_every_check() {
        let (seen, snapshots) = clean_run();
        assert_eq!(
            failing(&run_checks(&seen, &snapshots, false)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_lost_sign_in_an_unredeemed_code_and_a_split_storm_each_fail() {
        let (mut seen, mut snapshots) = clean_run();
        seen.sign_ins_completed = 9;
        seen.storm_most_pairs = 2;
        seen.storms_split = 1;
        snapshots.after = snapshot(&prometheus(&[
            ("tessera_login_attempts_total{outcome=\"succeeded\"}", 10.0),
            ("tessera_login_codes_issued_total", 14.0),
            ("tessera_login_code_mint_to_redeem_seconds_count", 13.0),
            ("tessera_login_rate_limited_total{limit=\"account\"}", 6.0),
        ]));
        let failed = failing(&run_checks(&seen, &snapshots, false));
        assert!(
            failed.iter().any(|f| f.starts_with("sign-ins lost")),
            "{failed:?}"
        );
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with("codes minted but not redeemed")),
            "{failed:?}"
        );
        assert!(
            failed.iter().any(|f| f.starts_with("distinct pairs")),
            "{failed:?}"
        );
    }

    #[test]
    fn anonymous_storage_a_5xx_and_unrefused_stuffing_each_fail() {
        let (mut seen, mut snapshots) = clean_run();
        seen.server_errors = 1;
        seen.stuffing_limited = 0;
        snapshots.between = snapshot(&prometheus(&[
            ("tessera_stash_puts_total", 2.0),
            ("tessera_stash_live_entries", 5.0),
        ]));
        let failed = failing(&run_checks(&seen, &snapshots, false));
        for expected in [
            "anonymous phase: stash writes",
            "anonymous phase: growth",
            "5xx responses",
            "stuffing: refused with 429",
        ] {
            assert!(
                failed.iter().any(|f| f.starts_with(expected)),
                "{expected}: {failed:?}"
            );
        }
    }

    #[test]
    fn across_datacenters_a_run_without_cross_redemptions_fails() {
        let (seen, snapshots) = clean_run();
        let failed = failing(&run_checks(&seen, &snapshots, true));
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with("sign-ins whose code was redeemed in the other")),
            "{failed:?}"
        );
    }
}
