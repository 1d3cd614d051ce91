//! Scheduling: running pipelines at cron fire times (`winback serve`), catching up after downtime, retrying, backfilling date ranges, and the interface to the code that actually runs a pipeline.
//!
//! Entry points for the binary:
//! * [`load_schedules`] reads `schedules/*.toml`; [`Schedule::describe`] prints one
//!   with its next fire times (for `validate`);
//! * [`serve`] runs the schedules until a cancellation token fires;
//! * [`backfill()`] runs one pipeline for a range of as_of dates;
//! * [`run_now`] runs one pipeline for one as_of by hand (`winback run`);
//! * run history and locks live in [`crate::state::State`].

pub(crate) mod attempt;
pub mod backfill;
pub mod catch_up;
pub mod config;
pub(crate) mod dispatch;
pub mod fire_times;
pub mod job;
pub mod manual;
pub mod retries;
pub mod scheduler;
pub mod status;

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::error::Blame;
use crate::state::StateError;

pub use crate::clock::{Clock, FakeClock, SystemClock};
pub use backfill::{BackfillFailure, BackfillReport, BackfillRequest, backfill};
pub use catch_up::{CatchUp, CatchUpPlan, missed_fires};
pub use config::{AsOfRule, Schedule, ScheduleFileError, load_schedules};
pub use fire_times::CronSpec;
pub use job::{ExecOptions, JobResult, RunPolicy};
pub use manual::run_now;
pub use scheduler::{ServeOptions, serve};
pub use status::{STATUS_FILE, StatusFile, read_status};

/// One run of a pipeline, handed to the [`PipelineRunner`].
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The schedule that fired it; `None` for backfills and manual runs.
    pub schedule: Option<String>,
    pub pipeline: PathBuf,
    pub as_of: NaiveDate,
    /// `--set` overrides, in order.
    pub set: Vec<(String, String)>,
    /// The cron fire time this run is for; `None` for backfills and manual runs.
    pub fire_time: Option<DateTime<Utc>>,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// The run lock held for this run (its staging scope).
    pub lock_key: String,
    /// Who holds that lock (`host/pid/nonce`): the send ledger records it with each
    /// reservation, so recovery can tell a live run's rows from a dead one's.
    pub lock_holder: String,
    /// Triggered when the run must stop: shutdown, `max_run_secs` exceeded, or the
    /// run's lock was lost. The runner should stop at the next safe point (finish
    /// the current batch) and return: `Ok` only if the run is complete, `Err`
    /// otherwise. It gets a grace period ([`ExecOptions::grace`]) before its future
    /// is dropped and the run recorded as interrupted (or failed, for a timeout).
    pub cancel: CancellationToken,
}

/// What a successful run reports, recorded in the run history. The scheduler knows when
/// runs happen, not what they do: what a run wrote stays with the runner.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    pub rows_written: u64,
    pub messages_sent: u64,
    /// Some messages were not delivered (failed, or unknown after a crash): exit code 2.
    pub partial: bool,
}

/// Why a run failed, typed: the scheduler retries only failures a retry can heal.
#[derive(Debug, Clone)]
pub struct RunFailure {
    /// One paragraph, recorded in the run history; no secrets.
    pub message: String,
    pub blame: Blame,
    /// Stopped on request (shutdown, timeout) rather than by an error.
    pub interrupted: bool,
}

impl RunFailure {
    /// A failure a retry may heal (storage, network).
    pub fn external(message: impl Into<String>) -> Self {
        RunFailure {
            message: message.into(),
            blame: Blame::External,
            interrupted: false,
        }
    }

    /// A failure of the user's configuration or input: never retried.
    pub fn user(message: impl Into<String>) -> Self {
        RunFailure {
            blame: Blame::User,
            ..RunFailure::external(message)
        }
    }

    /// A run stopped on request.
    pub fn interrupted(message: impl Into<String>) -> Self {
        RunFailure {
            blame: Blame::Internal,
            interrupted: true,
            ..RunFailure::external(message)
        }
    }
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Runs a pipeline; implemented by [`crate::pipeline::scheduled`] with the real engine.
pub trait PipelineRunner: Send + Sync {
    /// Runs `req` to completion or to a safe stop after `req.cancel` fires.
    fn run(&self, req: RunRequest) -> BoxFuture<'_, Result<RunOutcome, RunFailure>>;
}

/// A failure of scheduling itself (not of a pipeline run: those are recorded
/// in the run history and reported in results).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Config(#[from] ScheduleFileError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Invalid(String),
}

impl crate::error::Blamed for ScheduleError {
    fn blame(&self) -> Blame {
        match self {
            ScheduleError::Config(e) => e.blame(),
            ScheduleError::Io { .. } => Blame::External,
            ScheduleError::State(e) => e.blame(),
            ScheduleError::Invalid(_) => Blame::User,
        }
    }
}

/// The pipeline's identity in the run history and lock keys: its canonical path (links
/// and `.`/`..` resolved), so `pipelines/x.toml`, `./pipelines/x.toml` and an absolute
/// path are one pipeline and exclude each other. A file that does not exist (tests) keeps
/// its absolute path.
pub fn pipeline_key(pipeline: &Path) -> String {
    std::fs::canonicalize(pipeline)
        .or_else(|_| std::path::absolute(pipeline))
        .unwrap_or_else(|_| pipeline.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A state database on a fake clock, and a scripted runner.

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use futures::future::BoxFuture;

    use std::path::Path;

    use chrono::NaiveDate;
    use tokio_util::sync::CancellationToken;

    use super::job::{Exec, ExecOptions, Job, JobResult, RunPolicy};
    use super::retries::execute;
    use super::{PipelineRunner, RunFailure, RunOutcome, RunRequest};
    use crate::clock::{Clock, FakeClock};
    use crate::state::{RunStatus, State};

    /// A run of `pipelines/p.toml` for 2025-05-01 by schedule "nightly".
    pub fn test_job(policy: RunPolicy) -> Job<'static> {
        Job {
            schedule: Some("nightly"),
            pipeline: Path::new("pipelines/p.toml"),
            as_of: NaiveDate::from_ymd_opt(2025, 5, 1).unwrap(),
            fire_time: None,
            set: &[],
            policy,
            force: false,
        }
    }

    /// `retries` retries with a minute of backoff; runs time out after an hour.
    pub fn policy(retries: u32) -> RunPolicy {
        RunPolicy {
            retries,
            retry_backoff: Duration::from_secs(60),
            max_run: Some(Duration::from_secs(3600)),
        }
    }

    /// Execution options as lock holder `holder` (lease 60 s, grace 30 s).
    pub fn exec_as(holder: &str) -> ExecOptions {
        ExecOptions {
            holder: holder.into(),
            ..ExecOptions::default()
        }
    }

    /// Executes `job` as holder "me" (lease 60 s, grace 30 s).
    pub async fn run_job(
        state: &State,
        runner: &ScriptedRunner,
        shutdown: &CancellationToken,
        job: &Job<'_>,
    ) -> JobResult {
        let opts = exec_as("me");
        let on_change = || {};
        let ex = Exec {
            state,
            runner,
            opts: &opts,
            shutdown,
            on_change: &on_change,
        };
        execute(&ex, job).await.unwrap()
    }

    /// The lock key of `pipelines/p.toml` for `as_of` (YYYY-MM-DD).
    pub fn key(as_of: &str) -> String {
        let pipeline = super::pipeline_key(Path::new("pipelines/p.toml"));
        crate::state::lock_key(&pipeline, as_of.parse().unwrap())
    }

    pub fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub fn fake_state(start: &str) -> (tempfile::TempDir, FakeClock, State) {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::new(utc(start));
        let state = State::open_with_clock(dir.path(), Arc::new(clock.clone())).unwrap();
        (dir, clock, state)
    }

    /// What one call of the scripted runner does.
    #[derive(Debug, Clone)]
    pub enum Step {
        /// Succeed after this long.
        Ok(Duration),
        /// Fail with this message after this long (a failure a retry may heal).
        Fail(Duration, String),
        /// Fail with a user error (bad configuration) after this long.
        FailUser(Duration, String),
        /// Run this long ignoring cancellation.
        Hang(Duration),
        /// Run this long, or stop with `Err` when cancelled.
        Cooperative(Duration),
    }

    /// A runner that plays `steps` in order (then succeeds at once) and logs calls.
    pub struct ScriptedRunner {
        clock: FakeClock,
        steps: Mutex<VecDeque<Step>>,
        pub calls: Mutex<Vec<(RunRequest, DateTime<Utc>)>>,
    }

    impl ScriptedRunner {
        pub fn new(clock: &FakeClock, steps: Vec<Step>) -> Arc<Self> {
            Arc::new(ScriptedRunner {
                clock: clock.clone(),
                steps: Mutex::new(steps.into()),
                calls: Mutex::new(Vec::new()),
            })
        }

        pub fn calls(&self) -> Vec<(RunRequest, DateTime<Utc>)> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl PipelineRunner for ScriptedRunner {
        fn run(&self, req: RunRequest) -> BoxFuture<'_, Result<RunOutcome, RunFailure>> {
            let step = self.steps.lock().unwrap().pop_front();
            self.calls
                .lock()
                .unwrap()
                .push((req.clone(), self.clock.now()));
            let done = RunOutcome {
                rows_written: 7,
                messages_sent: 3,
                ..RunOutcome::default()
            };
            Box::pin(async move {
                match step.unwrap_or(Step::Ok(Duration::ZERO)) {
                    Step::Ok(d) => {
                        self.clock.sleep(d).await;
                        Ok(done)
                    }
                    Step::Fail(d, msg) => {
                        self.clock.sleep(d).await;
                        Err(RunFailure::external(msg))
                    }
                    Step::FailUser(d, msg) => {
                        self.clock.sleep(d).await;
                        Err(RunFailure::user(msg))
                    }
                    Step::Hang(d) => {
                        self.clock.sleep(d).await;
                        Ok(done)
                    }
                    Step::Cooperative(d) => {
                        tokio::select! {
                            _ = self.clock.sleep(d) => Ok(done),
                            _ = req.cancel.cancelled() => Err(RunFailure::interrupted("cancelled mid-batch")),
                        }
                    }
                }
            })
        }
    }

    /// A schedule of `pipelines/p.toml` named "s" with `extra` keys (at least `cron`).
    pub fn test_schedule(extra: &str) -> super::Schedule {
        let text = format!("pipeline = \"pipelines/p.toml\"\n{extra}");
        super::Schedule::from_toml_str(&text, Path::new("schedules/s.toml")).unwrap()
    }

    /// Serves `s` as holder "me" until the fake clock reads `stop_at`, then
    /// cancels and waits for `serve` to return.
    pub async fn serve_until(
        s: super::Schedule,
        state: &State,
        clock: &FakeClock,
        runner: Arc<ScriptedRunner>,
        stop_at: &str,
    ) {
        let cancel = CancellationToken::new();
        let (stopper, c, at) = (cancel.clone(), clock.clone(), utc(stop_at));
        tokio::spawn(async move {
            c.sleep_until(at).await;
            stopper.cancel();
        });
        let run = ExecOptions {
            holder: "me".into(),
            ..ExecOptions::default()
        };
        let heartbeat = Duration::from_secs(3600);
        let opts = super::ServeOptions { run, heartbeat };
        super::serve(vec![s], state.clone(), runner, cancel, opts)
            .await
            .unwrap();
    }

    /// Each run as (fire time "DD HH:MM", status), oldest first.
    pub fn run_rows(state: &State) -> Vec<(String, RunStatus)> {
        let runs = state.all_runs().unwrap().into_iter();
        runs.map(|r| {
            (
                r.fire_time.unwrap().format("%d %H:%M").to_string(),
                r.status,
            )
        })
        .collect()
    }
}
