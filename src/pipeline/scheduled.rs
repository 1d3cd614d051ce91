//! The pipeline behind the scheduler: turns a scheduled, backfill or manual run request
//! into a [`run`](super::run) and its result into the scheduler's typed outcome.

use std::path::PathBuf;
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::SendMode;
use super::{RunOptions, run};
use crate::config::{LoadOptions, Pipeline};
use crate::engine::EngineOptions;
use crate::error::PipelineError;
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::schedule::{PipelineRunner, RunFailure, RunOutcome, RunRequest};

/// Runs pipelines with fixed inputs, output and engine settings.
pub struct EngineRunner {
    pub inputs: Vec<(String, String)>,
    pub output: Option<String>,
    pub set: Vec<(String, String)>,
    pub engine: EngineOptions,
    pub state_dir: Option<PathBuf>,
    pub progress: Progress,
    pub select: Vec<String>,
    /// A pipeline the command already loaded (same file, same overrides): not read again.
    pub loaded: Option<Pipeline>,
    /// Whether the campaigns send (scheduled runs do; backfills only with `--send`).
    pub send: SendMode,
    /// The manifest of the last run that succeeded, for the command that asked for it.
    last: Mutex<Option<Manifest>>,
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
            loaded: None,
            send: SendMode::Send,
            last: Mutex::new(None),
        }
    }

    /// The manifest of the last successful run, taken once.
    pub fn take_last_manifest(&self) -> Option<Manifest> {
        self.last.lock().expect("manifest lock").take()
    }
}

impl PipelineRunner for EngineRunner {
    fn run(&self, req: RunRequest) -> BoxFuture<'_, Result<RunOutcome, RunFailure>> {
        Box::pin(async move {
            let mut set = self.set.clone();
            set.extend(req.set.iter().cloned());
            // The preloaded pipeline only stands for requests without extra overrides.
            let loaded = self.loaded.clone().filter(|_| req.set.is_empty());
            let opts = RunOptions {
                pipeline_file: req.pipeline.clone(),
                pipeline: loaded,
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
                cancel: req.cancel.clone(),
                lock_key: req.lock_key.clone(),
                lock_holder: req.lock_holder.clone(),
                send: self.send,
            };
            match run(&opts).await {
                Ok(m) => {
                    let outcome = RunOutcome {
                        rows_written: rows_written(&m),
                        messages_sent: m
                            .campaigns
                            .as_ref()
                            .map_or(0, |c| c.deliveries.iter().map(|d| d.delivered).sum()),
                        partial: m.campaigns.as_ref().is_some_and(|c| c.is_partial()),
                    };
                    *self.last.lock().expect("manifest lock") = Some(m);
                    Ok(outcome)
                }
                Err(e) => Err(failure(&e)),
            }
        })
    }
}

/// The scheduler's view of a failed run: the message, whose fault, stopped or failed.
pub fn failure(e: &PipelineError) -> RunFailure {
    RunFailure {
        message: e.to_string(),
        blame: e.blame(),
        interrupted: matches!(e, PipelineError::Interrupted(_)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Blame;
    use crate::state::StateError;

    #[test]
    fn a_ledger_that_cannot_be_written_is_a_failure_the_scheduler_retries() {
        // What SQLite says when the disk is full, as the ledger's write returns it.
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        );
        let e = PipelineError::state(&StateError::Sqlite(full));
        let f = failure(&e);
        assert_eq!(f.blame, Blame::External);
        assert!(
            f.blame.retriable(),
            "schedule::retries retries external failures"
        );
        assert!(!f.interrupted);
        assert_eq!(e.exit_code(), crate::error::EXIT_FAILED);
        assert!(f.message.contains("disk is full"), "{}", f.message);
    }

    #[test]
    fn a_state_database_from_a_newer_winback_is_the_users_to_upgrade() {
        let e = PipelineError::state(&StateError::SchemaTooNew {
            path: "winback.db".into(),
            found: 99,
            supported: 9,
        });
        assert_eq!(failure(&e).blame, Blame::User);
    }
}
