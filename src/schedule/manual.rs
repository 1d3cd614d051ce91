//! A run started by hand (`winback run`): one pipeline for one `as_of`, under the same run
//! lock and recorded in the same run history as a scheduled run, without a schedule, a
//! skip for dates that already succeeded, or a retry.

use std::path::Path;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::job::{Exec, ExecOptions, Job, JobResult, RunPolicy};
use super::retries::execute;
use super::{PipelineRunner, ScheduleError};
use crate::state::State;

/// Run `pipeline` for `as_of` now, with `set` overrides. Triggering `cancel` stops the
/// run within `opts.grace`.
pub async fn run_now(
    runner: &dyn PipelineRunner,
    state: &State,
    pipeline: &Path,
    as_of: NaiveDate,
    set: &[(String, String)],
    opts: &ExecOptions,
    cancel: &CancellationToken,
) -> Result<JobResult, ScheduleError> {
    state.recover_interrupted()?;
    let job = Job {
        schedule: None,
        pipeline,
        as_of,
        fire_time: None,
        set,
        policy: RunPolicy::once(),
        force: true,
    };
    let ex = Exec {
        state,
        runner,
        opts,
        shutdown: cancel,
        on_change: &|| {},
    };
    Ok(execute(&ex, &job).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_support::{ScriptedRunner, Step, exec_as, fake_state};
    use crate::state::RunStatus;
    use std::time::Duration;

    fn opts() -> ExecOptions {
        exec_as("me")
    }

    #[tokio::test(start_paused = true)]
    async fn runs_again_a_date_that_succeeded_and_records_each_run() {
        let (_dir, clock, state) = fake_state("2025-06-01T00:00:00Z");
        let runner = ScriptedRunner::new(&clock, vec![]);
        let cancel = CancellationToken::new();
        let as_of = NaiveDate::from_ymd_opt(2025, 5, 2).unwrap();
        let p = Path::new("pipelines/p.toml");
        for _ in 0..2 {
            let r = run_now(runner.as_ref(), &state, p, as_of, &[], &opts(), &cancel)
                .await
                .unwrap();
            assert!(matches!(r, JobResult::Succeeded { .. }), "{r:?}");
        }
        assert_eq!(runner.calls().len(), 2);
        let runs = state.all_runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
        assert!(runs.iter().all(|r| r.schedule.is_none()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_external_failure_is_recorded_once_without_retry() {
        let (_dir, clock, state) = fake_state("2025-06-01T00:00:00Z");
        let runner = ScriptedRunner::new(
            &clock,
            vec![Step::Fail(Duration::from_secs(1), "ledger locked".into())],
        );
        let cancel = CancellationToken::new();
        let as_of = NaiveDate::from_ymd_opt(2025, 5, 2).unwrap();
        let p = Path::new("pipelines/p.toml");
        let r = run_now(runner.as_ref(), &state, p, as_of, &[], &opts(), &cancel)
            .await
            .unwrap();
        let JobResult::Failed { failure, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(failure.blame, crate::error::Blame::External);
        assert_eq!(runner.calls().len(), 1);
        assert_eq!(state.all_runs().unwrap()[0].status, RunStatus::Failed);
    }
}
