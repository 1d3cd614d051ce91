//! One pipeline run for one `as_of`: sources, stages, outputs and the manifest, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

use crate::config::{self, FileFormat, LoadOptions, Pipeline};
use crate::engine::{self, EngineOptions, Params, df_err, sql_frame};
use crate::error::{ConfigError, PipelineError};
use crate::manifest::{self, Manifest, RunStatus};
use crate::progress::Progress;
use crate::source;
use crate::stage::{self, graph::Graph, output::OutputWriter, runner::StageRun};
use crate::storage;

/// Everything that chooses what one run does.
#[derive(Clone)]
pub struct RunOptions {
    pub pipeline_file: PathBuf,
    pub as_of: Option<NaiveDate>,
    pub load: LoadOptions,
    /// Run only these stages and what they read (`--select`).
    pub select: Vec<String>,
    pub engine: EngineOptions,
    pub progress: Progress,
    /// Where the run history lives (`winback_runs` is read from it); default `.winback`.
    pub state_dir: Option<PathBuf>,
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
}

/// The date a run is for when `--as-of` is not given: today in the pipeline's timezone.
pub fn today(pipeline: &Pipeline) -> NaiveDate {
    Utc::now().with_timezone(&pipeline.timezone).date_naive()
}

/// Tables that exist before any stage runs: sources, `quarantine`, `winback_runs`.
pub fn external_tables(pipeline: &Pipeline) -> BTreeSet<String> {
    let mut t: BTreeSet<String> = pipeline.sources.iter().map(|s| s.name.clone()).collect();
    t.insert("quarantine".into());
    t.insert(crate::history_table::TABLE.into());
    t
}

/// Load the pipeline, register its sources and order its stages; nothing runs yet.
pub async fn prepare(opts: &RunOptions) -> Result<Prepared, PipelineError> {
    let pipeline = config::load(&opts.pipeline_file, &opts.load)?;
    let as_of = opts.as_of.unwrap_or_else(|| today(&pipeline));
    let ctx = engine::new_session(&opts.engine)?;
    let params = Params::for_run(&pipeline, as_of);
    let (stages, mut problems) = stage::load_pipeline(&ctx, &pipeline);
    let files: Vec<PathBuf> = stages
        .iter()
        .filter(|s| matches!(s.kind, stage::StageKind::Sql))
        .map(|s| s.file.clone())
        .collect();
    let hash = manifest::hash_files(
        &pipeline.file,
        &files.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
    );
    let graph = match Graph::build(stages, &external_tables(&pipeline)) {
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
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
    }
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
    crate::history_table::register(&ctx, opts.state_dir.as_deref())?;
    Ok(Prepared {
        pipeline,
        ctx,
        params,
        as_of,
        graph: graph.expect("no problems means a graph"),
        sources,
        sources_seconds,
        hash,
    })
}

/// Run a pipeline end to end and write its manifest, also when it fails.
pub async fn run(opts: &RunOptions) -> Result<Manifest, PipelineError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let prepared = prepare(opts).await?;
    let run_id = format!(
        "{}-{}",
        started_at.format("%Y%m%dT%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let root = storage::register(&prepared.ctx, &prepared.pipeline.output.url)?;
    let writer = OutputWriter::new(root.clone(), prepared.as_of, &run_id);
    let mut m = Manifest {
        pipeline: prepared.pipeline.name.clone(),
        pipeline_file: prepared.pipeline.file.display().to_string(),
        pipeline_hash: prepared.hash.clone(),
        run_id,
        as_of: prepared.as_of.to_string(),
        started_at: started_at.to_rfc3339(),
        ended_at: String::new(),
        seconds: 0.0,
        status: RunStatus::Failed,
        error: None,
        sources: prepared.sources.iter().map(|s| s.report.clone()).collect(),
        sources_seconds: prepared.sources_seconds,
        quarantine_seconds: 0.0,
        stages: Vec::new(),
        quarantine: BTreeMap::new(),
        outputs: Vec::new(),
        metrics: BTreeMap::new(),
        models: BTreeMap::new(),
        rows_read: prepared.sources.iter().map(|s| s.report.rows_read).sum(),
        rows_per_second: 0.0,
        peak_memory_bytes: None,
    };
    let result = execute(&prepared, opts, &writer, &mut m).await;
    m.seconds = clock.elapsed().as_secs_f64();
    m.ended_at = Utc::now().to_rfc3339();
    m.rows_per_second = m.rows_read as f64 / m.seconds.max(1e-9);
    m.peak_memory_bytes = manifest::peak_memory_bytes();
    match &result {
        Ok(()) => m.status = RunStatus::Succeeded,
        Err(e) => {
            m.error = Some(e.to_string());
            let _ = writer.discard().await;
        }
    }
    let dir = root
        .child("_runs")
        .child(&format!("as_of={}", prepared.as_of));
    let json = serde_json::to_vec_pretty(&m).map_err(|e| PipelineError::Internal(e.to_string()))?;
    // Every run keeps its own manifest; `manifest.json` describes the tables in place, so a
    // failed rerun does not replace the one of the successful run that wrote them.
    dir.put(&format!("run-{}.json", m.run_id), json.clone())
        .await?;
    if result.is_ok() || dir.get("manifest.json").await?.is_none() {
        dir.put("manifest.json", json).await?;
    }
    result.map(|()| m)
}

async fn execute(
    p: &Prepared,
    opts: &RunOptions,
    writer: &OutputWriter,
    m: &mut Manifest,
) -> Result<(), PipelineError> {
    let format_of = |table: &str| {
        p.pipeline
            .output
            .formats
            .get(table)
            .copied()
            .unwrap_or(p.pipeline.output.format)
    };
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
    let outputs: BTreeMap<String, FileFormat> = tables
        .iter()
        .filter(|t| computed(t))
        .map(|t| (t.clone(), format_of(t)))
        .collect();
    // Quarantine first: it reads the sources' internal tables, which can then be dropped
    // as soon as the stages reading the sources are done.
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
        written.push(writer.stage(&p.ctx, "quarantine", *format).await?);
    }
    let keep = p
        .pipeline
        .metrics
        .values()
        .flat_map(|sql| stage::parse_reads(&p.ctx, sql).unwrap_or_default())
        .collect();
    let source_tables = p
        .pipeline
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
        .collect();
    let life = stage::runner::Lifecycle {
        outputs,
        writer: Some(writer.clone()),
        release: true,
        keep,
        source_tables,
    };
    let (runs, mut staged) = stage::runner::run_all(
        &p.ctx,
        &p.graph,
        &p.pipeline.stages,
        &p.params,
        &opts.progress,
        &life,
    )
    .await?;
    m.stages = runs;
    m.models = m
        .stages
        .iter()
        .filter_map(|s| s.diagnostics.clone().map(|d| (s.name.clone(), d)))
        .collect();
    m.metrics = metrics(&p.ctx, &p.pipeline, &p.params).await?;
    written.append(&mut staged);
    // Commit in the order the pipeline lists its outputs.
    written.sort_by_key(|w| tables.iter().position(|t| t == &w.table));
    writer.commit(&written).await?;
    m.outputs = written;
    Ok(())
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
        let err = |e: datafusion::error::DataFusionError| PipelineError::Stage {
            stage: format!("metrics.{name}"),
            file: pipeline.file.display().to_string(),
            message: e.strip_backtrace().to_string(),
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

/// Prepare and run every stage, keeping the results in the session only: no outputs, no
/// manifest. For tests and for tools that read the tables directly.
pub async fn run_in_session(opts: &RunOptions) -> Result<(Prepared, Vec<StageRun>), PipelineError> {
    let prepared = prepare(opts).await?;
    let (runs, _) = stage::runner::run_all(
        &prepared.ctx,
        &prepared.graph,
        &prepared.pipeline.stages,
        &prepared.params,
        &opts.progress,
        &stage::runner::Lifecycle::default(),
    )
    .await?;
    Ok((prepared, runs))
}
