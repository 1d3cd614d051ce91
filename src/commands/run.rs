//! `winback run`: one pipeline run, recorded in the run history under the same lock the
//! scheduler takes (so a manual run never overlaps a scheduled one), then a summary.

use super::schedule::{cli_runner, exit_code, recorded_runs};
use crate::cli::{PipelineArgs, RunArgs};
use crate::config::LoadOptions;
use crate::engine::EngineOptions;
use crate::error::EXIT_OK;
use crate::pipeline::SendMode;
use crate::pipeline::session;

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
    runner.select = args.select.clone();
    runner.engine = EngineOptions {
        target_partitions: args.threads,
        memory_limit_bytes: args.memory_limit_mib.map(|m| m * 1024 * 1024),
        ..EngineOptions::default()
    };
    runner.loaded = Some(pipeline);
    runner.send = if args.dry_run {
        SendMode::DryRun
    } else if args.no_send {
        SendMode::NoSend
    } else {
        SendMode::Send
    };
    let report = recorded_runs(
        &runner,
        &args.pipeline,
        &args.state_dir,
        (as_of, as_of),
        true,
        args.grace_secs,
        args.lease_secs,
    )
    .await?;
    if let Some(f) = &report.failed {
        eprintln!("error: {}", f.error);
        return Ok(exit_code(&report));
    }
    if let Some(m) = &report.last_manifest {
        super::summary::print(m);
    }
    Ok(if report.partial {
        crate::error::EXIT_PARTIAL
    } else {
        EXIT_OK
    })
}
