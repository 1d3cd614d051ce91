//! `winback run`: one pipeline run, recorded in the run history under the same lock the
//! scheduler takes (so a manual run never overlaps a scheduled one), then a summary.

use crate::cli::{PipelineArgs, RunArgs};
use crate::config::LoadOptions;
use crate::engine::EngineOptions;
use crate::engine_runner::EngineRunner;
use crate::error::{EXIT_FAILED, EXIT_OK};
use crate::progress::Progress;
use crate::schedule::{self, BackfillRequest};
use crate::state::State;

/// Turn the shared pipeline flags into load options (paths relative to the current folder).
pub fn load_options(p: &PipelineArgs, output: Option<String>) -> LoadOptions {
    LoadOptions {
        set: p.set.clone(),
        inputs: p.inputs.clone(),
        output,
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Resolve the default as_of (today in the pipeline's timezone) before locking on it.
    let pipeline =
        crate::config::load(&args.pipeline.pipeline, &load_options(&args.pipeline, None))?;
    let as_of = args.as_of.unwrap_or_else(|| crate::run::today(&pipeline));
    let state = State::open(&args.state_dir)?;
    let mut runner = EngineRunner::new(Some(args.state_dir.clone()));
    runner.inputs = args.pipeline.inputs.clone();
    runner.output = args.output.clone();
    runner.select = args.select.clone();
    runner.progress = Progress::new();
    runner.engine = EngineOptions {
        target_partitions: args.threads,
        memory_limit_bytes: args.memory_limit_mib.map(|m| m * 1024 * 1024),
    };
    let mut req = BackfillRequest::new(args.pipeline.pipeline.clone(), as_of, as_of);
    req.force = true;
    req.set = args.pipeline.set.clone();
    let report = schedule::backfill(
        &runner,
        &state,
        &req,
        &schedule::RunOptions::default(),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await?;
    match runner.take_last() {
        Some(Ok(manifest)) => {
            super::summary::print(&manifest);
            Ok(EXIT_OK)
        }
        Some(Err(e)) => Err(e.into()),
        None => {
            let why = report.failed.map(|f| f.error).unwrap_or_default();
            eprintln!("error: the run for {as_of} did not start: {why}");
            Ok(EXIT_FAILED)
        }
    }
}
