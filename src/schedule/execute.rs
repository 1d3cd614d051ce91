//! One pipeline run end to end, shared by the serve loop and backfill: lock, run-history rows, the runner call with its timeout and lease renewal, retries with backoff, and a bounded stop on shutdown.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;

use super::clock::add_std;
use super::{PipelineRunner, RunOutcome, RunRequest, pipeline_key};
use crate::state::{NewRun, RunId, RunStatus, State, StateError, holder_id, lock_key};

/// How runs are executed by this process.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// This process's lock holder id (`host/pid/random`).
    pub holder: String,
    /// Lock lease; renewed every third of it while a run (or its retry backoff)
    /// goes on. A process killed without releasing blocks others this long.
    pub lease: Duration,
    /// How long a cancelled run gets to stop before it is dropped.
    pub grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
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
    pub opts: &'a RunOptions,
    /// Shutdown: stop the running attempt (with grace) and start no retry.
    pub shutdown: &'a CancellationToken,
    /// Called after each change to the run history.
    pub on_change: &'a (dyn Fn() + Send + Sync),
}

/// How a job ended. `run` is the last row recorded for it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Succeeded { run: RunId, outcome: RunOutcome },
    /// Not attempted: locked by another holder, or already succeeded.
    Skipped { run: RunId, reason: String },
    /// Every attempt failed; `error` is the last one's.
    Failed { run: RunId, error: String },
    /// Stopped by shutdown.
    Interrupted { run: RunId, error: String },
}

enum AttemptEnd {
    Succeeded(RunOutcome),
    Failed(String),
    Interrupted(String),
}

enum Stop {
    Shutdown,
    Timeout(Duration),
    LostLock,
}

/// Backoff before retry number `retry` (1-based): `base * 2^(retry-1)`, at most a day.
pub fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(Duration::from_secs(86_400))
}

pub(crate) async fn execute(ex: &Exec<'_>, job: &Job<'_>) -> Result<JobResult, StateError> {
    let pipeline = pipeline_key(job.pipeline);
    let key = lock_key(&pipeline, job.as_of);
    let holder = ex.opts.holder.as_str();
    if !ex.state.try_acquire(&key, holder, ex.opts.lease)? {
        let reason = match ex.state.lock_info(&key)? {
            Some(l) => format!(
                "{pipeline} for as_of {} is locked by {} (lease until {})",
                job.as_of, l.holder, l.expires_at
            ),
            None => format!("{pipeline} for as_of {} is locked", job.as_of),
        };
        return skip(ex, job, &pipeline, reason);
    }
    let result = attempts(ex, job, &pipeline, &key).await;
    if let Err(e) = ex.state.release(&key, holder) {
        tracing::warn!(%key, error = %e, "could not release run lock (it expires with its lease)");
    }
    result
}

fn skip(ex: &Exec<'_>, job: &Job<'_>, pipeline: &str, reason: String) -> Result<JobResult, StateError> {
    tracing::warn!(schedule = ?job.schedule, %pipeline, as_of = %job.as_of, %reason, "run skipped");
    let run = ex
        .state
        .record_skipped(job.schedule, pipeline, job.as_of, job.fire_time, &reason)?;
    (ex.on_change)();
    Ok(JobResult::Skipped { run, reason })
}

async fn attempts(ex: &Exec<'_>, job: &Job<'_>, pipeline: &str, key: &str) -> Result<JobResult, StateError> {
    if !job.force && ex.state.succeeded(pipeline, job.as_of)? {
        let reason = format!("{pipeline} already succeeded for as_of {}", job.as_of);
        return skip(ex, job, pipeline, reason);
    }
    let mut attempt = 1;
    loop {
        let run = ex.state.start_run(&NewRun {
            schedule: job.schedule,
            pipeline,
            as_of: job.as_of,
            fire_time: job.fire_time,
            attempt,
            holder: &ex.opts.holder,
            lock_key: key,
        })?;
        (ex.on_change)();
        tracing::info!(%run, schedule = ?job.schedule, %pipeline, as_of = %job.as_of, attempt, "run started");
        let end = run_attempt(ex, job, key, attempt).await?;
        let result = match end {
            AttemptEnd::Succeeded(o) => {
                ex.state
                    .finish_run(run, RunStatus::Succeeded, None, o.rows_written, o.messages_sent)?;
                tracing::info!(%run, rows = o.rows_written, messages = o.messages_sent, "run succeeded");
                Some(JobResult::Succeeded { run, outcome: o })
            }
            AttemptEnd::Interrupted(error) => {
                ex.state.finish_run(run, RunStatus::Interrupted, Some(&error), 0, 0)?;
                tracing::warn!(%run, %error, "run interrupted");
                Some(JobResult::Interrupted { run, error })
            }
            AttemptEnd::Failed(error) => {
                ex.state.finish_run(run, RunStatus::Failed, Some(&error), 0, 0)?;
                tracing::error!(%run, attempt, %error, "run failed");
                (attempt > job.policy.retries || ex.shutdown.is_cancelled())
                    .then_some(JobResult::Failed { run, error })
            }
        };
        (ex.on_change)();
        if let Some(result) = result {
            return Ok(result);
        }
        let wait = backoff(job.policy.retry_backoff, attempt);
        tracing::info!(%run, retry_in_secs = wait.as_secs(), "retrying after backoff");
        if let Some(stop) = hold_lock_for(ex, key, wait).await? {
            let error = match stop {
                Stop::LostLock => "lost the run lock while waiting to retry".to_string(),
                _ => "shutdown while waiting to retry".to_string(),
            };
            tracing::warn!(%run, %error, "no further retries");
            let last = ex.state.get_run(run)?.and_then(|r| r.error).unwrap_or_default();
            return Ok(JobResult::Failed { run, error: format!("{last} ({error})") });
        }
        attempt += 1;
    }
}

/// Sleeps `wait` while renewing the lease; returns why it stopped early, if it did.
async fn hold_lock_for(ex: &Exec<'_>, key: &str, wait: Duration) -> Result<Option<Stop>, StateError> {
    let clock = ex.state.clock();
    let until = add_std(clock.now(), wait);
    loop {
        let now = clock.now();
        if now >= until {
            return Ok(None);
        }
        let wake = until.min(add_std(now, ex.opts.lease / 3));
        tokio::select! {
            _ = ex.shutdown.cancelled() => return Ok(Some(Stop::Shutdown)),
            _ = clock.sleep_until(wake) => {}
        }
        if !ex.state.renew(key, &ex.opts.holder, ex.opts.lease)? {
            return Ok(Some(Stop::LostLock));
        }
    }
}

async fn run_attempt(ex: &Exec<'_>, job: &Job<'_>, key: &str, attempt: u32) -> Result<AttemptEnd, StateError> {
    let clock = ex.state.clock().clone();
    let (holder, lease) = (ex.opts.holder.as_str(), ex.opts.lease);
    let cancel = CancellationToken::new();
    let mut fut = ex.runner.run(RunRequest {
        schedule: job.schedule.map(str::to_string),
        pipeline: job.pipeline.to_path_buf(),
        as_of: job.as_of,
        set: job.set.to_vec(),
        fire_time: job.fire_time,
        attempt,
        cancel: cancel.clone(),
    });
    let started = clock.now();
    let deadline = job.policy.max_run.map(|d| (add_std(started, d), d));
    let mut next_renew = add_std(started, lease / 3);
    let stop = loop {
        let wake = deadline.map_or(next_renew, |(d, _)| d.min(next_renew));
        tokio::select! {
            res = &mut fut => {
                return Ok(match res {
                    Ok(o) => AttemptEnd::Succeeded(o),
                    Err(e) => AttemptEnd::Failed(e),
                });
            }
            _ = ex.shutdown.cancelled() => break Stop::Shutdown,
            _ = clock.sleep_until(wake) => {
                let now = clock.now();
                if let Some((_, limit)) = deadline.filter(|(d, _)| now >= *d) {
                    break Stop::Timeout(limit);
                }
                if now >= next_renew {
                    if !ex.state.renew(key, holder, lease)? {
                        break Stop::LostLock;
                    }
                    next_renew = add_std(now, lease / 3);
                }
            }
        }
    };
    // Ask the runner to stop, and keep the lock through the grace period.
    cancel.cancel();
    ex.state.renew(key, holder, lease + ex.opts.grace)?;
    let late = tokio::select! {
        res = &mut fut => Some(res),
        _ = clock.sleep(ex.opts.grace) => None,
    };
    drop(fut);
    let grace = ex.opts.grace.as_secs();
    let how = |late: &Option<Result<RunOutcome, String>>| match late {
        Some(Ok(_)) => "; it stopped".to_string(),
        Some(Err(e)) => format!("; it stopped: {e}"),
        None => format!("; it did not stop within the {grace}s grace period"),
    };
    Ok(match stop {
        Stop::Timeout(limit) => AttemptEnd::Failed(format!(
            "run exceeded max_run_secs ({}s) and was cancelled{}",
            limit.as_secs(),
            how(&late)
        )),
        Stop::LostLock => AttemptEnd::Failed(format!(
            "run lock lease was lost (another process took it over) and the run was cancelled{}",
            how(&late)
        )),
        Stop::Shutdown => match late {
            Some(Ok(o)) => AttemptEnd::Succeeded(o),
            other => AttemptEnd::Interrupted(format!("stopped by shutdown{}", how(&other))),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_support::{ScriptedRunner, Step, fake_state};
    use crate::schedule::Clock;

    const MIN: Duration = Duration::from_secs(60);

    fn job(policy: RunPolicy) -> Job<'static> {
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

    fn policy(retries: u32) -> RunPolicy {
        RunPolicy { retries, retry_backoff: MIN, max_run: Some(Duration::from_secs(3600)) }
    }

    async fn exec_with(state: &State, runner: &ScriptedRunner, shutdown: &CancellationToken, job: &Job<'_>) -> JobResult {
        let opts = RunOptions { holder: "me".into(), ..RunOptions::default() };
        let ex = Exec { state, runner, opts: &opts, shutdown, on_change: &|| {} };
        execute(&ex, job).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn retry_then_success_records_both_attempts() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Fail(MIN, "db down".into()), Step::Ok(MIN)]);
        let result = exec_with(&state, &runner, &CancellationToken::new(), &job(policy(2))).await;
        assert!(matches!(result, JobResult::Succeeded { outcome: RunOutcome { rows_written: 7, messages_sent: 3 }, .. }));
        let runs = state.all_runs().unwrap();
        let summary: Vec<_> = runs.iter().map(|r| (r.attempt, r.status, r.error.clone())).collect();
        assert_eq!(summary, vec![
            (1, RunStatus::Failed, Some("db down".to_string())),
            (2, RunStatus::Succeeded, None),
        ]);
        // The retry started after the run's minute plus one minute of backoff.
        let calls = runner.calls();
        assert_eq!(calls[1].1 - calls[0].1, chrono::TimeDelta::minutes(2));
        assert_eq!(calls[1].0.attempt, 2);
        assert!(state.lock_info("pipelines/p.toml@2025-05-01").unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_run_is_recorded_with_its_error_after_all_retries() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let fail = |m: &str| Step::Fail(Duration::ZERO, m.to_string());
        let runner = ScriptedRunner::new(&clock, vec![fail("e1"), fail("e2"), fail("e3"), Step::Ok(MIN)]);
        let start = clock.now();
        let result = exec_with(&state, &runner, &CancellationToken::new(), &job(policy(2))).await;
        assert!(matches!(&result, JobResult::Failed { error, .. } if error == "e3"), "{result:?}");
        let errors: Vec<_> = state.all_runs().unwrap().into_iter().map(|r| (r.status, r.error.unwrap())).collect();
        assert_eq!(errors, vec![
            (RunStatus::Failed, "e1".to_string()),
            (RunStatus::Failed, "e2".to_string()),
            (RunStatus::Failed, "e3".to_string()),
        ]);
        // Backoff 60 s then 120 s.
        assert_eq!(clock.now() - start, chrono::TimeDelta::seconds(180));
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_over_max_run_secs_is_cancelled_and_failed() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Cooperative(Duration::from_secs(5 * 3600))]);
        let result = exec_with(&state, &runner, &CancellationToken::new(), &job(policy(0))).await;
        let JobResult::Failed { error, .. } = result else { panic!("{result:?}") };
        assert!(error.contains("max_run_secs (3600s)") && error.contains("cancelled mid-batch"), "{error}");
        assert_eq!(state.all_runs().unwrap()[0].status, RunStatus::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn already_succeeded_and_locked_runs_are_skipped() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![]);
        let shutdown = CancellationToken::new();
        assert!(matches!(exec_with(&state, &runner, &shutdown, &job(policy(0))).await, JobResult::Succeeded { .. }));
        let again = exec_with(&state, &runner, &shutdown, &job(policy(0))).await;
        assert!(matches!(&again, JobResult::Skipped { reason, .. } if reason.contains("already succeeded")));
        let forced = Job { force: true, ..job(policy(0)) };
        assert!(state.try_acquire("pipelines/p.toml@2025-05-01", "someone-else", MIN).unwrap());
        let locked = exec_with(&state, &runner, &shutdown, &forced).await;
        assert!(matches!(&locked, JobResult::Skipped { reason, .. } if reason.contains("locked by someone-else")));
        assert_eq!(runner.calls().len(), 1);
        let statuses: Vec<_> = state.all_runs().unwrap().iter().map(|r| (r.status, r.attempt)).collect();
        assert_eq!(statuses, vec![(RunStatus::Succeeded, 1), (RunStatus::Skipped, 0), (RunStatus::Skipped, 0)]);
    }

    #[tokio::test(start_paused = true)]
    async fn long_runs_keep_their_lease() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Ok(Duration::from_secs(1800))]);
        let state2 = state.clone();
        let probe = tokio::spawn(async move {
            clock.sleep(Duration::from_secs(1000)).await;
            state2.try_acquire("pipelines/p.toml@2025-05-01", "intruder", MIN).unwrap()
        });
        let result = exec_with(&state, &runner, &CancellationToken::new(), &job(policy(0))).await;
        assert!(matches!(result, JobResult::Succeeded { .. }));
        assert!(!probe.await.unwrap(), "the lease lapsed during a long run");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(MIN, 1), MIN);
        assert_eq!(backoff(MIN, 2), 2 * MIN);
        assert_eq!(backoff(MIN, 40), Duration::from_secs(86_400));
    }
}
