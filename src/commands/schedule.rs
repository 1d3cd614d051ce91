//! `winback serve`, `backfill`, `runs` and `status`: pipelines on a schedule, date ranges,
//! and the run history.

use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use crate::cli::{BackfillArgs, PipelineArgs, RunsArgs, ServeArgs, StatusArgs};
use crate::error::{EXIT_CONFIG, EXIT_FAILED, EXIT_OK};
use crate::pipeline::scheduled::EngineRunner;
use crate::schedule::{self, BackfillRequest, ServeOptions, load_schedules, read_status};
use crate::state::State;

/// Cancel the token on SIGTERM or SIGINT (Ctrl-C); a second signal exits at once.
pub fn cancel_on_signals(grace_secs: u64) -> CancellationToken {
    super::signals::cancel_on_signals(format!(
        "stopping: no new runs start; the current run gets {grace_secs}s to finish or stop safely (a second signal stops at once)"
    ))
}

/// The exit code of a run or backfill: the failed run's class (78 for the user's
/// configuration or input, 1 otherwise), 2 when messages were not all delivered.
pub fn exit_code(report: &schedule::BackfillReport) -> i32 {
    match &report.failed {
        Some(f) => f.blame.exit_code(),
        None if report.cancelled => EXIT_FAILED,
        None if report.partial => crate::error::EXIT_PARTIAL,
        None => EXIT_OK,
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<i32> {
    let schedules = match load_schedules(&args.schedules) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_CONFIG);
        }
    };
    let now = Utc::now();
    for s in &schedules {
        println!("{}", s.describe(now, 3));
    }
    let state = State::open(&args.state_dir)?;
    // A pipeline with `[http] bind` has its listener answer beside the schedules.
    let listeners = match super::listen::listeners_for(&schedules, &state) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_CONFIG);
        }
    };
    let runner = Arc::new(EngineRunner::new(Some(args.state_dir.clone())));
    let mut opts = ServeOptions::default();
    opts.run.grace = std::time::Duration::from_secs(args.grace_secs);
    let stop = cancel_on_signals(args.grace_secs);
    for (bind, _) in &listeners {
        println!("listening for unsubscribes and provider events on http://{bind}");
    }
    super::listen::spawn(listeners, &stop);
    schedule::serve(schedules, state, runner, stop, opts).await?;
    println!("winback serve stopped");
    Ok(EXIT_OK)
}

/// A runner for commands run by hand: the command line's inputs and output, progress on
/// the terminal, history in `state_dir`.
pub fn cli_runner(p: &PipelineArgs, output: Option<String>, state_dir: &Path) -> EngineRunner {
    let mut runner = EngineRunner::new(Some(state_dir.to_path_buf()));
    runner.options.load.inputs = p.inputs.clone();
    runner.options.load.output = output;
    runner.options.progress = crate::progress::Progress::new();
    runner
}

/// How a run started by hand executes: this process's lock holder, the grace a stopped
/// run gets and the lease (at least 3 s), and the token SIGTERM or Ctrl-C fires.
pub fn by_hand(grace_secs: u64, lease_secs: u64) -> (schedule::ExecOptions, CancellationToken) {
    let opts = schedule::ExecOptions {
        grace: std::time::Duration::from_secs(grace_secs),
        lease: std::time::Duration::from_secs(lease_secs.max(3)),
        ..schedule::ExecOptions::default()
    };
    (opts, cancel_on_signals(grace_secs))
}

/// Run `p`'s pipeline for each as_of from `from` to `to`, recorded in the run history
/// under the scheduler's locks.
pub async fn recorded_runs(
    runner: &EngineRunner,
    p: &PipelineArgs,
    state_dir: &Path,
    (from, to): (NaiveDate, NaiveDate),
    force: bool,
    grace_secs: u64,
    lease_secs: u64,
) -> anyhow::Result<schedule::BackfillReport> {
    let state = State::open(state_dir)?;
    let mut req = BackfillRequest::new(p.pipeline.clone(), from, to);
    req.force = force;
    req.set = p.overrides();
    let (opts, cancel) = by_hand(grace_secs, lease_secs);
    Ok(schedule::backfill(runner, &state, &req, &opts, &cancel).await?)
}

pub async fn backfill(args: BackfillArgs) -> anyhow::Result<i32> {
    let mut runner = cli_runner(&args.pipeline, args.output.clone(), &args.state_dir);
    runner.options.send = if args.send {
        crate::pipeline::SendMode::Send
    } else {
        crate::pipeline::SendMode::NoSend
    };
    let report = recorded_runs(
        &runner,
        &args.pipeline,
        &args.state_dir,
        (args.from, args.to),
        args.force,
        args.grace_secs,
        60,
    )
    .await?;
    for d in &report.skipped {
        println!("{d}  skipped (already succeeded; --force runs it again)");
    }
    for d in &report.ran {
        println!("{d}  succeeded");
    }
    if let Some(f) = &report.failed {
        println!("{}  FAILED: {}", f.as_of, f.error);
        println!(
            "backfill stopped at {}; {} date(s) ran before it. Fix the problem and run the same command again: succeeded dates are skipped.",
            f.as_of,
            report.ran.len()
        );
        return Ok(exit_code(&report));
    }
    if report.cancelled {
        println!("backfill interrupted after {} date(s)", report.ran.len());
        return Ok(EXIT_FAILED);
    }
    println!(
        "backfill done: {} ran, {} skipped",
        report.ran.len(),
        report.skipped.len()
    );
    Ok(EXIT_OK)
}

pub async fn runs(args: RunsArgs) -> anyhow::Result<i32> {
    let state = State::open(&args.state_dir)?;
    let runs = state.last_runs(args.last)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(EXIT_OK);
    }
    println!(
        "{:>5} {:<12} {:<34} {:<10} {:<11} {:>3} {:<20} {:>10}  error",
        "id", "schedule", "pipeline", "as_of", "status", "try", "started (UTC)", "rows"
    );
    for r in runs {
        println!(
            "{:>5} {:<12} {:<34} {:<10} {:<11} {:>3} {:<20} {:>10}  {}",
            r.id.0,
            r.schedule.as_deref().unwrap_or("-"),
            r.pipeline,
            r.as_of,
            r.status.as_str(),
            r.attempt,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.rows_written,
            r.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    Ok(EXIT_OK)
}

pub async fn status(args: StatusArgs) -> anyhow::Result<i32> {
    match read_status(&args.state_dir) {
        Ok(s) => {
            println!("{}", serde_json::to_string_pretty(&s)?);
            let age = Utc::now() - s.heartbeat;
            if s.state == "running" && age.num_seconds() > args.stale_secs as i64 {
                eprintln!(
                    "winback serve (pid {}) has not written its heartbeat for {}s: it may have died",
                    s.pid,
                    age.num_seconds()
                );
                return Ok(EXIT_FAILED);
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!(
                "no status file in {}: is `winback serve` running there? ({e})",
                args.state_dir.display()
            );
            Ok(EXIT_FAILED)
        }
    }
}
