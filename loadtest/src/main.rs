//! `tessera-load`: goose load runs against a running Tessera stack, described by the
//! `stack.json` its start-up wrote. Two phases: scrapers alone (so the stash's growth
//! under anonymous traffic alone can be read), then the whole mix. Each phase leaves
//! goose's HTML and JSON reports; the run checks its correctness counters against the
//! services' own `/metrics`, draws a chart, and fails if anything was lost.
//!
//! Usage: tessera-load --stack <stack.json> --out <dir> [--mix scraper=12,person=3,…]
//!        [goose flags: --users, --run-time, --iterations, --report-file, …]

mod chart;
mod checks;
mod counters;
mod plan;
mod report;
mod scenarios;
mod stack;
mod tally;
mod visitor;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use goose::config::GooseConfiguration;
use goose::prelude::*;

use crate::checks::{run_checks, Seen, Snapshots};
use crate::counters::Snapshot;
use crate::plan::{Mix, Plan};
use crate::stack::Stack;
use crate::tally::{Tally, Timeline};

/// The command line: ours, and goose's (passed on).
#[derive(Debug)]
struct Args {
    stack: PathBuf,
    out: PathBuf,
    mix: Mix,
    goose: Vec<String>,
}

const USAGE: &str = "usage: tessera-load --stack <stack.json> --out <dir> [--mix scraper=12,person=3,returning=2,storm=1,stuffer=2] [goose flags: --users N --run-time 30s | --iterations N --report-file F …]";

fn parse_args(raw: impl IntoIterator<Item = String>) -> anyhow::Result<Args> {
    let (mut stack, mut out, mut mix, mut goose) = (None, None, Mix::default(), Vec::new());
    let mut raw = raw.into_iter();
    while let Some(arg) = raw.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| raw.next())
                .with_context(|| format!("{name} needs a value; {USAGE}"))
        };
        match flag.as_str() {
            "--stack" => stack = Some(PathBuf::from(value("--stack")?)),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--mix" => mix = Mix::parse(&value("--mix")?)?,
            "-h" | "--help" => anyhow::bail!(
                "{USAGE}\n(goose's own flags: tessera-load --stack <f> --out <d> -- --help)"
            ),
            "--" => goose.extend(raw.by_ref()),
            _ => goose.push(arg),
        }
    }
    Ok(Args {
        stack: stack.with_context(|| format!("--stack is required; {USAGE}"))?,
        out: out.with_context(|| format!("--out is required; {USAGE}"))?,
        mix,
        goose,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("tessera-load: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The whole run; whether every check held.
async fn run() -> anyhow::Result<bool> {
    let args = parse_args(std::env::args().skip(1))?;
    let stack = Stack::load(&args.stack)?;
    let plan = Plan {
        password: stack.password()?,
        ca: Plan::load_ca(&stack)?,
        stack,
        mix: args.mix.clone(),
    };
    Plan::install(plan)?;
    let plan = Plan::get();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let metrics_http = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    println!(
        "tessera-load: {} — mix {}; reports under {}",
        plan.stack.name,
        mix_text(&plan.mix),
        args.out.display()
    );
    // The run's clock starts now, so the chart's seconds line up with both phases.
    Timeline::get();

    let before = Snapshot::take(&plan.stack, &metrics_http).await?;
    // Without scrapers (e.g. comparing load generators on people alone) there is no
    // anonymous phase.
    let anonymous = if plan.mix.weight("scraper") > 0 {
        println!("tessera-load: anonymous phase: scrapers alone");
        Some(
            run_phase(
                &args,
                scenarios::scenarios(&plan.mix, true)?,
                &args.out.join("anonymous"),
            )
            .await?,
        )
    } else {
        None
    };
    let between = Snapshot::take(&plan.stack, &metrics_http).await?;
    let anonymous_phase_visits = Tally::read(&Tally::get().anonymous_visits);
    let boundary = Timeline::get().seconds().len() as u64;
    println!("tessera-load: mixed phase: {}", mix_text(&plan.mix));
    let mixed = run_phase(
        &args,
        scenarios::scenarios(&plan.mix, false)?,
        &args.out.join("mixed"),
    )
    .await?;
    let after = Snapshot::take(&plan.stack, &metrics_http).await?;

    let seen = Seen {
        anonymous_phase_visits,
        ..seen()
    };
    let snapshots = Snapshots {
        before,
        between,
        after,
    };
    let checks = run_checks(&seen, &snapshots, plan.stack.is_multi_dc());
    let seconds = Timeline::get().seconds();
    let written = report::write(&report::Run {
        out: &args.out,
        stack: &plan.stack,
        mix: &plan.mix,
        goose_args: &args.goose,
        phases: anonymous
            .as_ref()
            .map(|metrics| ("anonymous", metrics))
            .into_iter()
            .chain([("mixed", &mixed)])
            .collect(),
        seen: &seen,
        checks: &checks,
        chart: &chart::svg(
            &format!("tessera-load: {}", plan.stack.name),
            &seconds,
            anonymous.is_some().then_some(boundary),
        ),
        anonymous_share: report::anonymous_share(&snapshots),
    })?;
    println!("{}", report::console(&checks, &written));
    Ok(checks.iter().all(|c| c.ok))
}

fn mix_text(mix: &Mix) -> String {
    mix.weights
        .iter()
        .map(|(kind, weight)| format!("{kind}={weight}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One goose attack with `scenarios`; its reports go to `dir`.
async fn run_phase(
    args: &Args,
    scenarios: Vec<Scenario>,
    dir: &Path,
) -> anyhow::Result<GooseMetrics> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut goose_args = args.goose.clone();
    for report in ["report.html", "report.json"] {
        goose_args.push("--report-file".into());
        goose_args.push(dir.join(report).display().to_string());
    }
    let config = GooseConfiguration::parse_args_default(&goose_args)
        .map_err(|e| anyhow::anyhow!("goose flags: {e}; {USAGE}"))?;
    let bounded_by_iterations = config.iterations.is_some();
    let mut attack = GooseAttack::initialize_with_config(config)?;
    for scenario in scenarios {
        attack = attack.register_scenario(scenario);
    }
    let plan = Plan::get();
    attack = *attack.set_default(GooseDefault::Host, plan.stack.login_origin.as_str())?;
    attack = *attack.set_default(GooseDefault::Users, plan.mix.total())?;
    attack = *attack.set_default(GooseDefault::IncreaseRate, "20")?;
    attack = *attack.set_default(GooseDefault::NoTelnet, true)?;
    attack = *attack.set_default(GooseDefault::NoWebSocket, true)?;
    if !bounded_by_iterations {
        attack = *attack.set_default(GooseDefault::RunTime, 30)?;
        // Count the ramp-up too, as the services' counters do (a run bounded by
        // iterations never resets its metrics, and goose refuses the option then).
        attack = *attack.set_default(GooseDefault::NoResetMetrics, true)?;
    }
    Ok(attack.execute().await?)
}

fn seen() -> Seen {
    let t = Tally::get();
    let r = Tally::read;
    Seen {
        sign_ins_started: r(&t.sign_ins_started),
        sign_ins_completed: r(&t.sign_ins_completed),
        cross_dc_sign_ins: r(&t.cross_dc_sign_ins),
        sso_hops: r(&t.sso_hops),
        sso_hops_failed: r(&t.sso_hops_failed),
        refreshes: r(&t.refreshes),
        refreshes_failed: r(&t.refreshes_failed),
        storms: r(&t.storms),
        storms_split: r(&t.storms_split),
        storm_most_pairs: r(&t.storm_most_pairs),
        sign_outs: r(&t.sign_outs),
        stuffing_posts: r(&t.stuffing_posts),
        stuffing_limited: r(&t.stuffing_limited),
        stuffing_succeeded: r(&t.stuffing_succeeded),
        anonymous_visits: r(&t.anonymous_visits),
        anonymous_phase_visits: 0,
        server_errors: r(&t.server_errors),
        transport_errors: r(&t.transport_errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> anyhow::Result<Args> {
        parse_args(text.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn our_flags_are_taken_and_the_rest_go_to_goose() {
        let parsed =
            args("--stack s.json --users 40 --out=o --mix scraper=5 --run-time 1m").expect("args");
        assert_eq!(parsed.stack, PathBuf::from("s.json"));
        assert_eq!(parsed.out, PathBuf::from("o"));
        assert_eq!(parsed.mix.weight("scraper"), 5);
        assert_eq!(parsed.goose, ["--users", "40", "--run-time", "1m"]);
        let config =
            GooseConfiguration::parse_args_default(&parsed.goose).expect("goose takes them");
        assert_eq!(config.users, Some(40));
    }

    #[test]
    fn a_missing_stack_or_value_says_how_to_call() {
        let err = args("--out o").expect_err("no stack").to_string();
        assert!(
            err.contains("--stack is required") && err.contains("usage:"),
            "{err}"
        );
        let err = args("--stack s --out").expect_err("no value").to_string();
        assert!(err.contains("--out needs a value"), "{err}");
    }
}
