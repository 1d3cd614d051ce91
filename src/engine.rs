//! The one place a DataFusion session is created, plus the helpers every stage uses to
//! plan SQL with bound parameters and to keep a result for later stages.
//!
//! Keeping session creation here makes the engine a configuration choice: a Ballista
//! `SessionContext::remote` can replace it without touching the stages.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;

use crate::config::{Pipeline, variables::days_since_epoch};
use crate::error::PipelineError;

/// Named values bound to `$name` placeholders in every statement.
#[derive(Debug, Clone, Default)]
pub struct Params(pub HashMap<String, ScalarValue>);

impl Params {
    /// `$as_of` (a date), `$as_of_ts` (midnight starting `as_of`, local time) and every
    /// pipeline variable.
    pub fn for_run(pipeline: &Pipeline, as_of: NaiveDate) -> Self {
        let mut map: HashMap<String, ScalarValue> = pipeline
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.to_scalar()))
            .collect();
        map.insert(
            "as_of".into(),
            ScalarValue::Date32(Some(days_since_epoch(as_of))),
        );
        let midnight = as_of.and_hms_opt(0, 0, 0).expect("midnight exists");
        map.insert(
            "as_of_ts".into(),
            ScalarValue::TimestampNanosecond(midnight.and_utc().timestamp_nanos_opt(), None),
        );
        Params(map)
    }
}

/// The runtime queries run on, apart from the one that handles signals, timers, locks and
/// (soon) deliveries. A query operator that computes for seconds without yielding (a large
/// cross join) then cannot starve the control side: a stop signal is still heard, the
/// grace period still ends on time, leases are still renewed.
pub fn query_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name("winback-query")
            .enable_all()
            .build()
            .expect("building the query runtime")
    })
}

/// Tuning for one machine: all cores, a memory cap for the whole run (see `memory_cap`).
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub target_partitions: Option<usize>,
    pub memory_limit_bytes: Option<usize>,
}

impl EngineOptions {
    /// These options with the pipeline file's settings where the command line gave none.
    pub fn for_pipeline(&self, pipeline: &Pipeline) -> EngineOptions {
        EngineOptions {
            memory_limit_bytes: self
                .memory_limit_bytes
                .or(pipeline.memory_limit_mib.map(|m| m << 20)),
            ..self.clone()
        }
    }
}

/// Create the session every table of a run is registered in.
pub fn new_session(opts: &EngineOptions) -> Result<SessionContext, PipelineError> {
    let partitions = opts
        .target_partitions
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_information_schema(true)
        .with_batch_size(8192);
    // Stages name their columns in lowercase; keep quoted identifiers exact.
    config.options_mut().sql_parser.enable_ident_normalization = true;
    config.options_mut().execution.parquet.pushdown_filters = false;
    // Text as plain Utf8, not Utf8View: a view array keeps every buffer it points into, so
    // memory accounting counts shared buffers again for each batch (sorts then ask for
    // gigabytes under --memory-limit-mib), and the peak is lower (1.7 vs 2.0 GiB on 10M
    // rows) at the same speed.
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    config.options_mut().sql_parser.map_string_types_to_utf8view = false;
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(cap) = opts.memory_limit_bytes {
        // Fair: operators that can spill (sorts, aggregations) share what the others leave,
        // so one large sort cannot starve the stages running beside it. The pool is part
        // of the cap; the rest is for what no pool accounts for.
        let pool = crate::memory_cap::pool_bytes(cap);
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(pool)));
        // Joins by sorting and merging, which spill, instead of hash tables, which cannot.
        config.options_mut().optimizer.prefer_hash_join = false;
        // Each sort sets memory aside for merging its spill files (10 MB by default); with
        // the sorts of sort-merge joins side by side, a small pool is not enough for all.
        let execution = &mut config.options_mut().execution;
        execution.sort_spill_reservation_bytes =
            execution.sort_spill_reservation_bytes.min(pool / 32);
        // Bounded writers: one row group at a time, each column encoded in turn.
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.allow_single_file_parallelism = false;
        parquet.maximum_buffered_record_batches_per_stream = 2;
    }
    let runtime = runtime
        .build_arc()
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    crate::functions::register(&ctx);
    Ok(ctx)
}

/// Plan `sql` with the run's parameters bound (never pasted into the text).
pub async fn sql_frame(
    ctx: &SessionContext,
    sql: &str,
    params: &Params,
) -> Result<DataFrame, DataFusionError> {
    let df = ctx.sql(sql).await?;
    df.with_param_values(ParamValues::Map(
        params
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect(),
    ))
}

/// Run `df` once and register its result as `name`, for tables read more than once.
pub async fn materialize(
    ctx: &SessionContext,
    name: &str,
    df: DataFrame,
) -> Result<u64, DataFusionError> {
    let task_ctx = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    // The physical schema is what the batches carry (the logical one can differ in nullability).
    let schema = plan.schema();
    let partitions = datafusion::physical_plan::collect_partitioned(plan, task_ctx).await?;
    let rows = partitions
        .iter()
        .flatten()
        .map(|b| b.num_rows() as u64)
        .sum();
    let table = MemTable::try_new(schema, partitions)?;
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(rows)
}

/// The number a one-number query returned (`count(*)`, the row count of a write): the
/// first value of the first column, 0 when there is none.
pub fn single_count(batches: &[RecordBatch]) -> u64 {
    let Some(column) = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| b.column(0))
    else {
        return 0;
    };
    match ScalarValue::try_from_array(column, 0) {
        Ok(ScalarValue::Int64(Some(n))) => n.max(0) as u64,
        Ok(ScalarValue::UInt64(Some(n))) => n,
        _ => 0,
    }
}

/// Wrap a DataFusion error with the table or stage it happened in.
pub fn df_err(name: &str) -> impl Fn(DataFusionError) -> PipelineError + '_ {
    move |e| PipelineError::stage(name, "", &e)
}

/// Register an empty table of `schema` as `name`, replacing any table of that name (for
/// planning stages without running them).
pub fn register_empty(
    ctx: &SessionContext,
    name: &str,
    schema: Arc<datafusion::arrow::datatypes::Schema>,
) {
    let table = MemTable::try_new(schema, vec![vec![]]).expect("an empty table fits any schema");
    let _ = ctx.deregister_table(name);
    ctx.register_table(name, Arc::new(table))
        .expect("registering a table in the default schema");
}
