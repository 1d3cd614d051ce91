//! The real pipeline behind the scheduler: turns a scheduled or backfill run request
//! into a pipeline run, and keeps the last manifest or error for the command that asked.

use std::path::PathBuf;
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::config::LoadOptions;
use crate::engine::EngineOptions;
use crate::error::PipelineError;
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::run::{RunOptions, run};
use crate::schedule::{PipelineRunner, RunOutcome, RunRequest};

/// Runs pipelines with fixed inputs, output and engine settings.
pub struct EngineRunner {
    pub inputs: Vec<(String, String)>,
    pub output: Option<String>,
    pub set: Vec<(String, String)>,
    pub engine: EngineOptions,
    pub state_dir: Option<PathBuf>,
    pub progress: Progress,
    pub select: Vec<String>,
    last: Mutex<Option<Result<Manifest, PipelineError>>>,
}

impl EngineRunner {
    pub fn new(state_dir: Option<PathBuf>) -> Self {
        EngineRunner {
            inputs: vec![],
            output: None,
            set: vec![],
            engine: EngineOptions::default(),
            state_dir,
            progress: Progress::hidden(),
            select: vec![],
            last: Mutex::new(None),
        }
    }

    /// The result of the most recent run, taken out.
    pub fn take_last(&self) -> Option<Result<Manifest, PipelineError>> {
        self.last.lock().expect("runner result lock").take()
    }
}

impl PipelineRunner for EngineRunner {
    fn run(&self, req: RunRequest) -> BoxFuture<'_, Result<RunOutcome, String>> {
        Box::pin(async move {
            let mut set = self.set.clone();
            set.extend(req.set.iter().cloned());
            let opts = RunOptions {
                pipeline_file: req.pipeline.clone(),
                as_of: Some(req.as_of),
                load: LoadOptions {
                    set,
                    inputs: self.inputs.clone(),
                    output: self.output.clone(),
                },
                select: self.select.clone(),
                engine: self.engine.clone(),
                progress: self.progress.clone(),
                state_dir: self.state_dir.clone(),
            };
            let result = tokio::select! {
                r = run(&opts) => r,
                _ = req.cancel.cancelled() => Err(PipelineError::Internal(
                    "interrupted before the run finished".into(),
                )),
            };
            let outcome = match &result {
                Ok(m) => Ok(RunOutcome {
                    rows_written: rows_written(m),
                    messages_sent: 0,
                }),
                Err(e) => Err(format!("{e}")),
            };
            *self.last.lock().expect("runner result lock") = Some(result);
            outcome
        })
    }
}

/// Rows of the tables a run wrote.
pub fn rows_written(m: &Manifest) -> u64 {
    let quarantined: u64 = m.quarantine.values().sum();
    m.stages
        .iter()
        .filter(|s| m.outputs.iter().any(|o| o.table == s.name))
        .map(|s| s.rows)
        .sum::<u64>()
        + if m.outputs.iter().any(|o| o.table == "quarantine") {
            quarantined
        } else {
            0
        }
}
