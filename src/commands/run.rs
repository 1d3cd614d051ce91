//! `winback run`: one pipeline run, recorded in the run history under the same lock the
//! scheduler takes (so a manual run never overlaps a scheduled one), then a summary.

use super::schedule::{by_hand, cli_runner};
use std::path::Path;

use chrono::NaiveDate;

use crate::cli::{PipelineArgs, RunArgs};
use crate::config::LoadOptions;
use crate::engine::EngineOptions;
use crate::error::{EXIT_FAILED, EXIT_OK};
use crate::manifest::Manifest;
use crate::pipeline::SendMode;
use crate::pipeline::scheduled::EngineRunner;
use crate::pipeline::session;
use crate::schedule::{self, JobResult};
use crate::state::State;

/// Turn the shared pipeline flags into load options (paths relative to the current folder).
pub fn load_options(p: &PipelineArgs, output: Option<String>) -> LoadOptions {
    LoadOptions {
        set: p.overrides(),
        inputs: p.inputs.clone(),
        output,
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Loaded once: the default as_of (today in the pipeline's timezone) is needed before
    // locking on it, and the run reuses the same pipeline.
    let opts = load_options(&args.pipeline, args.output.clone());
    let pipeline = session::load(&args.pipeline.pipeline, &opts)?;
    let as_of = args.as_of.unwrap_or_else(|| session::today(&pipeline));
    let mut runner = cli_runner(&args.pipeline, args.output.clone(), &args.state_dir);
    runner.options.select = args.select.clone();
    runner.options.engine = EngineOptions {
        target_partitions: args.threads,
        memory_limit_bytes: args.memory_limit_mib.map(|m| m * 1024 * 1024),
        ..EngineOptions::default()
    };
    runner.options.pipeline = Some(pipeline);
    runner.options.full_refresh = args.full_refresh;
    runner.options.send = if args.dry_run {
        SendMode::DryRun
    } else if args.no_send {
        SendMode::NoSend
    } else {
        SendMode::Send
    };
    let ended = run_once(
        &runner,
        &args.pipeline,
        &args.state_dir,
        as_of,
        args.grace_secs,
        args.lease_secs,
    )
    .await?;
    match ended {
        Ended::Done { manifest, partial } => {
            if let Some(m) = &manifest {
                super::summary::print(m);
            }
            Ok(if partial {
                crate::error::EXIT_PARTIAL
            } else {
                EXIT_OK
            })
        }
        Ended::Failed { message, exit_code } => {
            eprintln!("error: {message}");
            Ok(exit_code)
        }
    }
}

/// How a run by hand ended.
pub enum Ended {
    /// The run succeeded: its manifest, and whether some messages were not delivered.
    Done {
        manifest: Option<Box<Manifest>>,
        partial: bool,
    },
    /// It failed, was stopped, or could not take its lock: why, and the exit code.
    Failed { message: String, exit_code: i32 },
}

/// Run `p`'s pipeline for `as_of` by hand, straight through the runner, under the
/// scheduler's lock and recorded in its run history.
pub async fn run_once(
    runner: &EngineRunner,
    p: &PipelineArgs,
    state_dir: &Path,
    as_of: NaiveDate,
    grace_secs: u64,
    lease_secs: u64,
) -> anyhow::Result<Ended> {
    let state = State::open(state_dir)?;
    let (opts, cancel) = by_hand(grace_secs, lease_secs);
    let set = p.overrides();
    let result =
        schedule::run_now(runner, &state, &p.pipeline, as_of, &set, &opts, &cancel).await?;
    Ok(match result {
        JobResult::Succeeded { outcome, .. } => Ended::Done {
            manifest: runner.take_last_manifest().map(Box::new),
            partial: outcome.partial,
        },
        // Forced, a run by hand is never skipped for having succeeded before.
        JobResult::AlreadySucceeded { .. } => Ended::Done {
            manifest: None,
            partial: false,
        },
        // Locked by another process: it may be free later.
        JobResult::Skipped { reason, .. } => Ended::Failed {
            message: reason,
            exit_code: EXIT_FAILED,
        },
        JobResult::Failed { failure, .. } | JobResult::Interrupted { failure, .. } => {
            Ended::Failed {
                exit_code: failure.blame.exit_code(),
                message: failure.message,
            }
        }
    })
}
