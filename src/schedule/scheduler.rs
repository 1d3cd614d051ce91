//! The serve loop (`winback serve`): applies catch-up at start-up, runs each schedule's fire loop, keeps the status file fresh on a heartbeat, and shuts down within a bounded time when cancelled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::catch_up::missed_fires;
use super::config::Schedule;
use super::dispatch::{Ctx, schedule_loop};
use super::job::ExecOptions;
use super::status::StatusWriter;
use super::{PipelineRunner, ScheduleError};
use crate::state::State;

/// Settings of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub run: ExecOptions,
    /// How often the status file is refreshed (and dead runs of other processes
    /// are marked interrupted) when nothing else happens.
    pub heartbeat: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            run: ExecOptions::default(),
            heartbeat: Duration::from_secs(30),
        }
    }
}

/// Runs `schedules` until `cancel` is triggered, then stops starting runs, gives
/// the running ones [`ExecOptions::grace`] to stop (their `cancel` token is
/// triggered), records those that did not finish as `interrupted`, and returns
/// within about `grace + 15 s`. Time comes from the clock `state` was opened with.
pub async fn serve(
    schedules: Vec<Schedule>,
    state: State,
    runner: Arc<dyn PipelineRunner>,
    cancel: CancellationToken,
    opts: ServeOptions,
) -> Result<(), ScheduleError> {
    check_names(&schedules)?;
    let clock = state.clock().clone();
    let start = clock.now();
    let recovered = state.recover_interrupted()?;
    if recovered > 0 {
        tracing::warn!(
            runs = recovered,
            "marked runs of dead processes as interrupted"
        );
    }
    let plans = catch_up_plans(&schedules, &state, &opts.run.holder, start)?;
    let status = StatusWriter::new(&state, &opts.run.holder);
    let ctx = Arc::new(Ctx {
        schedules,
        state: state.clone(),
        runner,
        opts: opts.run.clone(),
        shutdown: cancel.clone(),
        busy: Mutex::new(HashMap::new()),
        status,
    });
    ctx.write_status();
    let mut tasks = JoinSet::new();
    for (idx, plan) in plans.into_iter().enumerate() {
        tasks.spawn(schedule_loop(ctx.clone(), idx, plan, start));
    }

    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = clock.sleep(opts.heartbeat) => {
                if let Err(e) = state.recover_interrupted() {
                    tracing::warn!(error = %e, "cannot check for dead runs");
                }
                ctx.write_status();
            }
        }
    }
    shut_down(&ctx, tasks, &state, &opts).await
}

/// At least one schedule, and no name used twice.
fn check_names(schedules: &[Schedule]) -> Result<(), ScheduleError> {
    if schedules.is_empty() {
        return Err(ScheduleError::Invalid("no schedules to serve".into()));
    }
    for (i, s) in schedules.iter().enumerate() {
        if schedules[..i].iter().any(|o| o.name == s.name) {
            return Err(ScheduleError::Invalid(format!(
                "schedule name {:?} is used twice",
                s.name
            )));
        }
    }
    Ok(())
}

/// Per schedule, the missed fire times its catch-up policy runs at start-up.
fn catch_up_plans(
    schedules: &[Schedule],
    state: &State,
    holder: &str,
    start: DateTime<Utc>,
) -> Result<Vec<Vec<DateTime<Utc>>>, ScheduleError> {
    let mut plans = Vec::with_capacity(schedules.len());
    for s in schedules {
        tracing::info!(holder = %holder, "{}", s.describe(start, 3));
        // Catch up from the last fire dealt with; if no fire was ever dealt
        // with but some were interrupted, from just before the first of those.
        let last = match state.last_fire_time(&s.name)? {
            Some(t) => Some(t),
            None => state
                .first_fire_time(&s.name)?
                .map(|t| t - chrono::TimeDelta::milliseconds(1)),
        };
        let plan = missed_fires(&s.cron, s.catch_up, last, start);
        if !plan.fires.is_empty() || plan.dropped > 0 {
            tracing::info!(schedule = %s.name, policy = %s.catch_up, last_fire = ?last,
                catching_up = plan.fires.len(), not_run = plan.dropped, "missed fire times");
        }
        plans.push(plan.fires);
    }
    Ok(plans)
}

/// Starts no new runs, gives the running ones the grace period (plus 15 s) to finish,
/// abandons the rest, records unfinished runs as interrupted and releases the locks.
async fn shut_down(
    ctx: &Ctx,
    mut tasks: JoinSet<()>,
    state: &State,
    opts: &ServeOptions,
) -> Result<(), ScheduleError> {
    let clock = state.clock();
    tracing::info!(
        grace_secs = opts.run.grace.as_secs(),
        "shutting down: no new runs"
    );
    ctx.status.set_state("stopping");
    ctx.write_status();
    let bound = opts.run.grace + Duration::from_secs(15);
    let drained = tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => true,
        _ = clock.sleep(bound) => false,
    };
    if !drained {
        tracing::error!("runs did not stop in time; abandoning them");
        tasks.abort_all();
    }
    drop(tasks);
    let holder = &opts.run.holder;
    let left = state.interrupt_runs_of(holder, "stopped by shutdown before it could finish")?;
    if left > 0 {
        tracing::warn!(runs = left, "recorded unfinished runs as interrupted");
    }
    state.release_all(holder)?;
    ctx.status.set_state("stopped");
    ctx.write_status();
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::schedule::test_support::*;
    use crate::schedule::{Clock, read_status};
    use crate::state::{NewRun, RunStatus};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn catch_up_policies_after_downtime() {
        let expected: [(&str, &[&str]); 3] = [
            ("skip", &[]),
            ("latest", &["05"]),
            ("all", &["02", "03", "04", "05"]),
        ];
        for (policy, caught_up) in expected {
            // Last fired May 1st 02:30; winback comes back on May 5th at 10:00.
            let (_dir, clock, state) = fake_state("2025-05-05T10:00:00Z");
            let last = NewRun {
                schedule: Some("s"),
                pipeline: "pipelines/p.toml",
                as_of: chrono::NaiveDate::from_ymd_opt(2025, 5, 1).unwrap(),
                fire_time: Some(utc("2025-05-01T02:30:00Z")),
                attempt: 1,
                holder: "old",
                lock_key: "k",
            };
            let id = state.start_run(&last).unwrap();
            state
                .finish_run(id, RunStatus::Succeeded, None, 0, 0)
                .unwrap();
            let runner = ScriptedRunner::new(&clock, vec![]);
            let cron = format!("cron = \"30 2 * * *\"\ncatch_up = \"{policy}\"");
            serve_until(
                test_schedule(&cron),
                &state,
                &clock,
                runner.clone(),
                "2025-05-06T03:00:00Z",
            )
            .await;
            let days: Vec<String> = runner
                .calls()
                .iter()
                .map(|(r, _)| r.as_of.format("%d").to_string())
                .collect();
            let mut want: Vec<String> = caught_up.iter().map(|d| d.to_string()).collect();
            want.push("06".into()); // then the regular fire
            assert_eq!(days, want, "catch_up = {policy}");
            assert!(runner.calls().iter().all(|(r, _)| r.fire_time.is_some()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_records_interrupted_and_restart_catches_up() {
        let (dir, clock, state) = fake_state("2025-05-01T02:00:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Hang(Duration::from_secs(10 * 3600))]);
        let s = test_schedule("cron = \"30 2 * * *\"");
        serve_until(
            s.clone(),
            &state,
            &clock,
            runner.clone(),
            "2025-05-01T02:45:00Z",
        )
        .await;
        // Returned within the 30 s grace period.
        assert!(
            clock.now() <= utc("2025-05-01T02:45:31Z"),
            "{}",
            clock.now()
        );
        let run = &state.all_runs().unwrap()[0];
        assert_eq!(run.status, RunStatus::Interrupted);
        assert!(
            run.error.as_deref().unwrap().contains("grace period"),
            "{run:?}"
        );
        assert!(
            state
                .lock_info(&crate::schedule::test_support::key("2025-05-01"))
                .unwrap()
                .is_none()
        );
        let status = read_status(dir.path()).unwrap();
        assert_eq!(status.state, "stopped");
        let last = status.schedules[0].last_run.as_ref().unwrap();
        assert_eq!(last.status, RunStatus::Interrupted);

        // The interrupted fire counts as missed: the next start runs it again.
        clock.set(utc("2025-05-01T08:00:00Z"));
        let runner = ScriptedRunner::new(&clock, vec![]);
        serve_until(s, &state, &clock, runner.clone(), "2025-05-01T09:00:00Z").await;
        assert_eq!(
            runner.calls()[0].0.fire_time,
            Some(utc("2025-05-01T02:30:00Z"))
        );
        let status = read_status(dir.path()).unwrap();
        assert_eq!(
            status.schedules[0].next_fire,
            Some(utc("2025-05-02T02:30:00Z"))
        );
        assert_eq!(
            status.schedules[0].last_run.as_ref().unwrap().status,
            RunStatus::Succeeded
        );
    }
}
