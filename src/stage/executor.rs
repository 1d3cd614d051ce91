//! Runs the stage graph: each stage starts as soon as the stages it reads are done, so
//! independent stages run side by side; each result is kept for the stages after it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use datafusion::prelude::SessionContext;
use tokio::task::JoinSet;

use super::{Stage, StageKind, checks, graph::Graph, model, model_tables};
use crate::config::{FileFormat, StageSpec};
use crate::engine::{Params, materialize, sql_frame};
use crate::error::PipelineError;
use crate::output::{OutputWriter, WrittenTable};
use crate::progress::Progress;
use crate::storage::Location;

/// What one stage did, for the manifest and the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageRun {
    pub name: String,
    pub file: String,
    pub rows: u64,
    pub seconds: f64,
    /// Fit diagnostics of a model stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<serde_json::Value>,
    /// The most bytes of spill files on disk while the stage ran (absent: none seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill_peak_bytes: Option<u64>,
    /// On an incremental night, the keys a stage maintained per key recomputed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental_keys: Option<u64>,
}

fn stage_err(stage: &Stage, e: datafusion::error::DataFusionError) -> PipelineError {
    PipelineError::stage(&stage.name, &stage.file.display().to_string(), &e)
}

/// Where a SQL stage's result goes for the stages that read it.
#[derive(Clone)]
enum Placement {
    /// Held in memory.
    Memory,
    /// Computed straight into its output's staging files and read back from there (a
    /// Parquet output: the table never sits in memory).
    Output(Box<OutputWriter>),
    /// Computed into Parquet files in the run's work folder and read back (not an output).
    Work(Location),
}

async fn run_one(
    ctx: SessionContext,
    stage: Stage,
    spec: Option<StageSpec>,
    params: Params,
    progress: Progress,
    upstream_fit: Option<model_tables::Fit>,
    placement: Placement,
) -> Result<(StageRun, Option<WrittenTable>, Option<model_tables::Fit>), PipelineError> {
    let bar = progress.start(&stage.name);
    let started = Instant::now();
    let result = async {
        // A SQL stage's query, or a model's: fitted here, scored as it is written.
        let (df, mut diagnostics, unique_proven, fit) = match &stage.kind {
            StageKind::Sql => {
                let df = sql_frame(&ctx, &stage.sql, &params)
                    .await
                    .map_err(|e| stage_err(&stage, e))?;
                let proven = spec
                    .as_ref()
                    .is_some_and(|s| checks::unique_by_plan(df.schema(), &s.unique));
                (df, None, proven, None)
            }
            StageKind::Model(m) => {
                let (df, d, fit) = model::frame(&ctx, &stage.name, m, upstream_fit).await?;
                (df, Some(d), false, fit)
            }
        };
        let (rows, written) = match &placement {
            Placement::Output(writer) => {
                let (written, rows) = writer.stage_and_read_back(&ctx, &stage.name, df).await?;
                (rows, Some(written))
            }
            Placement::Work(dir) => {
                let at = dir.child(&stage.name);
                let rows = crate::output::spill_and_read_back(&ctx, &stage.name, df, &at).await?;
                (rows, None)
            }
            Placement::Memory => {
                let rows = materialize(&ctx, &stage.name, df)
                    .await
                    .map_err(|e| stage_err(&stage, e))?;
                (rows, None)
            }
        };
        if let (StageKind::Model(m), Some(d)) = (&stage.kind, diagnostics.as_mut()) {
            model::complete_diagnostics(&ctx, &stage.name, m, d).await?;
        }
        if let Some(spec) = &spec {
            checks::run(&ctx, &stage.name, spec, unique_proven).await?;
        }
        Ok((rows, diagnostics, written, fit))
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((rows, diagnostics, written, fit)) => {
            bar.done(rows, seconds);
            let run = StageRun {
                name: stage.name.clone(),
                file: stage.file.display().to_string(),
                rows,
                seconds,
                diagnostics,
                spill_peak_bytes: None,
                incremental_keys: None,
            };
            Ok((run, written, fit))
        }
        Err(e) => {
            bar.failed();
            Err(e)
        }
    }
}

/// What happens around the stages: outputs written as soon as their stage is done (so
/// writing overlaps computing), and tables dropped once nothing needs them (memory).
#[derive(Default)]
pub struct Lifecycle {
    /// Output tables and their formats.
    pub outputs: BTreeMap<String, FileFormat>,
    pub writer: Option<OutputWriter>,
    /// Drop tables nothing reads any more; off for sessions that are queried afterwards.
    pub release: bool,
    /// Tables never dropped (read after the stages, e.g. by metrics).
    pub keep: HashSet<String>,
    /// The tables behind each source, dropped with it.
    pub source_tables: BTreeMap<String, Vec<String>>,
    /// A local folder for the SQL stages that are no Parquet output: their results go
    /// there as Parquet instead of memory (`None`: kept in memory).
    pub work_dir: Option<Location>,
    /// Run one stage at a time (under a memory cap: stages side by side would share the
    /// memory each of them needs; each still uses every core).
    pub one_at_a_time: bool,
}

enum Done {
    /// A stage finished; its output too when it was written directly, and its fit.
    Stage(StageRun, Option<WrittenTable>, Option<model_tables::Fit>),
    Written(WrittenTable),
}

impl Lifecycle {
    /// The writer for a stage written straight to its output files: a stage with a
    /// Parquet output (the files can be read back as they are).
    fn direct(&self, stage: &Stage) -> Option<OutputWriter> {
        let parquet = self.outputs.get(&stage.name) == Some(&FileFormat::Parquet);
        self.writer.clone().filter(|_| parquet)
    }

    /// Where a stage's result is kept for its readers.
    fn placement(&self, stage: &Stage) -> Placement {
        match (self.direct(stage), &self.work_dir) {
            (Some(writer), _) => Placement::Output(Box::new(writer)),
            (None, Some(dir)) => Placement::Work(dir.clone()),
            _ => Placement::Memory,
        }
    }
}

/// Run every stage of the graph; stops at the first failure. Returns the stage runs and
/// the output tables written to staging.
pub async fn run_all(
    ctx: &SessionContext,
    graph: &Graph,
    specs: &BTreeMap<String, StageSpec>,
    params: &Params,
    progress: &Progress,
    life: &Lifecycle,
) -> Result<(Vec<StageRun>, Vec<WrittenTable>), PipelineError> {
    let mut done: HashSet<String> = HashSet::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<Result<Done, PipelineError>> = JoinSet::new();
    let mut runs = Vec::new();
    let mut written = Vec::new();
    // Fits of finished clv models, handed to the models that build on them.
    let mut fits: HashMap<String, model_tables::Fit> = HashMap::new();
    let mut readers = Readers::new(ctx, graph, life);
    let writer = life.writer.as_ref();
    // Stages started and not yet done.
    let mut running = 0usize;
    loop {
        for stage in &graph.order {
            if life.one_at_a_time && running > 0 {
                break;
            }
            if !started.contains(&stage.name) && graph.upstream(stage).all(|u| done.contains(u)) {
                running += 1;
                started.insert(stage.name.clone());
                let task = run_one(
                    ctx.clone(),
                    stage.clone(),
                    specs.get(&stage.name).cloned(),
                    params.clone(),
                    progress.clone(),
                    match &stage.kind {
                        StageKind::Model(m) => m.model.as_ref().and_then(|u| fits.get(u).copied()),
                        StageKind::Sql => None,
                    },
                    life.placement(stage),
                );
                tasks.spawn(async move { task.await.map(|(run, w, f)| Done::Stage(run, w, f)) });
            }
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined.map_err(|e| PipelineError::Internal(format!("stage task failed: {e}")))?? {
            Done::Stage(run, direct, fit) => {
                running -= 1;
                if let Some(fit) = fit {
                    fits.insert(run.name.clone(), fit);
                }
                if let Some(table) = direct {
                    written.push(table);
                } else if let (Some(w), Some(format)) = (writer, life.outputs.get(&run.name)) {
                    let (w, ctx, name, format) =
                        (w.clone(), ctx.clone(), run.name.clone(), *format);
                    tasks.spawn(async move {
                        w.write_to_staging(&ctx, &name, format)
                            .await
                            .map(Done::Written)
                    });
                }
                let stage = graph
                    .order
                    .iter()
                    .find(|s| s.name == run.name)
                    .expect("a stage of the graph");
                for t in &stage.reads {
                    readers.release(t);
                }
                readers.drop_unread(&run.name);
                // The finished stage's buffers are free: hand them back to the system now
                // rather than seconds later, before the next stages allocate theirs.
                crate::memory_cap::release_free_memory();
                done.insert(run.name.clone());
                runs.push(run);
            }
            Done::Written(table) => {
                readers.release(&table.table);
                written.push(table);
            }
        }
    }
    Ok((runs, written))
}

/// How many stages (and pending writes) still need each table: a table no one needs any
/// more is dropped from the session, unless it is kept (or tables are not released).
struct Readers<'a> {
    left: HashMap<String, usize>,
    ctx: &'a SessionContext,
    life: &'a Lifecycle,
}

impl<'a> Readers<'a> {
    fn new(ctx: &'a SessionContext, graph: &Graph, life: &'a Lifecycle) -> Self {
        let mut left: HashMap<String, usize> = HashMap::new();
        for stage in &graph.order {
            for t in &stage.reads {
                *left.entry(t.clone()).or_default() += 1;
            }
        }
        for stage in &graph.order {
            // A pending write reads the table too (unless the stage writes it itself).
            if life.writer.is_some()
                && life.outputs.contains_key(&stage.name)
                && life.direct(stage).is_none()
            {
                *left.entry(stage.name.clone()).or_default() += 1;
            }
        }
        Readers { left, ctx, life }
    }

    /// Drops `table` (and its source's internal tables) once no stage or pending write
    /// needs it.
    fn drop_unread(&self, table: &str) {
        let unread = self.left.get(table).copied().unwrap_or(0) == 0;
        if !unread || !self.life.release || self.life.keep.contains(table) {
            return;
        }
        let _ = self.ctx.deregister_table(table);
        for internal in self.life.source_tables.get(table).into_iter().flatten() {
            let _ = self.ctx.deregister_table(internal.as_str());
        }
    }

    /// One reader of `table` is done with it.
    fn release(&mut self, table: &str) {
        if let Some(left) = self.left.get_mut(table) {
            *left = left.saturating_sub(1);
        }
        self.drop_unread(table);
    }
}
