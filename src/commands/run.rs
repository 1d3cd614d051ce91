//! `winback run`: one pipeline run, recorded in the run history under the same lock the
//! scheduler takes (so a manual run never overlaps a scheduled one), then a summary.

use super::schedule::{cli_runner, recorded_runs};
use crate::cli::{PipelineArgs, RunArgs};
use crate::config::LoadOptions;
use crate::engine::EngineOptions;
use crate::error::{EXIT_FAILED, EXIT_OK};

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
    let mut runner = cli_runner(&args.pipeline, args.output.clone(), &args.state_dir);
    runner.select = args.select.clone();
    runner.engine = EngineOptions {
        target_partitions: args.threads,
        memory_limit_bytes: args.memory_limit_mib.map(|m| m * 1024 * 1024),
    };
    let report = recorded_runs(
        &runner,
        &args.pipeline,
        &args.state_dir,
        (as_of, as_of),
        true,
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
