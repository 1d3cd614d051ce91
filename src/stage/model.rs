//! Model stages: BG/NBD, Gamma-Gamma, CLV and second lifetime value fitted in-process over
//! a table of the session (`[models.NAME]` in the pipeline file); each writes a table back
//! that later SQL stages can join, and its fit diagnostics go into the run manifest.

use std::path::Path;
use std::sync::Arc;

use super::model_summary::{SUMMARY_COLUMNS, Summary};
use super::model_tables::{Fit, Fitted, output_schema, scored_schema, tier_sql};
use super::{Stage, StageKind};
use crate::config::{ModelKind, ModelSpec, Pipeline};
use crate::error::PipelineError;
use crate::source::views::ident;
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::{cast, concat, sort_to_indices, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

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

/// Read `names` of `df` in ONE query (separate queries may return rows in different
/// orders), each column cast to the type asked for.
async fn columns(df: DataFrame, names: &[(&str, DataType)]) -> Result<Vec<ArrayRef>, String> {
    let cols: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    let batches = df
        .select_columns(&cols)
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

/// Read the summary columns of `table`, of the rows `filter` (SQL) keeps, or all.
pub async fn read_summary(
    ctx: &SessionContext,
    table: &str,
    filter: Option<&str>,
) -> Result<Summary, String> {
    let mut wanted = vec![(SUMMARY_COLUMNS[0], DataType::Utf8)];
    wanted.extend(SUMMARY_COLUMNS[1..].iter().map(|c| (*c, DataType::Float64)));
    let mut df = ctx
        .table(table)
        .await
        .map_err(|e| e.strip_backtrace().to_string())?;
    if let Some(filter) = filter {
        let expr = df
            .parse_sql_expr(filter)
            .map_err(|e| e.strip_backtrace().to_string())?;
        df = df
            .filter(expr)
            .map_err(|e| e.strip_backtrace().to_string())?;
    }
    let mut cols = columns(df, &wanted).await?;
    // In customer id order, not the order the query engine returned (which varies with its
    // partitioning from run to run): nothing a model computes may depend on it.
    let order = sort_to_indices(&cols[0], None, None).map_err(|e| e.to_string())?;
    for c in cols.iter_mut() {
        *c = take(c.as_ref(), &order, None).map_err(|e| e.to_string())?;
    }
    Summary::from_columns(&cols)
}

/// A model stage's table as a query, its diagnostics and (clv) its fit, given the fit of
/// the model it builds on (won_back_clv). The model is fitted here, on at most `fit_customers`
/// (`FitOptions::max_customers`, a million by default): above it, on the customers whose
/// id hashes to a multiple of `ceil(customers / fit_customers)`, the same every run. A
/// million customers pin the few parameters of BG/NBD and Gamma-Gamma down far below their
/// sampling noise, in bounded memory. Every customer is scored:
/// scoring streams through the returned frame a batch at a time as it is written, so the
/// stage's memory does not grow with the number of customers.
pub async fn frame(
    ctx: &SessionContext,
    name: &str,
    spec: &ModelSpec,
    upstream: Option<Fit>,
) -> Result<(DataFrame, serde_json::Value, Option<Fit>), PipelineError> {
    let err = |message: String| PipelineError::Model {
        model: name.to_string(),
        message,
    };
    let input = ident(&spec.input);
    let customers = count(ctx, &format!("select count(*) from {input}"))
        .await
        .map_err(err)?;
    let stride = customers
        .div_ceil(spec.fit.max_customers.max(1) as u64)
        .max(1);
    let sample = (stride > 1).then(|| format!("key_hash(customer_id) % {stride} = 0"));
    let summary = read_summary(ctx, &spec.input, sample.as_deref())
        .await
        .map_err(err)?;
    // The fits are CPU-bound: keep them off the async workers. They use the session's
    // threads (`--threads`, default all cores) and give the same result for any number.
    let mut spec2 = spec.clone();
    let threads = ctx.copied_config().target_partitions().max(1);
    spec2.fit.threads = threads;
    spec2.clv.threads = threads;
    let result = tokio::task::spawn_blocking(move || {
        super::model_tables::fit(&spec2, &summary, customers, upstream)
    })
    .await
    .map_err(|e| err(e.to_string()))?;
    let (fitted, diagnostics, fit) = match (result, spec.required) {
        (Ok(fitted), _) => fitted,
        (Err(e), true) => return Err(err(e)),
        (Err(e), false) => {
            // Documented fallback: too little or degenerate data gives an empty table
            // and the reason in the manifest, not a failed run (set required = true).
            tracing::warn!(model = name, error = %e, "model not fitted; its table is empty");
            let kind = serde_json::to_value(spec.kind).unwrap_or_default();
            let diag = serde_json::json!({"type": kind, "error": e, "fallback": "empty table"});
            let empty = format!("_scored_{name}");
            let df = async {
                crate::engine::keep_batches(ctx, &empty, output_schema(spec.kind), vec![]).await?;
                ctx.table(&empty).await
            }
            .await
            .map_err(|e| err(e.strip_backtrace().to_string()))?;
            return Ok((df, diag, None));
        }
    };
    let df = scored(ctx, name, spec, fitted, customers)
        .await
        .map_err(|e| err(e.strip_backtrace().to_string()))?;
    Ok((df, diagnostics, fit))
}

/// The query scoring every customer of `spec.input` with `fitted`, batch by batch.
async fn scored(
    ctx: &SessionContext,
    name: &str,
    spec: &ModelSpec,
    fitted: Fitted,
    customers: u64,
) -> Result<DataFrame, DataFusionError> {
    let num = |c: &str| format!("cast(s.{c} as double) as {c}");
    let mut select = vec!["cast(s.customer_id as varchar) as customer_id".to_string()];
    select.extend(SUMMARY_COLUMNS[1..].iter().map(|c| num(c)));
    let mut from = format!("{} s", ident(&spec.input));
    if spec.kind == ModelKind::WonBackClv {
        select.push("l._id is not null as _lapsed".into());
        if let Some(lapsed) = &spec.lapsed {
            from.push_str(&format!(
                " left join (select distinct cast(customer_id as varchar) as _id from {}) l \
                 on cast(s.customer_id as varchar) = l._id",
                ident(lapsed)
            ));
        } else {
            // No table of lapsed customers: only p_alive decides.
            select.pop();
            select.push("false as _lapsed".into());
        }
    }
    let input = ctx
        .sql(&format!("select {} from {from}", select.join(", ")))
        .await?
        .create_physical_plan()
        .await?;
    let schema = scored_schema(spec.kind);
    let fitted = Arc::new(fitted);
    let partitions: Vec<Arc<dyn PartitionStream>> =
        (0..input.properties().output_partitioning().partition_count())
            .map(|partition| {
                Arc::new(Scoring {
                    input: input.clone(),
                    partition,
                    fitted: fitted.clone(),
                    schema: schema.clone(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
    let table = format!("_scored_{name}");
    let _ = ctx.deregister_table(&table);
    if crate::engine::work_area(ctx).is_some() {
        // Ballista: its executors cannot run a stream of the driver, so the driver scores
        // the customers (the input arrives from the cluster) into the work area first.
        let task = Arc::new(TaskContext::from(&ctx.state()));
        let mut batches = Vec::new();
        for partition in &partitions {
            let mut stream = partition.execute(task.clone());
            while let Some(batch) = stream.next().await {
                batches.push(batch?);
            }
        }
        crate::engine::keep_batches(ctx, &table, schema, batches).await?;
    } else {
        ctx.register_table(
            &table,
            Arc::new(StreamingTable::try_new(schema, partitions)?),
        )?;
    }
    match spec.kind {
        ModelKind::Clv => ctx.sql(&tier_sql(&ident(&table), customers)).await,
        _ => ctx.table(&table).await,
    }
}

/// One partition of a model's input, scored batch by batch as it streams past.
#[derive(Debug)]
struct Scoring {
    input: Arc<dyn ExecutionPlan>,
    partition: usize,
    fitted: Arc<Fitted>,
    schema: SchemaRef,
}

impl PartitionStream for Scoring {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, task: Arc<TaskContext>) -> SendableRecordBatchStream {
        let fitted = self.fitted.clone();
        let scored = match self.input.execute(self.partition, task) {
            Ok(stream) => stream
                .map(move |batch| {
                    let batch = batch?;
                    fitted
                        .score(&batch)
                        .map_err(|e| DataFusionError::Execution(format!("scoring: {e}")))
                })
                .boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), scored))
    }
}

/// What a model's diagnostics can say only once its table is written (won_back_clv: how
/// many customers it lists).
pub async fn complete_diagnostics(
    ctx: &SessionContext,
    name: &str,
    spec: &ModelSpec,
    diagnostics: &mut serde_json::Value,
) -> Result<(), PipelineError> {
    if spec.kind != ModelKind::WonBackClv || diagnostics.get("error").is_some() {
        return Ok(());
    }
    let t = ident(name);
    let err = |message: String| PipelineError::Model {
        model: name.to_string(),
        message,
    };
    let listed = count(ctx, &format!("select count(*) from {t}"))
        .await
        .map_err(err)?;
    if let Some(d) = diagnostics.as_object_mut() {
        d.insert("lapsed_customers".into(), listed.into());
    }
    Ok(())
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<u64, String> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|e| e.strip_backtrace().to_string())?
        .collect()
        .await
        .map_err(|e| e.strip_backtrace().to_string())?;
    Ok(crate::engine::count::single_count(&batches))
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
