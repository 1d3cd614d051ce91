//! One job end to end, shared by the serve loop, backfill and `winback run`: lock, run-history rows, the attempts, retries with backoff for failures a retry can heal, and a bounded stop on shutdown.

use super::attempt::{AttemptEnd, Stop, backoff, hold_lock_for, run_attempt};
use super::job::{Exec, Job, JobResult};
use super::{RunFailure, pipeline_key};
use crate::state::{NewRun, RunId, RunStatus, StateError, lock_key};

/// Runs `job`: takes its lock (or records a skip), records each attempt, retries
/// failures with backoff while holding the lock, then releases it.
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
        let run = skip(ex, job, &pipeline, reason.clone())?;
        return Ok(JobResult::Skipped { run, reason });
    }
    let result = attempts(ex, job, &pipeline, &key).await;
    if let Err(e) = ex.state.release(&key, holder) {
        tracing::warn!(%key, error = %e, "could not release run lock (it expires with its lease)");
    }
    result
}

fn skip(ex: &Exec<'_>, job: &Job<'_>, pipeline: &str, reason: String) -> Result<RunId, StateError> {
    tracing::warn!(schedule = ?job.schedule, %pipeline, as_of = %job.as_of, %reason, "run skipped");
    let run = ex
        .state
        .record_skipped(job.schedule, pipeline, job.as_of, job.fire_time, &reason)?;
    (ex.on_change)();
    Ok(run)
}

async fn attempts(
    ex: &Exec<'_>,
    job: &Job<'_>,
    pipeline: &str,
    key: &str,
) -> Result<JobResult, StateError> {
    if !job.force && ex.state.succeeded(pipeline, job.as_of)? {
        let reason = format!("{pipeline} already succeeded for as_of {}", job.as_of);
        let run = skip(ex, job, pipeline, reason)?;
        return Ok(JobResult::AlreadySucceeded { run });
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
                ex.state.finish_run(
                    run,
                    RunStatus::Succeeded,
                    None,
                    o.rows_written,
                    o.messages_sent,
                )?;
                tracing::info!(%run, rows = o.rows_written, messages = o.messages_sent, "run succeeded");
                Some(JobResult::Succeeded { run, outcome: o })
            }
            AttemptEnd::Interrupted(failure) => {
                ex.state
                    .finish_run(run, RunStatus::Interrupted, Some(&failure.message), 0, 0)?;
                tracing::warn!(%run, error = %failure.message, "run interrupted");
                Some(JobResult::Interrupted { run, failure })
            }
            AttemptEnd::Failed(failure) => {
                ex.state
                    .finish_run(run, RunStatus::Failed, Some(&failure.message), 0, 0)?;
                let blame = failure.blame.as_str();
                tracing::error!(%run, attempt, blame, error = %failure.message, "run failed");
                // Only a failure a retry can heal (storage, network) is retried.
                let last = attempt > job.policy.retries
                    || ex.shutdown.is_cancelled()
                    || !failure.blame.retriable();
                last.then_some(JobResult::Failed { run, failure })
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
            let last = ex
                .state
                .get_run(run)?
                .and_then(|r| r.error)
                .unwrap_or_default();
            return Ok(JobResult::Failed {
                run,
                failure: RunFailure::external(format!("{last} ({error})")),
            });
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Clock;
    use crate::schedule::test_support::{
        ScriptedRunner, Step, fake_state, policy, run_job, test_job,
    };
    use chrono::TimeDelta;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    const MIN: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn retry_then_success_records_both_attempts() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let steps = vec![Step::Fail(MIN, "db down".into()), Step::Ok(MIN)];
        let runner = ScriptedRunner::new(&clock, steps);
        let result = run_job(
            &state,
            &runner,
            &CancellationToken::new(),
            &test_job(policy(2)),
        )
        .await;
        assert!(
            matches!(result, JobResult::Succeeded { outcome: o, .. } if o.rows_written == 7 && o.messages_sent == 3)
        );
        let runs = state.all_runs().unwrap();
        let summary: Vec<_> = runs
            .iter()
            .map(|r| (r.attempt, r.status, r.error.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, RunStatus::Failed, Some("db down")),
                (2, RunStatus::Succeeded, None)
            ]
        );
        assert_eq!((runs[1].rows_written, runs[1].messages_sent), (7, 3));
        // The retry started after the failed run's minute plus one minute of backoff.
        let calls = runner.calls();
        assert_eq!(calls[1].1 - calls[0].1, TimeDelta::minutes(2));
        assert_eq!((calls[0].0.attempt, calls[1].0.attempt), (1, 2));
        assert!(
            state
                .lock_info(&crate::schedule::test_support::key("2025-05-01"))
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_run_is_recorded_with_its_error_after_all_retries() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let fail = |m: &str| Step::Fail(Duration::ZERO, m.to_string());
        let runner = ScriptedRunner::new(&clock, vec![fail("e1"), fail("e2"), fail("e3")]);
        let start = clock.now();
        let result = run_job(
            &state,
            &runner,
            &CancellationToken::new(),
            &test_job(policy(2)),
        )
        .await;
        assert!(
            matches!(&result, JobResult::Failed { failure, .. } if failure.message == "e3"),
            "{result:?}"
        );
        let runs = state.all_runs().unwrap();
        let errors: Vec<_> = runs
            .iter()
            .map(|r| (r.status, r.error.as_deref().unwrap()))
            .collect();
        let failed = RunStatus::Failed;
        assert_eq!(errors, [(failed, "e1"), (failed, "e2"), (failed, "e3")]);
        // Backoff 60 s, then 120 s.
        assert_eq!(clock.now() - start, TimeDelta::seconds(180));
        assert_eq!(runner.calls().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_error_is_never_retried() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let bad = Step::FailUser(Duration::ZERO, "pipeline.toml: unknown key".into());
        let runner = ScriptedRunner::new(&clock, vec![bad]);
        let result = run_job(
            &state,
            &runner,
            &CancellationToken::new(),
            &test_job(policy(3)),
        )
        .await;
        let JobResult::Failed { failure, .. } = result else {
            panic!("{result:?}")
        };
        assert_eq!(failure.blame, crate::error::Blame::User);
        assert_eq!(
            runner.calls().len(),
            1,
            "a configuration error is not retried"
        );
        assert_eq!(state.all_runs().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn already_succeeded_and_locked_runs_are_skipped() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![]);
        let stop = CancellationToken::new();
        let first = run_job(&state, &runner, &stop, &test_job(policy(0))).await;
        assert!(matches!(first, JobResult::Succeeded { .. }));
        let again = run_job(&state, &runner, &stop, &test_job(policy(0))).await;
        assert!(matches!(again, JobResult::AlreadySucceeded { .. }));

        let forced = Job {
            force: true,
            ..test_job(policy(0))
        };
        assert!(
            state
                .try_acquire(
                    &crate::schedule::test_support::key("2025-05-01"),
                    "someone-else",
                    MIN
                )
                .unwrap()
        );
        let locked = run_job(&state, &runner, &stop, &forced).await;
        let JobResult::Skipped { reason, .. } = locked else {
            panic!("{locked:?}")
        };
        assert!(reason.contains("locked by someone-else"), "{reason}");
        assert_eq!(runner.calls().len(), 1);
        let runs = state.all_runs().unwrap();
        let statuses: Vec<_> = runs.iter().map(|r| (r.status, r.attempt)).collect();
        let skipped = (RunStatus::Skipped, 0);
        assert_eq!(statuses, [(RunStatus::Succeeded, 1), skipped, skipped]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_backoff_stops_retrying() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Fail(Duration::ZERO, "e1".into())]);
        let stop = CancellationToken::new();
        let (stopper, c) = (stop.clone(), clock.clone());
        tokio::spawn(async move {
            c.sleep(Duration::from_secs(30)).await;
            stopper.cancel();
        });
        let result = run_job(&state, &runner, &stop, &test_job(policy(3))).await;
        let JobResult::Failed { failure, .. } = result else {
            panic!("{result:?}")
        };
        let error = failure.message;
        assert_eq!(error, "e1 (shutdown while waiting to retry)");
        assert_eq!(runner.calls().len(), 1);
    }
}
