//! `target-allocator check`: the SDK's invariant checks against a compiled
//! strategy, as a report for its author.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use target_allocator_sdk::AssignInput;
use target_allocator_sdk::testing::{
    self, CHECK_SEED, CHECK_SIZES, Movement, Violation, assign_checked, check_deterministic, check_stable,
    fixture,
};

use super::common::{ReportFormat, TimedStrategy, catalog, print_report};
use crate::allocation::Assigner;
use crate::runtime::SMOKE_TEST_TARGETS;

/// Batch size of the timing step, as the report promises "per 100k targets".
const TIMING_TARGETS: usize = 100_000;
const TIMING_COLLECTORS: usize = 10;
/// Timed calls; the report gives their mean.
const TIMING_CALLS: u32 = 3;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Strategy component (.wasm), or the name of a built-in.
    strategy: String,
    /// The strategy's options, as JSON.
    #[arg(long, default_value = "")]
    options: String,
    /// Most targets a collector change may move, as a multiple of the
    /// minimum (`inf` reports movement without judging it).
    #[arg(long, default_value_t = 3.0)]
    max_movement: f64,
    /// Fixture seeds: each seed is another set of synthetic targets.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
}

/// One line of the report.
struct Step {
    name: &'static str,
    verdict: Verdict,
    detail: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Passed,
    Failed,
    /// Not run because a step it depends on failed.
    Skipped,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Skipped => "skipped",
        }
    }
}

impl Step {
    fn new(name: &'static str, result: Result<String, String>) -> Step {
        match result {
            Ok(detail) => Step { name, verdict: Verdict::Passed, detail },
            Err(detail) => Step { name, verdict: Verdict::Failed, detail },
        }
    }

    fn skipped(name: &'static str, because: &str) -> Step {
        Step { name, verdict: Verdict::Skipped, detail: format!("{because} failed") }
    }
}

struct Fixture {
    seed: u64,
    targets: usize,
    collectors: usize,
    input: AssignInput,
}

impl Fixture {
    fn describe(&self) -> String {
        format!("{} targets, {} collectors, seed {}", self.targets, self.collectors, self.seed)
    }
}

/// Movement measured on one fixture.
struct Measured {
    seed: u64,
    targets: usize,
    collectors: usize,
    up: Movement,
    down: Movement,
}

pub fn run(args: CheckArgs) -> Result<()> {
    if args.max_movement.is_nan() || args.max_movement < 1.0 {
        bail!("--max-movement must be at least 1 (the minimum itself)");
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    let mut catalog = catalog()?;
    let mut steps = Vec::new();
    // Loading compiles, links, checks the contract and runs the smoke test;
    // nothing else can run when it fails.
    let strategy = match catalog.resolve(&args.strategy) {
        Ok(strategy) => strategy,
        Err(e) => {
            steps.push(Step::new("load", Err(e.to_string())));
            return finish(&args, None, &steps, &[], None);
        }
    };
    let load_detail = format!(
        "compiled, linked, contract {}, smoke test on {SMOKE_TEST_TARGETS} targets",
        strategy.contract()
    );
    steps.push(Step::new("load", Ok(load_detail)));
    let options = match strategy.validate_options(&args.options) {
        Ok(Ok(())) => Ok(format!("accepted {:?}", args.options)),
        Ok(Err(message)) => Err(format!("rejected {:?}: {message}", args.options)),
        Err(e) => Err(format!("validate-options failed: {e}")),
    };
    let options_ok = options.is_ok();
    steps.push(Step::new("options", options));
    if !options_ok {
        return finish(&args, Some(&*strategy), &steps, &[], None);
    }

    let mut timed = TimedStrategy::new(&*strategy, &args.options);
    let mut assign = |input: &AssignInput| timed.assign(input);
    // The SDK's check_all sizes, each with several seeds: the properties
    // must hold for any targets, not just one set.
    let fixtures: Vec<Fixture> = (CHECK_SEED..CHECK_SEED + args.seeds)
        .flat_map(|seed| {
            CHECK_SIZES.iter().map(move |&(targets, collectors)| Fixture {
                seed,
                targets,
                collectors,
                input: fixture(targets, collectors, seed),
            })
        })
        .collect();
    let sizes = format!(
        "{} fixtures ({} seeds), up to {} targets",
        fixtures.len(),
        args.seeds,
        CHECK_SIZES.iter().map(|s| s.0).max().unwrap_or(0)
    );
    let on_all = |check: &mut dyn FnMut(&AssignInput) -> Result<(), Violation>| {
        for f in &fixtures {
            check(&f.input).map_err(|v| format!("{}: {v}", f.describe()))?;
        }
        Ok(sizes.clone())
    };
    let valid = on_all(&mut |i| assign_checked(&mut assign, i).map(drop));
    let valid_ok = valid.is_ok();
    steps.push(Step::new("valid output", valid));
    // Without valid output every property check would repeat the same error.
    const PROPERTIES: [&str; 4] =
        ["deterministic", "no movement without change", "movement on scale-up", "movement on scale-down"];
    let mut measured = Vec::new();
    if valid_ok {
        steps.push(Step::new(PROPERTIES[0], on_all(&mut |i| check_deterministic(&mut assign, i))));
        steps.push(Step::new(PROPERTIES[1], on_all(&mut |i| check_stable(&mut assign, i))));
        let mut failure = None;
        for f in fixtures.iter().filter(|f| f.targets > 0 && f.collectors > 1) {
            let movement = testing::scale_up(&mut assign, &f.input)
                .and_then(|up| Ok((up, testing::scale_down(&mut assign, &f.input)?)));
            match movement {
                Ok((up, down)) => measured.push(Measured {
                    seed: f.seed,
                    targets: f.targets,
                    collectors: f.collectors,
                    up,
                    down,
                }),
                Err(v) => failure = Some(format!("{}: {v}", f.describe())),
            }
        }
        for (name, change, pick) in [
            (PROPERTIES[2], "a collector was added", (|m| m.up) as fn(&Measured) -> Movement),
            (PROPERTIES[3], "a collector was removed", |m| m.down),
        ] {
            let result = match &failure {
                Some(f) => Err(f.clone()),
                None => describe_movement(&measured, pick, change, args.max_movement),
            };
            steps.push(Step::new(name, result));
        }
    } else {
        steps.extend(PROPERTIES.iter().map(|name| Step::skipped(name, "valid output")));
    }

    let timing = fixture(TIMING_TARGETS, TIMING_COLLECTORS, CHECK_SEED);
    let mut timer = TimedStrategy::new(&*strategy, &args.options);
    let mut time = Ok(());
    for _ in 0..TIMING_CALLS {
        // The runtime validates every answer, so a bad one is an error here.
        time = timer.assign(&timing).map(drop);
        if time.is_err() {
            break;
        }
    }
    let per_100k = time.is_ok().then(|| timer.mean_call());
    let detail = time.map(|()| {
        format!(
            "{:.1} ms per {TIMING_TARGETS} targets, {TIMING_COLLECTORS} collectors (mean of {TIMING_CALLS} calls)",
            millis(timer.mean_call())
        )
    });
    steps.push(Step::new("time", detail));
    finish(&args, Some(&*strategy), &steps, &measured, per_100k)
}

/// Movement on every measured fixture judged against `max_ratio`; the
/// detail names the worst fixture, or the first over the bound.
fn describe_movement(
    measured: &[Measured],
    pick: fn(&Measured) -> Movement,
    change: &'static str,
    max_ratio: f64,
) -> Result<String, String> {
    let line = |m: &Measured| {
        let movement = pick(m);
        format!(
            "{} targets, {} collectors, seed {}: moved {}, minimum {} (ratio {:.2})",
            m.targets,
            m.collectors,
            m.seed,
            movement.moved,
            movement.minimum,
            movement.ratio()
        )
    };
    for m in measured {
        if let Err(v) = pick(m).check(max_ratio, change) {
            return Err(format!("{}: {v}", line(m)));
        }
    }
    let worst = measured.iter().max_by(|a, b| pick(a).ratio().total_cmp(&pick(b).ratio()));
    Ok(worst.map_or_else(|| "nothing measured".to_string(), |m| format!("worst: {}", line(m))))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn finish(
    args: &CheckArgs,
    strategy: Option<&dyn Assigner>,
    steps: &[Step],
    measured: &[Measured],
    per_100k: Option<Duration>,
) -> Result<()> {
    let failed: Vec<&str> = steps.iter().filter(|s| s.verdict == Verdict::Failed).map(|s| s.name).collect();
    let mut out = String::new();
    match args.format {
        ReportFormat::Text => {
            match strategy {
                Some(s) => writeln!(
                    out,
                    "strategy {} {} ({}, sha256 {})",
                    s.name(),
                    s.info().version,
                    s.source(),
                    s.digest()
                )?,
                None => writeln!(out, "strategy {}", args.strategy)?,
            }
            for step in steps {
                let verdict = match step.verdict {
                    Verdict::Passed => "ok  ",
                    Verdict::Failed => "FAIL",
                    Verdict::Skipped => "skip",
                };
                // Trap messages carry a multi-line wasm backtrace: keep it under its step.
                let detail = step.detail.replace('\n', "\n      ");
                writeln!(out, "{verdict}  {:<27} {detail}", step.name)?;
            }
            let summary = if failed.is_empty() {
                "passed".to_string()
            } else {
                format!("FAILED: {}", failed.join(", "))
            };
            writeln!(out, "{summary}")?;
        }
        ReportFormat::Json => {
            let movement = |pick: fn(&Measured) -> Movement| -> Vec<serde_json::Value> {
                measured
                    .iter()
                    .map(|m| {
                        let v = pick(m);
                        serde_json::json!({
                            "seed": m.seed, "targets": m.targets, "collectors": m.collectors,
                            "moved": v.moved, "minimum": v.minimum, "ratio": v.ratio(),
                        })
                    })
                    .collect()
            };
            let report = serde_json::json!({
                "strategy": strategy.map(|s| serde_json::json!({
                    "name": s.name(), "version": s.info().version, "source": s.source(), "digest": s.digest(),
                })),
                "passed": failed.is_empty(),
                "checks": steps.iter().map(|s| serde_json::json!({
                    "name": s.name, "result": s.verdict.as_str(), "detail": s.detail,
                })).collect::<Vec<_>>(),
                "scale_up": movement(|m| m.up),
                "scale_down": movement(|m| m.down),
                "ms_per_100k_targets": per_100k.map(millis),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
    }
    print_report(&out)?;
    if !failed.is_empty() {
        bail!("check of {} failed: {}", args.strategy, failed.join(", "));
    }
    Ok(())
}
