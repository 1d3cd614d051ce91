//! Model stages: BG/NBD, Gamma-Gamma, CLV and second lifetime value fitted in-process over
//! a table of the session (`[models.NAME]` in the pipeline file); each writes a table back
//! that later SQL stages can join, and its fit diagnostics go into the run manifest.

use std::path::Path;

use super::model_tables::{Fit, SUMMARY_COLUMNS, Summary, output_schema};
use super::{Stage, StageKind};
use crate::config::{ModelSpec, Pipeline};
use crate::error::PipelineError;
use datafusion::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast, concat, sort_to_indices, take};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

/// Every `[models.NAME]` as a stage (validated with the pipeline file).
pub fn load_all(pipeline: &Pipeline) -> Vec<Stage> {
    pipeline
        .models
        .iter()
        .map(|(name, spec)| Stage {
            name: name.clone(),
            file: pipeline.file.clone(),
            sql: String::new(),
            reads: spec.reads(),
            kind: StageKind::Model(spec.clone()),
        })
        .collect()
}

/// Read `names` of `table` in ONE query (separate queries may return rows in different
/// orders), each column cast to the type asked for.
async fn columns(
    ctx: &SessionContext,
    table: &str,
    names: &[(&str, DataType)],
) -> Result<Vec<ArrayRef>, String> {
    let cols: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    let batches = ctx
        .table(table)
        .await
        .and_then(|df| df.select_columns(&cols))
        .map_err(|e| e.strip_backtrace().to_string())?
        .collect()
        .await
        .map_err(|e| e.strip_backtrace().to_string())?;
    let mut out = Vec::new();
    for (i, (_, to)) in names.iter().enumerate() {
        let parts: Vec<ArrayRef> = batches
            .iter()
            .map(|b| cast(b.column(i), to))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        out.push(if refs.is_empty() {
            datafusion::arrow::array::new_empty_array(to)
        } else {
            concat(&refs).map_err(|e| e.to_string())?
        });
    }
    Ok(out)
}

fn floats(a: &ArrayRef, default: f64) -> Vec<f64> {
    let a = a
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to Float64");
    (0..a.len())
        .map(|i| if a.is_null(i) { default } else { a.value(i) })
        .collect()
}

/// Read the summary columns of `table`.
pub async fn read_summary(ctx: &SessionContext, table: &str) -> Result<Summary, String> {
    let mut wanted = vec![(SUMMARY_COLUMNS[0], DataType::Utf8)];
    wanted.extend(SUMMARY_COLUMNS[1..].iter().map(|c| (*c, DataType::Float64)));
    let mut cols = columns(ctx, table, &wanted).await?;
    // In customer id order, not the order the query engine returned (which varies with its
    // partitioning from run to run): nothing a model computes may depend on it.
    let order = sort_to_indices(&cols[0], None, None).map_err(|e| e.to_string())?;
    for c in cols.iter_mut() {
        *c = take(c.as_ref(), &order, None).map_err(|e| e.to_string())?;
    }
    let f: Vec<Vec<f64>> = cols[1..].iter().map(|c| floats(c, 0.0)).collect();
    let [x, t_x, t, spend, total]: [Vec<f64>; 5] = f.try_into().expect("five columns");
    Ok(Summary {
        ids: cols[0]
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8")
            .clone(),
        x,
        t_x,
        t,
        spend: spend.into_iter().map(|m| m.max(0.0)).collect(),
        total,
    })
}

/// Run one model stage: returns the rows written, its diagnostics and its fit (clv), given
/// the fit of the model it builds on (sltv).
pub async fn run(
    ctx: &SessionContext,
    name: &str,
    spec: &ModelSpec,
    upstream: Option<Fit>,
) -> Result<(u64, serde_json::Value, Option<Fit>), PipelineError> {
    let err = |message: String| PipelineError::Model {
        model: name.to_string(),
        message,
    };
    let summary = read_summary(ctx, &spec.input).await.map_err(err)?;
    let lapsed = match &spec.lapsed {
        Some(t) => Some(
            columns(ctx, t, &[("customer_id", DataType::Utf8)])
                .await
                .map_err(err)?
                .remove(0),
        ),
        None => None,
    };
    // The fits and scoring use the session's threads (`--threads`, default all cores);
    // their results are the same for any number of threads.
    let mut spec2 = spec.clone();
    let threads = ctx.copied_config().target_partitions().max(1);
    spec2.fit.threads = threads;
    spec2.clv.threads = threads;
    // The fits are CPU-bound: keep them off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        super::model_tables::build(&spec2, &summary, lapsed.as_ref(), upstream)
    })
    .await
    .map_err(|e| err(e.to_string()))?;
    let (batch, diagnostics, fit) = match (result, spec.required) {
        (Ok(built), _) => built,
        (Err(e), true) => return Err(err(e)),
        (Err(e), false) => {
            // Documented fallback: too little or degenerate data gives an empty table
            // and the reason in the manifest, not a failed run (set required = true).
            tracing::warn!(model = name, error = %e, "model not fitted; its table is empty");
            let kind = serde_json::to_value(spec.kind).unwrap_or_default();
            let diag = serde_json::json!({"type": kind, "error": e, "fallback": "empty table"});
            (RecordBatch::new_empty(output_schema(spec.kind)), diag, None)
        }
    };
    let rows = batch.num_rows() as u64;
    // In batches of the session's size, so later sorts can spill a part at a time.
    let size = ctx.copied_config().batch_size().max(1);
    let batches: Vec<RecordBatch> = (0..batch.num_rows().max(1))
        .step_by(size)
        .map(|start| batch.slice(start, size.min(batch.num_rows() - start)))
        .collect();
    crate::engine::keep_batches(ctx, name, batch.schema(), batches)
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok((rows, diagnostics, fit))
}

/// Check a model's inputs and register an empty table of its output, for `validate`.
pub async fn plan(ctx: &SessionContext, stage: &Stage, spec: &ModelSpec) -> Result<(), String> {
    let at = |m: String| {
        format!(
            "{}: model '{}': {m}",
            Path::new(&stage.file).display(),
            stage.name
        )
    };
    let df = ctx
        .table(&spec.input)
        .await
        .map_err(|e| at(e.strip_backtrace().to_string()))?;
    let have: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let missing: Vec<&str> = SUMMARY_COLUMNS
        .iter()
        .copied()
        .filter(|c| !have.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(at(format!(
            "input '{}' lacks column(s) {}",
            spec.input,
            missing.join(", ")
        )));
    }
    let schema = output_schema(spec.kind);
    crate::engine::register_empty(ctx, &stage.name, schema);
    Ok(())
}
