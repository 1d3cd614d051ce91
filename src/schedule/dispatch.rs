//! The fire loop of one schedule under `winback serve`: waits for each fire time and starts its run, unless a run of the same pipeline is still going in this process, in which case the fire is recorded as `skipped` (not queued).
//!
//! A job task holds an in-process claim on its pipeline while it runs its fires
//! (one, or the start-up catch-up fires oldest first). Across processes, the run
//! lock (pipeline + as_of) keeps two runs of the same pipeline and as_of apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::catch_up::missed_fires;
use super::config::Schedule;
use super::job::{Exec, ExecOptions, Job};
use super::retries::execute;
use super::status::StatusWriter;
use super::{PipelineRunner, pipeline_key};
use crate::state::State;

/// What the serve tasks share.
pub(crate) struct Ctx {
    pub schedules: Vec<Schedule>,
    pub state: State,
    pub runner: Arc<dyn PipelineRunner>,
    pub opts: ExecOptions,
    pub shutdown: CancellationToken,
    /// Pipelines with a job in this process -> the schedule running it.
    pub busy: Mutex<HashMap<String, String>>,
    pub status: StatusWriter,
}

impl Ctx {
    pub fn write_status(&self) {
        self.status.write(&self.state, &self.schedules);
    }
}

/// An in-process claim on a pipeline, released when dropped.
struct Claim {
    ctx: Arc<Ctx>,
    pipeline: String,
}

impl Claim {
    /// Claims `pipeline` for schedule `by`, or returns the schedule holding it.
    fn take(ctx: &Arc<Ctx>, pipeline: &str, by: &str) -> Result<Claim, String> {
        let mut busy = ctx.busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(holder) = busy.get(pipeline) {
            return Err(holder.clone());
        }
        busy.insert(pipeline.to_string(), by.to_string());
        Ok(Claim {
            ctx: ctx.clone(),
            pipeline: pipeline.to_string(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut busy = self.ctx.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.pipeline);
    }
}

/// The job task of a schedule; aborted if the schedule task is dropped.
#[derive(Default)]
struct JobSlot(Option<JoinHandle<()>>);

impl JobSlot {
    async fn join(&mut self) {
        if let Some(handle) = self.0.take()
            && let Err(e) = handle.await
        {
            tracing::error!(error = %e, "run task panicked");
        }
    }
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

/// The task of one schedule: dispatches its start-up catch-up fires, then each
/// fire time until shutdown, then waits for its job to end.
pub(crate) async fn schedule_loop(
    ctx: Arc<Ctx>,
    idx: usize,
    catch_up: Vec<DateTime<Utc>>,
    start: DateTime<Utc>,
) {
    let s = &ctx.schedules[idx];
    let clock = ctx.state.clock().clone();
    let mut job = JobSlot::default();
    dispatch(&ctx, idx, catch_up, &mut job);
    let mut after = start;
    loop {
        let next = s.cron.next_after(after);
        ctx.status.set_next_fire(&s.name, next);
        ctx.write_status();
        let Some(next) = next else {
            tracing::info!(schedule = %s.name, "no more fire times");
            break;
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = clock.sleep_until(next) => {}
        }
        let now = clock.now();
        // Normally just `next`; more if the process slept through several fires.
        let due = missed_fires(&s.cron, s.catch_up.when_late(), Some(after), now);
        if due.dropped > 0 {
            tracing::warn!(schedule = %s.name, not_run = due.dropped, "woke up late; missed fire times skipped");
        }
        after = now.max(next);
        dispatch(&ctx, idx, due.fires, &mut job);
    }
    job.join().await;
}

/// Starts a job for `fires` (oldest first), or records them as skipped if the
/// pipeline is still running.
fn dispatch(ctx: &Arc<Ctx>, idx: usize, fires: Vec<DateTime<Utc>>, job: &mut JobSlot) {
    if fires.is_empty() || ctx.shutdown.is_cancelled() {
        return;
    }
    let s = &ctx.schedules[idx];
    let pipeline = pipeline_key(&s.pipeline);
    match Claim::take(ctx, &pipeline, &s.name) {
        Ok(claim) => {
            // A previous job of this schedule has finished (it released the claim).
            job.0 = Some(tokio::spawn(run_fires(ctx.clone(), idx, fires, claim)));
        }
        Err(running) => {
            for fire in fires {
                let reason = format!(
                    "a run of {pipeline} (schedule {running}) was still going at this fire time; \
                     overlapping fires are skipped"
                );
                tracing::warn!(schedule = %s.name, %fire, %reason, "fire skipped");
                let as_of = s.as_of_for(fire);
                if let Err(e) =
                    ctx.state
                        .record_skipped(Some(&s.name), &pipeline, as_of, Some(fire), &reason)
                {
                    tracing::error!(schedule = %s.name, error = %e, "cannot record skipped fire");
                }
            }
            ctx.write_status();
        }
    }
}

async fn run_fires(ctx: Arc<Ctx>, idx: usize, fires: Vec<DateTime<Utc>>, _claim: Claim) {
    let s = &ctx.schedules[idx];
    let on_change = || ctx.write_status();
    for fire in fires {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let job = Job {
            schedule: Some(&s.name),
            pipeline: &s.pipeline,
            as_of: s.as_of_for(fire),
            fire_time: Some(fire),
            set: &s.set,
            policy: s.run_policy(),
            // A fire always runs, even if its as_of already succeeded (a schedule
            // firing several times a day means it); the lock still keeps runs of
            // the same pipeline and as_of from overlapping.
            force: true,
        };
        let ex = Exec {
            state: &ctx.state,
            runner: ctx.runner.as_ref(),
            opts: &ctx.opts,
            shutdown: &ctx.shutdown,
            on_change: &on_change,
        };
        if let Err(e) = execute(&ex, &job).await {
            tracing::error!(schedule = %s.name, %fire, error = %e, "state database error during run");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::schedule::test_support::*;
    use crate::state::RunStatus;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn no_overlap_when_a_run_outlasts_the_interval() {
        let (_dir, clock, state) = fake_state("2025-05-01T00:05:00Z");
        let runner = ScriptedRunner::new(&clock, vec![Step::Ok(Duration::from_secs(25 * 60)); 5]);
        let s = test_schedule("cron = \"*/10 * * * *\"");
        serve_until(s, &state, &clock, runner.clone(), "2025-05-01T00:58:00Z").await;
        let starts: Vec<_> = runner
            .calls()
            .iter()
            .map(|(_, at)| at.format("%H:%M").to_string())
            .collect();
        assert_eq!(starts, ["00:10", "00:40"]);
        use RunStatus::*;
        let want = [
            ("01 00:10", Succeeded),
            ("01 00:20", Skipped),
            ("01 00:30", Skipped),
            ("01 00:40", Interrupted),
            ("01 00:50", Skipped),
        ];
        let want: Vec<_> = want.iter().map(|(f, s)| (f.to_string(), *s)).collect();
        assert_eq!(run_rows(&state), want);
        let skipped = &state.all_runs().unwrap()[1];
        assert!(
            skipped.error.as_deref().unwrap().contains("still going"),
            "{skipped:?}"
        );
    }
}
