//! One pipeline run for one `as_of`, the same for `run`, `demo`, `backfill` and `serve`,
//! as a sequence of typed phases, one file each:
//!
//! ```text
//! RunOptions ─ session::Session::open ─► Prepared   (config, session, sources checked)
//!            ─ compute::compute       ─► Computed   (stages, models, metrics: staged)
//!            ─ plan::plan_phase       ─► Planned    (campaign decisions; session gone)
//!            ─ commit::commit         ─► Committed  (tables and manifest.json in place)
//!            ─ deliver::deliver_phase ─► Delivered  (ledger recorded, messages sent)
//!            ─ recorder::RunRecorder::finish        (the run's record, once; the report)
//! ```
//!
//! Each phase takes the previous one's value, so what a phase may not do yet is
//! impossible by type: only a `Committed` run delivers. One [`RunRecorder`] owns the
//! manifest from start to end and writes the run's record exactly once, however the run
//! ends. `validate`, `explain` and `ltv backtest` open the same [`Session`].

pub mod campaign_inputs;
pub mod channels;
pub mod commit;
pub mod compute;
pub mod deliver;
pub mod incremental;
mod incremental_state;
pub mod options;
pub mod plan;
pub mod recorder;
pub mod scheduled;
pub mod session;
pub mod test_send;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::engine;
use crate::error::PipelineError;
use crate::manifest::Manifest;
use crate::stage::executor::StageRun;

pub use options::{RunOptions, SendMode};
pub use recorder::RunRecorder;
pub use session::{Mode, Prepared, Session, external_tables, prepare, today};

/// Run a pipeline end to end. Every run writes `_runs/as_of=<D>/run-<id>.json`, also when
/// it fails or is stopped (once the output location is known); a successful run commits
/// its tables and `manifest.json` together, a failed one leaves both as they were.
pub async fn run(opts: &RunOptions) -> Result<Manifest, PipelineError> {
    let mut recorder = RunRecorder::start(opts);
    let result = phases(opts, &mut recorder).await;
    recorder.finish(result, opts.state_dir.as_deref()).await
}

/// The phases, in order; the recorder hears what each found.
async fn phases(opts: &RunOptions, recorder: &mut RunRecorder) -> Result<(), PipelineError> {
    let pipeline = session::load_for(opts)?;
    recorder.loaded(&pipeline, opts);
    let stops = Stops {
        cancel: &opts.cancel,
        cap: opts.engine.for_pipeline(&pipeline).memory_limit_bytes,
        progress: &opts.progress,
    };
    // Queries run on their own runtime; this task only waits for them or for a stop.
    let task = {
        let opts = opts.clone();
        engine::query_runtime().spawn(async move {
            Session::with_pipeline(pipeline, &opts, Mode::Run)
                .await?
                .prepare(&opts)
                .await
        })
    };
    let prepared = until_cancelled(task, &stops, "while checking the sources").await?;
    recorder.prepared(&prepared);
    let writer = recorder.open_output(&prepared, opts).await?;
    let acts = opts.acts(!prepared.campaigns.is_empty());
    if !opts.select.is_empty() && !prepared.campaigns.is_empty() {
        tracing::info!("campaigns not planned: --select runs part of the pipeline");
    }
    // The ledger lives in the state folder: opened only when this run's campaigns act.
    let state = match (&opts.state_dir, acts) {
        (Some(dir), true) => {
            Some(crate::state::State::open(dir).map_err(|e| PipelineError::state(&e))?)
        }
        _ => None,
    };
    let outbox = channels::outbox_dir(
        &writer.root,
        &prepared.as_of.to_string(),
        opts.state_dir.as_deref(),
    );
    // The stages only write into this run's staging, and planning reads the ledger without
    // writing it: stopping them anywhere is safe.
    let task = {
        let (opts, writer, state, outbox) =
            (opts.clone(), writer.clone(), state.clone(), outbox.clone());
        engine::query_runtime().spawn(async move {
            let ctx = prepared.ctx.clone();
            let planned = async {
                let computed = compute::compute(prepared, &opts, &writer).await?;
                plan::plan_phase(computed, &opts, state.as_ref(), &outbox, &writer).await
            }
            .await;
            // Every table is staged by now: a Ballista run's work tables can go.
            engine::clean_work_area(&ctx).await;
            planned
        })
    };
    let planned = until_cancelled(task, &stops, "between stages").await?;
    let acted = planned.plan.is_some();
    let committed = commit::commit(planned, recorder).await?;
    let (Some(state), true) = (&state, acted) else {
        return Ok(());
    };
    // After the commit: record every decision, then deliver (stoppable between batches).
    let delivering = deliver::Delivering {
        state,
        mode: opts.send,
        outbox,
        cancel: opts.cancel.clone(),
        clock: Arc::new(crate::clock::SystemClock),
        owner: opts.owner(),
    };
    let delivered = deliver::deliver_phase(committed, &delivering).await;
    recorder.delivered(delivered.report);
    delivered.outcome
}

/// What stops a run's computing early: a stop request, or the process passing the run's
/// memory cap (see `memory_cap`).
struct Stops<'a> {
    cancel: &'a CancellationToken,
    cap: Option<usize>,
    progress: &'a crate::progress::Progress,
}

/// Wait for a task of the query runtime, or abort it when the run must stop.
async fn until_cancelled<T: Send + 'static>(
    mut task: tokio::task::JoinHandle<Result<T, PipelineError>>,
    stops: &Stops<'_>,
    what: &str,
) -> Result<T, PipelineError> {
    let error = tokio::select! {
        joined = &mut task => return joined.map_err(|e| PipelineError::Internal(format!("query task: {e}")))?,
        _ = stops.cancel.cancelled() => PipelineError::Interrupted(format!("the run was stopped {what}; no output was changed")),
        resident = crate::memory_cap::exceeded(stops.cap) => {
            // Named before the abort below ends them.
            let e = PipelineError::MemoryCap {
                resident_mib: resident >> 20,
                cap_mib: stops.cap.unwrap_or_default() >> 20,
                stages: stops.progress.running(),
            };
            tracing::error!(error = %e, "memory cap reached");
            e
        }
    };
    // Aborted tasks stop at their next await; give writers that moment before staging is
    // removed, so none writes into it afterwards.
    task.abort();
    let _ = tokio::time::timeout(std::time::Duration::from_millis(800), &mut task).await;
    Err(error)
}

/// Prepare and run every stage, keeping the results in the session only: no outputs, no
/// manifest. For tests and for tools that read the tables directly.
pub async fn run_in_session(opts: &RunOptions) -> Result<(Prepared, Vec<StageRun>), PipelineError> {
    let prepared = prepare(opts).await?;
    let (runs, _) = crate::stage::executor::run_all(
        &prepared.ctx,
        &prepared.graph,
        &prepared.pipeline.stages,
        &prepared.params,
        &opts.progress,
        &crate::stage::executor::Lifecycle::default(),
    )
    .await?;
    Ok((prepared, runs))
}
