//! One attempt of a run: the runner call under its `max_run_secs` timeout while the run lock's lease is renewed, and a cancelled run's bounded grace period; plus holding the lock through a retry backoff.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::job::{Exec, Job};
use super::{RunFailure, RunOutcome, RunRequest};
use crate::clock::add_std;
use crate::state::StateError;

/// How an attempt ended.
pub(crate) enum AttemptEnd {
    Succeeded(RunOutcome),
    Failed(RunFailure),
    Interrupted(RunFailure),
}

/// Why a wait or an attempt was stopped early.
pub(crate) enum Stop {
    Shutdown,
    Timeout(Duration),
    LostLock,
}

/// Of a shutdown's grace period, the part kept for stopping at a safe point (cleaning
/// staging, writing the manifest, finishing the delivery batches in flight) after the
/// run was asked to stop: half, at most 10 s.
pub fn stop_reserve(grace: Duration) -> Duration {
    (grace / 2).min(Duration::from_secs(10))
}

/// Backoff before retry number `retry` (1-based): `base * 2^(retry-1)`, at most a day.
pub fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1u32
        .checked_shl(retry.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(Duration::from_secs(86_400))
}

/// Sleeps `wait` while renewing the lease; returns why it stopped early, if it did.
pub(crate) async fn hold_lock_for(
    ex: &Exec<'_>,
    key: &str,
    wait: Duration,
) -> Result<Option<Stop>, StateError> {
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

/// Runs one attempt of `job`; the caller holds lock `key` and records the result.
///
/// On shutdown the run keeps going for the grace period less [`stop_reserve`]: a run that
/// ends by then ends normally. Then (and at once on a timeout or a lost lock) its cancel
/// token fires and it gets the reserve (the whole grace, for a timeout or a lost lock) to
/// stop at a safe point; a run still going after that is dropped.
pub(crate) async fn run_attempt(
    ex: &Exec<'_>,
    job: &Job<'_>,
    key: &str,
    attempt: u32,
) -> Result<AttemptEnd, StateError> {
    let clock = ex.state.clock().clone();
    let (holder, lease) = (ex.opts.holder.as_str(), ex.opts.lease);
    let cancel = CancellationToken::new();
    let mut fut = ex
        .runner
        .run(run_request(job, key, holder, attempt, cancel.clone()));
    let started = clock.now();
    let deadline = job.policy.max_run.map(|d| (add_std(started, d), d));
    let mut next_renew = add_std(started, lease / 3);
    // Set once shutdown is requested: when the run is asked to stop.
    let mut stop_at: Option<chrono::DateTime<chrono::Utc>> = None;
    let stop = loop {
        let mut wake = deadline.map_or(next_renew, |(d, _)| d.min(next_renew));
        if let Some(s) = stop_at {
            wake = wake.min(s);
        }
        tokio::select! {
            res = &mut fut => {
                return Ok(match res {
                    Ok(o) => AttemptEnd::Succeeded(o),
                    Err(e) if e.interrupted => AttemptEnd::Interrupted(e),
                    Err(e) => AttemptEnd::Failed(e),
                });
            }
            _ = ex.shutdown.cancelled(), if stop_at.is_none() => {
                let finish = ex.opts.grace.saturating_sub(stop_reserve(ex.opts.grace));
                tracing::warn!(finish_secs = finish.as_secs(), "shutdown: the running pipeline may still finish");
                ex.state.renew(key, holder, lease + ex.opts.grace)?;
                stop_at = Some(add_std(clock.now(), finish));
            }
            _ = clock.sleep_until(wake) => {
                let now = clock.now();
                if stop_at.is_some_and(|s| now >= s) {
                    break Stop::Shutdown;
                }
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
    // Ask the runner to stop at a safe point, and keep the lock while it does.
    cancel.cancel();
    let wait = match stop {
        Stop::Shutdown => stop_reserve(ex.opts.grace),
        _ => ex.opts.grace,
    };
    ex.state.renew(key, holder, lease + wait)?;
    let late = tokio::select! {
        res = &mut fut => Some(res),
        _ = clock.sleep(wait) => None,
    };
    drop(fut);
    Ok(stopped_end(stop, late, ex.opts.grace))
}

/// What the runner is asked to do: `job`'s attempt `attempt` under lock `key` of `holder`.
fn run_request(
    job: &Job<'_>,
    key: &str,
    holder: &str,
    attempt: u32,
    cancel: CancellationToken,
) -> RunRequest {
    RunRequest {
        schedule: job.schedule.map(str::to_string),
        pipeline: job.pipeline.to_path_buf(),
        as_of: job.as_of,
        set: job.set.to_vec(),
        fire_time: job.fire_time,
        attempt,
        lock_key: key.to_string(),
        lock_holder: holder.to_string(),
        cancel,
    }
}

/// How an attempt stopped for `stop` ends, given what the run came to in the `grace`
/// period after it was asked to stop (`None`: it did not stop in time). A run that
/// finished in a shutdown's grace period succeeded.
fn stopped_end(
    stop: Stop,
    late: Option<Result<RunOutcome, RunFailure>>,
    grace: Duration,
) -> AttemptEnd {
    let grace = grace.as_secs();
    let how = |late: &Option<Result<RunOutcome, RunFailure>>| match late {
        Some(Ok(_)) => "; it stopped".to_string(),
        Some(Err(e)) => format!("; it stopped: {}", e.message),
        None => format!("; it did not stop within the {grace}s grace period"),
    };
    match stop {
        Stop::Timeout(limit) => AttemptEnd::Failed(RunFailure::external(format!(
            "run exceeded max_run_secs ({}s) and was cancelled{}",
            limit.as_secs(),
            how(&late)
        ))),
        Stop::LostLock => AttemptEnd::Failed(RunFailure::external(format!(
            "run lock lease was lost (another process took it over) and the run was cancelled{}",
            how(&late)
        ))),
        Stop::Shutdown => match late {
            Some(Ok(o)) => AttemptEnd::Succeeded(o),
            other => AttemptEnd::Interrupted(RunFailure::interrupted(format!(
                "stopped by shutdown{}",
                how(&other)
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Clock;
    use crate::schedule::JobResult;
    use crate::schedule::test_support::{
        ScriptedRunner, Step, fake_state, policy, run_job, test_job,
    };
    use crate::state::RunStatus;

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn a_run_over_max_run_secs_is_cancelled_and_failed() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Cooperative(5 * HOUR)]);
        let start = clock.now();
        let result = run_job(
            &state,
            &runner,
            &CancellationToken::new(),
            &test_job(policy(0)),
        )
        .await;
        let JobResult::Failed { failure, .. } = result else {
            panic!("{result:?}")
        };
        let error = failure.message;
        assert!(error.contains("max_run_secs (3600s)"), "{error}");
        assert!(error.contains("it stopped: cancelled mid-batch"), "{error}");
        assert_eq!(state.all_runs().unwrap()[0].status, RunStatus::Failed);
        assert_eq!((clock.now() - start).num_seconds(), 3600);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_ignoring_cancel_is_dropped_after_the_grace_period() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Hang(5 * HOUR)]);
        let start = clock.now();
        let result = run_job(
            &state,
            &runner,
            &CancellationToken::new(),
            &test_job(policy(0)),
        )
        .await;
        let JobResult::Failed { failure, .. } = result else {
            panic!("{result:?}")
        };
        let error = failure.message;
        assert!(
            error.contains("did not stop within the 30s grace period"),
            "{error}"
        );
        assert_eq!((clock.now() - start).num_seconds(), 3630);
    }

    #[tokio::test(start_paused = true)]
    async fn long_runs_keep_their_lease() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Ok(HOUR / 2)]);
        let (state2, c) = (state.clone(), clock.clone());
        let intruder = tokio::spawn(async move {
            c.sleep(Duration::from_secs(1000)).await;
            let key = &crate::schedule::test_support::key("2025-05-01");
            state2
                .try_acquire(key, "intruder", Duration::from_secs(60))
                .unwrap()
        });
        let result = run_job(
            &state,
            &runner,
            &CancellationToken::new(),
            &test_job(policy(0)),
        )
        .await;
        assert!(matches!(result, JobResult::Succeeded { .. }));
        assert!(
            !intruder.await.unwrap(),
            "the lease lapsed during a long run"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_whose_lock_is_taken_over_is_cancelled() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Cooperative(HOUR)]);
        let (state2, c) = (state.clone(), clock.clone());
        tokio::spawn(async move {
            // Simulates another process stealing the lock (e.g. after a clock jump).
            c.sleep(Duration::from_secs(100)).await;
            let key = &crate::schedule::test_support::key("2025-05-01");
            assert!(state2.release(key, "me").unwrap());
            assert!(
                state2
                    .try_acquire(key, "thief", Duration::from_secs(600))
                    .unwrap()
            );
        });
        let result = run_job(
            &state,
            &runner,
            &CancellationToken::new(),
            &test_job(policy(0)),
        )
        .await;
        let JobResult::Failed { failure, .. } = result else {
            panic!("{result:?}")
        };
        let error = failure.message;
        assert!(error.contains("lease was lost"), "{error}");
        // The thief's lock is left alone.
        let lock = state
            .lock_info(&crate::schedule::test_support::key("2025-05-01"))
            .unwrap()
            .unwrap();
        assert_eq!(lock.holder, "thief");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_a_cooperative_run_its_grace() {
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Cooperative(HOUR)]);
        let stop = CancellationToken::new();
        let (stopper, c) = (stop.clone(), clock.clone());
        tokio::spawn(async move {
            c.sleep(Duration::from_secs(600)).await;
            stopper.cancel();
        });
        let result = run_job(&state, &runner, &stop, &test_job(policy(2))).await;
        let JobResult::Interrupted { failure, .. } = result else {
            panic!("{result:?}")
        };
        let error = failure.message;
        assert_eq!(
            error,
            "stopped by shutdown; it stopped: cancelled mid-batch"
        );
        let runs = state.all_runs().unwrap();
        assert_eq!(runs.len(), 1, "no retry after a shutdown");
        assert_eq!(runs[0].status, RunStatus::Interrupted);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_ends_within_the_grace_period_finishes() {
        // Shutdown 2 s before a 4 s run ends: with 30 s of grace it completes normally.
        let (_d, clock, state) = fake_state("2025-05-01T02:30:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Cooperative(Duration::from_secs(4))]);
        let stop = CancellationToken::new();
        let (stopper, c) = (stop.clone(), clock.clone());
        tokio::spawn(async move {
            c.sleep(Duration::from_secs(2)).await;
            stopper.cancel();
        });
        let result = run_job(&state, &runner, &stop, &test_job(policy(2))).await;
        assert!(matches!(result, JobResult::Succeeded { .. }), "{result:?}");
        assert_eq!(state.all_runs().unwrap()[0].status, RunStatus::Succeeded);
    }

    #[test]
    fn the_stop_reserve_is_half_the_grace_at_most_10s() {
        assert_eq!(
            stop_reserve(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
        assert_eq!(stop_reserve(Duration::from_secs(4)), Duration::from_secs(2));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let min = Duration::from_secs(60);
        assert_eq!(backoff(min, 1), min);
        assert_eq!(backoff(min, 2), 2 * min);
        assert_eq!(backoff(min, 3), 4 * min);
        assert_eq!(backoff(min, 40), Duration::from_secs(86_400));
    }
}
