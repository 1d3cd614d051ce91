//! What the scheduler runs and how it ended: a job (one pipeline for one `as_of`), the
//! process-wide options and policies that govern it, and its result.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use super::{PipelineRunner, RunFailure, RunOutcome};
use crate::state::{RunId, State, holder_id};

/// How runs are executed by this process.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// This process's lock holder id (`host/pid/random`).
    pub holder: String,
    /// Lock lease; renewed every third of it while a run (or its retry backoff)
    /// goes on. A process killed without releasing blocks others this long.
    pub lease: Duration,
    /// How long a cancelled run gets to stop before it is dropped.
    pub grace: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            holder: holder_id(),
            lease: Duration::from_secs(60),
            grace: Duration::from_secs(30),
        }
    }
}

/// Retry and timeout settings of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPolicy {
    pub retries: u32,
    pub retry_backoff: Duration,
    pub max_run: Option<Duration>,
}

impl RunPolicy {
    /// One attempt, no timeout: backfills and runs by hand.
    pub fn once() -> RunPolicy {
        RunPolicy {
            retries: 0,
            retry_backoff: Duration::from_secs(60),
            max_run: None,
        }
    }
}

/// What to run.
pub(crate) struct Job<'a> {
    pub schedule: Option<&'a str>,
    pub pipeline: &'a Path,
    pub as_of: NaiveDate,
    pub fire_time: Option<DateTime<Utc>>,
    pub set: &'a [(String, String)],
    pub policy: RunPolicy,
    /// Run even if this pipeline already succeeded for `as_of`.
    pub force: bool,
}

/// Who runs it.
pub(crate) struct Exec<'a> {
    pub state: &'a State,
    pub runner: &'a dyn PipelineRunner,
    pub opts: &'a ExecOptions,
    /// Shutdown: stop the running attempt (with grace) and start no retry.
    pub shutdown: &'a CancellationToken,
    /// Called after each change to the run history.
    pub on_change: &'a (dyn Fn() + Send + Sync),
}

/// How a job ended. `run` is the last row recorded for it.
#[derive(Debug, Clone)]
pub enum JobResult {
    Succeeded {
        run: RunId,
        outcome: RunOutcome,
    },
    /// Not attempted: this pipeline already succeeded for this as_of.
    AlreadySucceeded {
        run: RunId,
    },
    /// Not attempted: the run lock is held by another holder.
    Skipped {
        run: RunId,
        reason: String,
    },
    /// Every attempt failed (or the failure was one no retry heals); `failure` is the
    /// last one's.
    Failed {
        run: RunId,
        failure: RunFailure,
    },
    /// Stopped by shutdown.
    Interrupted {
        run: RunId,
        failure: RunFailure,
    },
}
