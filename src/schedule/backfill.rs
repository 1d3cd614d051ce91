//! Backfill (`winback backfill`): runs one pipeline for each as_of date of a range, in order, skipping dates that already succeeded unless forced and stopping at the first failure.

use std::path::PathBuf;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::job::{Exec, ExecOptions, Job, JobResult, RunPolicy};
use super::retries::execute;
use super::{PipelineRunner, ScheduleError, pipeline_key};
use crate::error::Blame;
use crate::state::State;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub pipeline: PathBuf,
    /// First as_of date (inclusive).
    pub from: NaiveDate,
    /// Last as_of date (inclusive).
    pub to: NaiveDate,
    /// Re-run dates that already succeeded.
    pub force: bool,
    /// `--set` overrides for every run.
    pub set: Vec<(String, String)>,
    /// Retries and timeout of each date's run (default: no retry, no timeout).
    pub policy: RunPolicy,
}

impl BackfillRequest {
    pub fn new(pipeline: impl Into<PathBuf>, from: NaiveDate, to: NaiveDate) -> Self {
        BackfillRequest {
            pipeline: pipeline.into(),
            from,
            to,
            force: false,
            set: Vec::new(),
            policy: RunPolicy::once(),
        }
    }
}

/// The date a backfill stopped at, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillFailure {
    pub as_of: NaiveDate,
    pub error: String,
    /// Whose fault: decides the exit code of `winback backfill` and `winback run`.
    pub blame: Blame,
}

/// What a backfill did.
#[derive(Debug, Clone, Default)]
pub struct BackfillReport {
    /// Dates run successfully.
    pub ran: Vec<NaiveDate>,
    /// Dates not run because they had already succeeded.
    pub skipped: Vec<NaiveDate>,
    /// The date that failed (or could not be locked, or was interrupted); later
    /// dates were not run.
    pub failed: Option<BackfillFailure>,
    /// Stopped by `cancel`.
    pub cancelled: bool,
    /// Some messages of a run were not delivered.
    pub partial: bool,
}

/// Runs `req.pipeline` for each as_of from `req.from` to `req.to`, in order.
/// Runs are recorded in the run history without a schedule and take the same
/// locks as scheduled runs. Triggering `cancel` stops the current run (within
/// `opts.grace`) and the backfill.
pub async fn backfill(
    runner: &dyn PipelineRunner,
    state: &State,
    req: &BackfillRequest,
    opts: &ExecOptions,
    cancel: &CancellationToken,
) -> Result<BackfillReport, ScheduleError> {
    if req.from > req.to {
        return Err(ScheduleError::Invalid(format!(
            "backfill range is empty: from {} is after to {}",
            req.from, req.to
        )));
    }
    state.recover_interrupted()?;
    let pipeline = pipeline_key(&req.pipeline);
    let mut report = BackfillReport::default();
    for as_of in req.from.iter_days().take_while(|d| *d <= req.to) {
        if cancel.is_cancelled() {
            report.cancelled = true;
            break;
        }
        if !req.force && state.succeeded(&pipeline, as_of)? {
            tracing::info!(%pipeline, %as_of, "already succeeded; skipped");
            report.skipped.push(as_of);
            continue;
        }
        let job = Job {
            schedule: None,
            pipeline: &req.pipeline,
            as_of,
            fire_time: None,
            set: &req.set,
            policy: req.policy,
            force: req.force,
        };
        let ex = Exec {
            state,
            runner,
            opts,
            shutdown: cancel,
            on_change: &|| {},
        };
        let (error, blame) = match execute(&ex, &job).await? {
            JobResult::Succeeded { outcome, .. } => {
                report.ran.push(as_of);
                report.partial |= outcome.partial;
                continue;
            }
            // Another process finished it between our check and our lock.
            JobResult::AlreadySucceeded { .. } => {
                report.skipped.push(as_of);
                continue;
            }
            // Locked by another process: it may be free later.
            JobResult::Skipped { reason, .. } => (reason, Blame::External),
            JobResult::Failed { failure, .. } => (failure.message, failure.blame),
            JobResult::Interrupted { failure, .. } => {
                report.cancelled = true;
                (failure.message, failure.blame)
            }
        };
        report.failed = Some(BackfillFailure {
            as_of,
            error,
            blame,
        });
        break;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_support::{ScriptedRunner, Step, exec_as, fake_state};
    use crate::state::RunStatus;
    use std::time::Duration;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 5, day).unwrap()
    }

    fn opts() -> ExecOptions {
        exec_as("backfiller")
    }

    #[tokio::test(start_paused = true)]
    async fn skips_succeeded_dates_unless_forced() {
        let (_dir, clock, state) = fake_state("2025-06-01T00:00:00Z");
        let runner = ScriptedRunner::new(&clock, vec![]);
        let cancel = CancellationToken::new();
        let mut req = BackfillRequest::new("pipelines/p.toml", d(2), d(3));
        let first = backfill(runner.as_ref(), &state, &req, &opts(), &cancel)
            .await
            .unwrap();
        assert_eq!(
            (first.ran, first.skipped, first.failed),
            (vec![d(2), d(3)], vec![], None)
        );

        req.from = d(1);
        req.to = d(4);
        let second = backfill(runner.as_ref(), &state, &req, &opts(), &cancel)
            .await
            .unwrap();
        assert_eq!(second.ran, vec![d(1), d(4)]);
        assert_eq!(second.skipped, vec![d(2), d(3)]);

        req.force = true;
        let forced = backfill(runner.as_ref(), &state, &req, &opts(), &cancel)
            .await
            .unwrap();
        assert_eq!(forced.ran, vec![d(1), d(2), d(3), d(4)]);
        let as_ofs: Vec<_> = runner.calls().iter().map(|(r, _)| r.as_of).collect();
        assert_eq!(as_ofs, vec![d(2), d(3), d(1), d(4), d(1), d(2), d(3), d(4)]);
        assert!(
            runner
                .calls()
                .iter()
                .all(|(r, _)| r.schedule.is_none() && r.fire_time.is_none())
        );
        assert_eq!(state.all_runs().unwrap().len(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_first_failure() {
        let (_dir, clock, state) = fake_state("2025-06-01T00:00:00Z");
        let ok = Step::Ok(Duration::from_secs(60));
        let runner = ScriptedRunner::new(
            &clock,
            vec![
                ok.clone(),
                Step::Fail(Duration::ZERO, "no data for 2025-05-02".into()),
                ok,
            ],
        );
        let req = BackfillRequest::new("pipelines/p.toml", d(1), d(5));
        let report = backfill(
            runner.as_ref(),
            &state,
            &req,
            &opts(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(report.ran, vec![d(1)]);
        assert_eq!(
            report.failed,
            Some(BackfillFailure {
                as_of: d(2),
                error: "no data for 2025-05-02".into(),
                blame: Blame::External,
            })
        );
        assert_eq!(runner.calls().len(), 2);
        let statuses: Vec<_> = state.all_runs().unwrap().iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![RunStatus::Succeeded, RunStatus::Failed]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_locked_date_stops_the_backfill() {
        let (_dir, clock, state) = fake_state("2025-06-01T00:00:00Z");
        let runner = ScriptedRunner::new(&clock, vec![]);
        assert!(
            state
                .try_acquire(
                    &crate::schedule::test_support::key("2025-05-02"),
                    "serve-process",
                    Duration::from_secs(60)
                )
                .unwrap()
        );
        let req = BackfillRequest::new("pipelines/p.toml", d(1), d(3));
        let report = backfill(
            runner.as_ref(),
            &state,
            &req,
            &opts(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(report.ran, vec![d(1)]);
        let failed = report.failed.unwrap();
        assert_eq!(failed.as_of, d(2));
        assert!(
            failed.error.contains("locked by serve-process"),
            "{}",
            failed.error
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rejects_an_empty_range() {
        let (_dir, clock, state) = fake_state("2025-06-01T00:00:00Z");
        let runner = ScriptedRunner::new(&clock, vec![]);
        let req = BackfillRequest::new("p", d(3), d(1));
        let err = backfill(
            runner.as_ref(),
            &state,
            &req,
            &opts(),
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(err, Err(ScheduleError::Invalid(_))));
    }
}
