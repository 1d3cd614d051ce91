//! The compute phase: [`Prepared`] → [`Computed`]. The quarantine table first, then the
//! stage graph with each output staged as soon as its stage is done, then the pipeline's
//! `[metrics]`. Everything is written into this run's staging only: stopping it anywhere
//! is safe.

use std::collections::BTreeMap;
use std::time::Instant;

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

use super::{Prepared, RunOptions};
use crate::config::{FileFormat, Pipeline};
use crate::engine::{self, Params, df_err, sql_frame};
use crate::error::PipelineError;
use crate::output::{OutputWriter, WrittenTable};
use crate::source;
use crate::stage::{self, executor::StageRun};

/// A pipeline whose tables are computed and staged, not committed yet.
pub struct Computed {
    pub prepared: Prepared,
    /// The staged tables to commit, in the order the pipeline lists its outputs.
    pub written: Vec<WrittenTable>,
    pub record: ComputeRecord,
}

/// What computing found, for the run's manifest.
#[derive(Debug, Default)]
pub struct ComputeRecord {
    pub quarantine_seconds: f64,
    /// Rejected input rows by `source/reason`.
    pub quarantine: BTreeMap<String, u64>,
    pub stages: Vec<StageRun>,
    pub models: BTreeMap<String, serde_json::Value>,
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub spill_peak_bytes: u64,
    /// How the stages maintained per key were computed (absent: the pipeline has none).
    pub incremental: Option<super::incremental::IncrementalRecord>,
}

/// Quarantine, every stage, the metrics: the tables to commit, staged by `writer`.
pub async fn compute(
    mut p: Prepared,
    opts: &RunOptions,
    writer: &OutputWriter,
) -> Result<Computed, PipelineError> {
    let mut m = ComputeRecord::default();
    let (tables, outputs) = output_tables(&p);
    let spills = crate::spill::SpillWatch::start(&p.ctx, &opts.progress);
    // Quarantine first: it reads the sources' internal tables, which can then be dropped
    // as soon as the stages reading the sources are done.
    let mut written = quarantine(&p, opts, writer, &outputs, &mut m).await?;
    let mut keep: std::collections::HashSet<String> = p
        .pipeline
        .metrics
        .values()
        .flat_map(|sql| stage::parse_reads(&p.ctx, sql).unwrap_or_default())
        .collect();
    // Campaign planning reads its tables after the stages.
    if opts.acts(!p.campaigns.is_empty()) {
        keep.extend(super::campaign_inputs::tables_read(&p.campaigns));
    }
    // Stages maintained per key: on an incremental night they run here over the keys the
    // new rows touch, and the graph merges them into the kept tables.
    let needed: std::collections::HashSet<String> =
        keep.iter().chain(outputs.keys()).cloned().collect();
    let maintenance = super::incremental::begin(&mut p, opts, &needed).await?;
    if let Some(m) = &maintenance {
        keep.extend(m.tables().iter().cloned());
    }
    let source_tables = source_tables(&p.pipeline);
    // Intermediate tables go to Parquet in a private folder of the system's temp space
    // (where DataFusion spills too), removed when the run ends however it ends.
    let work = tempfile::Builder::new()
        .prefix(&crate::spill::work_prefix())
        .tempdir()
        .map_err(|e| PipelineError::Internal(format!("cannot create a work folder: {e}")))?;
    tracing::info!(folder = %work.path().display(), "intermediate tables go to this work folder");
    let life = stage::executor::Lifecycle {
        outputs,
        writer: Some(writer.clone()),
        release: true,
        keep,
        source_tables,
        // A Ballista session's own work area: its executors must reach it.
        work_dir: Some(match engine::work_area(&p.ctx) {
            Some(area) => area.location.clone(),
            None => crate::storage::locate(&work.path().to_string_lossy())?,
        }),
        one_at_a_time: opts
            .engine
            .for_pipeline(&p.pipeline)
            .memory_limit_bytes
            .is_some(),
    };
    let (runs, mut staged) = stage::executor::run_all(
        &p.ctx,
        &p.graph,
        &p.pipeline.stages,
        &p.params,
        &opts.progress,
        &life,
    )
    .await?;
    let spilled = spills.finish();
    m.spill_peak_bytes = spilled.run;
    m.stages = runs;
    if let Some(maintenance) = maintenance {
        m.incremental = Some(maintenance.finish(&p.ctx, &mut m.stages).await?);
    }
    for run in &mut m.stages {
        run.spill_peak_bytes = spilled.by_stage.get(&run.name).copied();
    }
    m.models = m
        .stages
        .iter()
        .filter_map(|s| s.diagnostics.clone().map(|d| (s.name.clone(), d)))
        .collect();
    m.metrics = metrics(&p.ctx, &p.pipeline, &p.params).await?;
    written.append(&mut staged);
    // In the order the pipeline lists its outputs.
    written.sort_by_key(|w| tables.iter().position(|t| t == &w.table));
    Ok(Computed {
        prepared: p,
        written,
        record: m,
    })
}

/// The tables this run writes, in the pipeline's order (every stage and `quarantine` when
/// it lists none), and the format of each one the run computes.
fn output_tables(p: &Prepared) -> (Vec<String>, BTreeMap<String, FileFormat>) {
    let tables: Vec<String> = match &p.pipeline.output.tables {
        Some(t) => t.clone(),
        None => p
            .graph
            .order
            .iter()
            .map(|s| s.name.clone())
            .chain(["quarantine".to_string()])
            .collect(),
    };
    let computed = |t: &String| t == "quarantine" || p.graph.order.iter().any(|s| &s.name == t);
    let outputs = tables
        .iter()
        .filter(|t| computed(t))
        .map(|t| (t.clone(), p.pipeline.output.format_of(t)))
        .collect();
    (tables, outputs)
}

/// Collect the rejected rows into `quarantine` (staged when it is an output) and count
/// them by source and reason.
async fn quarantine(
    p: &Prepared,
    opts: &RunOptions,
    writer: &OutputWriter,
    outputs: &BTreeMap<String, FileFormat>,
    m: &mut ComputeRecord,
) -> Result<Vec<WrittenTable>, PipelineError> {
    let bar = opts.progress.start("quarantine");
    let q = Instant::now();
    let rows = engine::materialize(
        &p.ctx,
        "quarantine",
        sql_frame(&p.ctx, "select * from quarantine", &p.params)
            .await
            .map_err(df_err("quarantine"))?,
    )
    .await
    .map_err(df_err("quarantine"))?;
    m.quarantine_seconds = q.elapsed().as_secs_f64();
    bar.done(rows, m.quarantine_seconds);
    m.quarantine = quarantine_counts(&p.ctx).await?;
    let mut written = Vec::new();
    if let Some(format) = outputs.get("quarantine") {
        written.push(
            writer
                .write_to_staging(&p.ctx, "quarantine", *format)
                .await?,
        );
    }
    Ok(written)
}

/// Each source's table and the internal tables behind it, dropped once no stage needs them.
fn source_tables(pipeline: &Pipeline) -> BTreeMap<String, Vec<String>> {
    pipeline
        .sources
        .iter()
        .map(|s| {
            let n = &s.name;
            let internal = source::INTERNAL_PREFIXES
                .iter()
                .map(|prefix| format!("{prefix}{n}"))
                .collect();
            (n.clone(), internal)
        })
        .collect()
}

async fn quarantine_counts(ctx: &SessionContext) -> Result<BTreeMap<String, u64>, PipelineError> {
    let batches = ctx
        .sql("select source || '/' || reason as k, count(*) as n from quarantine group by 1 order by 1")
        .await
        .map_err(df_err("quarantine"))?
        .collect()
        .await
        .map_err(df_err("quarantine"))?;
    let mut out = BTreeMap::new();
    for b in batches {
        let (Some(k), Some(n)) = (
            b.column(0).as_any().downcast_ref::<StringArray>(),
            b.column(1).as_any().downcast_ref::<Int64Array>(),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            out.insert(k.value(i).to_string(), n.value(i) as u64);
        }
    }
    Ok(out)
}

/// Evaluate the pipeline's `[metrics]`: each query's first value.
async fn metrics(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    params: &Params,
) -> Result<BTreeMap<String, serde_json::Value>, PipelineError> {
    let mut out = BTreeMap::new();
    for (name, sql) in &pipeline.metrics {
        // With --select, a metric over tables this run did not compute is left out.
        let reads = stage::parse_reads(ctx, sql).unwrap_or_default();
        if !reads
            .iter()
            .all(|t| ctx.table_exist(t.as_str()).unwrap_or(false))
        {
            continue;
        }
        let file = pipeline.file.display().to_string();
        let err = |e: datafusion::error::DataFusionError| {
            PipelineError::stage(&format!("metrics.{name}"), &file, &e)
        };
        let batches = sql_frame(ctx, sql, params)
            .await
            .map_err(err)?
            .collect()
            .await
            .map_err(err)?;
        let value = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| scalar_json(b.column(0).as_ref()))
            .unwrap_or(serde_json::Value::Null);
        out.insert(name.clone(), value);
    }
    Ok(out)
}

fn scalar_json(col: &dyn Array) -> serde_json::Value {
    if col.is_null(0) {
        return serde_json::Value::Null;
    }
    let text = ArrayFormatter::try_new(col, &FormatOptions::default())
        .map(|f| f.value(0).to_string())
        .unwrap_or_default();
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => serde_json::json!(v),
        _ => serde_json::Value::String(text),
    }
}
