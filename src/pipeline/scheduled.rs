//! The pipeline behind the scheduler: turns a scheduled, backfill or manual run request
//! into a [`run`](super::run) and its result into the scheduler's typed outcome.

use std::path::PathBuf;
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{RunOptions, run};
use crate::error::PipelineError;
use crate::manifest::Manifest;
use crate::schedule::{PipelineRunner, RunFailure, RunOutcome, RunRequest};

/// Runs pipelines with fixed inputs, output and engine settings: `options` is the
/// template of every run, each request filling in its pipeline file, `as_of`, extra
/// overrides, stop token and run lock.
pub struct EngineRunner {
    pub options: RunOptions,
    /// The manifest of the last run that succeeded, for the command that asked for it.
    last: Mutex<Option<Manifest>>,
}

impl EngineRunner {
    /// A runner whose runs read the run history and ledger in `state_dir`, with every
    /// other option at its default (scheduled runs send; see [`RunOptions::send`]).
    pub fn new(state_dir: Option<PathBuf>) -> Self {
        let mut options = RunOptions::new("");
        options.state_dir = state_dir;
        EngineRunner {
            options,
            last: Mutex::new(None),
        }
    }

    /// The manifest of the last successful run, taken once.
    pub fn take_last_manifest(&self) -> Option<Manifest> {
        self.last.lock().expect("manifest lock").take()
    }

    /// This runner's options for `req`.
    fn options_for(&self, req: &RunRequest) -> RunOptions {
        let mut opts = self.options.clone();
        opts.pipeline_file = req.pipeline.clone();
        opts.as_of = Some(req.as_of);
        opts.load.set.extend(req.set.iter().cloned());
        // A preloaded pipeline only stands for requests without extra overrides.
        if !req.set.is_empty() {
            opts.pipeline = None;
        }
        opts.cancel = req.cancel.clone();
        opts.lock_key = req.lock_key.clone();
        opts.lock_holder = req.lock_holder.clone();
        opts
    }
}

impl PipelineRunner for EngineRunner {
    fn run(&self, req: RunRequest) -> BoxFuture<'_, Result<RunOutcome, RunFailure>> {
        Box::pin(async move {
            match run(&self.options_for(&req)).await {
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
