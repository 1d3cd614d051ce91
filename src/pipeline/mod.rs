//! One pipeline run for one `as_of`, the same for `run`, `demo`, `backfill` and `serve`:
//! load the configuration once, set up the session once ([`setup`]), check the sources,
//! run the stages ([`execute`]), commit every output at once ([`crate::output::commit`])
//! and write the run's manifest, also when the run fails or is stopped.

pub mod campaign_inputs;
pub mod campaigns;
pub mod execute;
pub mod scheduled;
pub mod setup;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::prelude::SessionContext;
use tokio_util::sync::CancellationToken;

use crate::config::{LoadOptions, Pipeline};
use crate::engine::{self, EngineOptions, Params};
use crate::error::{ConfigError, PipelineError};
use crate::manifest::Manifest;
use crate::output::OutputWriter;
use crate::progress::Progress;
use crate::source;
use crate::stage::{executor::StageRun, graph::Graph};
use crate::storage::{self, Location};

pub use setup::{Setup, external_tables, today};

/// Everything that chooses what one run does.
#[derive(Clone)]
pub struct RunOptions {
    pub pipeline_file: PathBuf,
    /// The pipeline already loaded from `pipeline_file` with `load` (`winback run` loads
    /// it once to find today's `as_of` before locking); `None` loads it.
    pub pipeline: Option<Pipeline>,
    pub as_of: Option<NaiveDate>,
    pub load: LoadOptions,
    /// Run only these stages and what they read (`--select`).
    pub select: Vec<String>,
    pub engine: EngineOptions,
    pub progress: Progress,
    /// Where the run history lives (`winback_runs` is read from it); default `.winback`.
    pub state_dir: Option<PathBuf>,
    /// Fires when the run must stop: it stops at the next safe point (no table is
    /// committed), cleans its staging and records `interrupted` in its manifest.
    pub cancel: CancellationToken,
    /// The run lock this run holds, empty when it holds none. A run holding a lock removes
    /// staging that earlier holders of the same lock left behind when they died.
    pub lock_key: String,
    /// Who holds `lock_key` (empty when no lock is held).
    pub lock_holder: String,
    /// Whether the campaigns send. Campaigns need the state folder (the send ledger): a
    /// run without `state_dir` sends nothing.
    pub send: campaigns::SendMode,
}

impl RunOptions {
    /// Options for a run of `pipeline_file` with everything else at its default.
    pub fn new(pipeline_file: impl Into<PathBuf>) -> Self {
        RunOptions {
            pipeline_file: pipeline_file.into(),
            pipeline: None,
            as_of: None,
            load: LoadOptions::default(),
            select: vec![],
            engine: EngineOptions::default(),
            progress: Progress::hidden(),
            state_dir: None,
            cancel: CancellationToken::new(),
            lock_key: String::new(),
            lock_holder: String::new(),
            send: campaigns::SendMode::Send,
        }
    }
}

/// A pipeline with its session prepared: sources registered, stages ordered.
pub struct Prepared {
    pub pipeline: Pipeline,
    pub ctx: SessionContext,
    pub params: Params,
    pub as_of: NaiveDate,
    pub graph: Graph,
    pub sources: Vec<source::RegisteredSource>,
    /// Time spent checking the sources' files and finding duplicates.
    pub sources_seconds: f64,
    pub hash: String,
    /// The pipeline's campaigns, resolved.
    pub campaigns: Vec<crate::campaign::Campaign>,
}

fn load(opts: &RunOptions) -> Result<Pipeline, PipelineError> {
    match &opts.pipeline {
        Some(p) => Ok(p.clone()),
        None => setup::load(&opts.pipeline_file, &opts.load),
    }
}

/// Set up the session, register the sources and order the stages; nothing runs yet.
pub async fn prepare(opts: &RunOptions) -> Result<Prepared, PipelineError> {
    prepare_loaded(opts, load(opts)?).await
}

async fn prepare_loaded(opts: &RunOptions, pipeline: Pipeline) -> Result<Prepared, PipelineError> {
    let setup = Setup::new(
        pipeline,
        opts.as_of,
        &opts.engine,
        opts.state_dir.as_deref(),
    )
    .await?;
    let external = setup.external_tables();
    let Setup {
        pipeline,
        ctx,
        params,
        as_of,
        stages,
        mut problems,
        hash,
        campaigns,
    } = setup;
    let graph = match Graph::build(stages, &external) {
        Ok(mut g) => {
            if !opts.select.is_empty()
                && let Err(e) = g.select(&opts.select)
            {
                problems.push(e);
            }
            Some(g)
        }
        Err(mut p) => {
            problems.append(&mut p);
            None
        }
    };
    let Some(graph) = graph.filter(|_| problems.is_empty()) else {
        return Err(ConfigError::Many(problems).into());
    };
    let bar = opts.progress.start("sources");
    let started = Instant::now();
    let sources = match source::register_all(&ctx, &pipeline, &params).await {
        Ok(s) => s,
        Err(e) => {
            bar.failed();
            return Err(e);
        }
    };
    let read: u64 = sources.iter().map(|s| s.report.rows_read).sum();
    let sources_seconds = started.elapsed().as_secs_f64();
    bar.done(read, sources_seconds);
    Ok(Prepared {
        pipeline,
        ctx,
        params,
        as_of,
        graph,
        sources,
        sources_seconds,
        hash,
        campaigns,
    })
}

fn new_run_id(started_at: DateTime<Utc>) -> String {
    format!(
        "{}-{}",
        started_at.format("%Y%m%dT%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn interrupted(what: &str) -> PipelineError {
    PipelineError::Interrupted(format!("the run was stopped {what}; no output was changed"))
}

/// Run a pipeline end to end. Every run writes `_runs/as_of=<D>/run-<id>.json`, also when
/// it fails or is stopped (once the output location is known); a successful run commits
/// its tables and `manifest.json` together, a failed one leaves both as they were.
pub async fn run(opts: &RunOptions) -> Result<Manifest, PipelineError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let run_id = new_run_id(started_at);
    let pipeline = match load(opts) {
        Ok(p) => p,
        Err(e) => {
            // Without a pipeline the output is known only from --output.
            if let Some(url) = &opts.load.output {
                let as_of = opts.as_of.unwrap_or_else(|| Utc::now().date_naive());
                let mut m = Manifest::started(&opts.pipeline_file, "", &run_id, as_of, started_at);
                m.finish(clock, Err(&e));
                let _ = record(&storage::locate(url)?, &m).await;
            }
            return Err(e);
        }
    };
    let as_of = opts.as_of.unwrap_or_else(|| today(&pipeline));
    let mut m = Manifest::started(&pipeline.file, &pipeline.name, &run_id, as_of, started_at);
    let output_url = pipeline.output.url.clone();
    let stops = Stops {
        cancel: &opts.cancel,
        cap: opts.engine.for_pipeline(&pipeline).memory_limit_bytes,
        progress: &opts.progress,
    };
    // Queries run on their own runtime; this task only waits for them or for a stop.
    let task = {
        let opts = opts.clone();
        engine::query_runtime().spawn(async move { prepare_loaded(&opts, pipeline).await })
    };
    let prepared = match until_cancelled(task, &stops, "while checking the sources").await {
        Ok(p) => p,
        Err(e) => {
            m.finish(clock, Err(&e));
            if let Ok(root) = storage::locate(&output_url)
                && let Err(w) = record(&root, &m).await
            {
                tracing::warn!(error = %w, "cannot write the failed run's manifest");
            }
            return Err(e);
        }
    };
    m.pipeline_hash = prepared.hash.clone();
    m.sources = prepared.sources.iter().map(|s| s.report.clone()).collect();
    m.sources_seconds = prepared.sources_seconds;
    m.rows_read = m.sources.iter().map(|s| s.rows_read).sum();
    let root = storage::register(&prepared.ctx, &prepared.pipeline.output.url)?;
    let writer = OutputWriter::new(root.clone(), prepared.as_of, &run_id, &opts.lock_key);
    if !opts.lock_key.is_empty()
        && let Err(e) = writer.remove_stale_staging().await
    {
        tracing::warn!(error = %e, "cannot remove staging left by earlier runs");
    }
    // The ledger, when this run's campaigns act (the state folder holds it). A `--select`
    // run computes part of the pipeline, perhaps without the audiences: it never acts.
    if !opts.select.is_empty() && !prepared.campaigns.is_empty() {
        tracing::info!("campaigns not planned: --select runs part of the pipeline");
    }
    let state = match (&opts.state_dir, opts.send) {
        (Some(dir), mode)
            if mode != campaigns::SendMode::NoSend
                && !prepared.campaigns.is_empty()
                && opts.select.is_empty() =>
        {
            Some(
                crate::state::State::open(dir)
                    .map_err(|e| PipelineError::Internal(e.to_string()))?,
            )
        }
        _ => None,
    };
    // The stages only write into this run's staging, and planning reads the ledger without
    // writing it: stopping them anywhere is safe.
    let outbox = campaigns::outbox_dir(&root, &m.as_of, opts.state_dir.as_deref());
    let task = {
        let (opts, writer, mut m, state) = (opts.clone(), writer.clone(), m.clone(), state.clone());
        let outbox = outbox.clone();
        engine::query_runtime().spawn(async move {
            let ctx = prepared.ctx.clone();
            let computed = async {
                let mut written = execute::execute(&prepared, &opts, &writer, &mut m).await?;
                let planned = match &state {
                    Some(state) => Some(
                        campaigns::plan_in_run(
                            &prepared,
                            &opts,
                            state,
                            &outbox,
                            &writer,
                            &mut written,
                        )
                        .await?,
                    ),
                    None => None,
                };
                Ok((written, m, planned, prepared.pipeline, prepared.campaigns))
            }
            .await;
            // Every table is staged by now: a Ballista run's work tables can go.
            engine::clean_work_area(&ctx).await;
            computed
        })
    };
    let computed = until_cancelled(task, &stops, "between stages").await;
    let mut act = None;
    let result = match computed {
        Ok((written, computed, planned, pipeline, campaign_list)) => {
            m = computed;
            m.outputs = written;
            m.finish(clock, Ok(()));
            let json = m.to_json()?;
            let committed = writer.commit(&m.outputs, Some(&json)).await;
            if committed.is_ok() {
                act = planned.map(|p| (p, pipeline, campaign_list));
            }
            committed
        }
        Err(e) => Err(e),
    };
    // After the commit: record every decision, then deliver (stoppable between batches).
    let result = match (result, act, &state) {
        (Ok(()), Some(((plan, unknown), pipeline, campaign_list)), Some(state)) => {
            let delivering = campaigns::Delivering {
                pipeline: &pipeline,
                campaigns: &campaign_list,
                state,
                mode: opts.send,
                outbox,
                cancel: opts.cancel.clone(),
                clock: Arc::new(crate::clock::SystemClock),
                owner: (!opts.lock_key.is_empty() && !opts.lock_holder.is_empty()).then(|| {
                    crate::state::RunOwner {
                        lock: opts.lock_key.clone(),
                        holder: opts.lock_holder.clone(),
                    }
                }),
            };
            let sent = campaigns::send(plan, as_of, unknown, &delivering).await;
            let outcome = match sent {
                Ok(report) => {
                    let errors = report.errors.clone();
                    let blame = report.blame.unwrap_or(crate::error::Blame::User);
                    m.campaigns = Some(report);
                    if !errors.is_empty() {
                        Err(PipelineError::Stage {
                            stage: "campaigns.delivery".into(),
                            file: pipeline.file.display().to_string(),
                            message: errors.join("; "),
                            blame,
                        })
                    } else if opts.cancel.is_cancelled() {
                        Err(PipelineError::Interrupted(
                            "the run was stopped while delivering: the tables were committed; what was not sent is sent by the next run".into(),
                        ))
                    } else {
                        Ok(())
                    }
                }
                Err(e) => Err(e),
            };
            m.finish(clock, outcome.as_ref().map(|_| ()));
            if let Err(e) = writer.update_manifest(&m.to_json()?).await {
                tracing::warn!(error = %e, "cannot add the deliveries to manifest.json");
            }
            // The tables are in place either way; the run record says what went wrong.
            outcome
        }
        (r, _, _) => r,
    };
    if let Err(e) = &result {
        m.finish(clock, Err(e));
        if let Err(d) = writer.discard().await {
            tracing::warn!(error = %d, "cannot remove this run's staging");
        }
    }
    record(&root, &m).await?;
    if result.is_ok() {
        // The report reads the committed tables; a report that cannot be written does not
        // fail a run whose tables are in place.
        match crate::report::write_report(&output_url, as_of, opts.state_dir.as_deref()).await {
            Ok((path, _)) => m.report = Some(path),
            Err(e) => tracing::warn!(error = %e, "cannot write the report"),
        }
    }
    result.map(|()| m)
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
        _ = stops.cancel.cancelled() => interrupted(what),
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

/// Write the run's own manifest, `_runs/as_of=<D>/run-<id>.json`.
async fn record(root: &Location, m: &Manifest) -> Result<(), PipelineError> {
    let dir = root.child("_runs").child(&format!("as_of={}", m.as_of));
    dir.put(&format!("run-{}.json", m.run_id), m.to_json()?)
        .await
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
