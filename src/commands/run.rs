//! `winback run`: one pipeline run, then a summary.

use crate::cli::{PipelineArgs, RunArgs};
use crate::config::LoadOptions;
use crate::engine::EngineOptions;
use crate::error::EXIT_OK;
use crate::progress::Progress;
use crate::run::{RunOptions, run as run_pipeline};

/// Turn the shared pipeline flags into load options (paths relative to the current folder).
pub fn load_options(p: &PipelineArgs, output: Option<String>) -> LoadOptions {
    LoadOptions {
        set: p.set.clone(),
        inputs: p.inputs.clone(),
        output,
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let opts = RunOptions {
        pipeline_file: args.pipeline.pipeline.clone(),
        as_of: args.as_of,
        load: load_options(&args.pipeline, args.output.clone()),
        select: args.select.clone(),
        engine: EngineOptions {
            target_partitions: args.threads,
            memory_limit_bytes: args.memory_limit_mib.map(|m| m * 1024 * 1024),
        },
        progress: Progress::new(),
    };
    let manifest = run_pipeline(&opts).await?;
    super::summary::print(&manifest);
    Ok(EXIT_OK)
}
