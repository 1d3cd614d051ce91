//! The one place a DataFusion session is created, plus the helpers every stage uses to
//! plan SQL with bound parameters and to keep a result for later stages.
//!
//! Keeping session creation here makes the engine a configuration choice: with the
//! `ballista` feature, `engine = "ballista-standalone"` or `"ballista://HOST:PORT"` gives a
//! Ballista session ([`ballista`]) instead, and the tables this module keeps for later
//! stages ([`materialize`], [`keep_batches`]) go to Parquet in the run's work location.

#[cfg(feature = "ballista")]
pub mod ballista;
pub mod count;
mod small_joins;

pub use count::single_count;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;

use crate::config::{Engine, Pipeline, variables::days_since_epoch};
use crate::error::PipelineError;
use crate::storage::Location;

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
/// deliveries. A query operator that computes for seconds without yielding (a large
/// cross join) then cannot starve the control side: a stop signal is still heard, the
/// grace period still ends on time, leases are still renewed.
pub fn query_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name("winback-query")
            .enable_all();
        // Ballista encodes and decodes plans recursively: deep pipelines overflow the
        // default 2 MiB stacks (its own binaries use 32 MiB too).
        #[cfg(feature = "ballista")]
        builder.thread_stack_size(32 << 20);
        builder.build().expect("building the query runtime")
    })
}

/// Tuning for one machine: all cores, a memory cap for the whole run (see `memory_cap`);
/// and where the SQL stages run.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub target_partitions: Option<usize>,
    pub memory_limit_bytes: Option<usize>,
    /// `local` (the default) or a Ballista engine.
    pub engine: Engine,
    /// Where a Ballista session keeps intermediate tables (default: a temporary folder).
    pub work_location: Option<String>,
}

/// Where a Ballista session keeps the tables that the local engine holds in memory: every
/// one is Parquet there (Ballista cannot read in-memory tables). Kept in the session's
/// config; a temporary folder is removed with the session.
pub struct WorkArea {
    pub location: Location,
    pub temp: Option<tempfile::TempDir>,
}

/// The session's work area: `Some` for a Ballista session only.
pub fn work_area(ctx: &SessionContext) -> Option<Arc<WorkArea>> {
    ctx.state().config().get_extension::<WorkArea>()
}

impl EngineOptions {
    /// These options with the pipeline file's settings where the command line gave none.
    pub fn for_pipeline(&self, pipeline: &Pipeline) -> EngineOptions {
        EngineOptions {
            memory_limit_bytes: self
                .memory_limit_bytes
                .or(pipeline.memory_limit_mib.map(|m| m << 20)),
            // `--engine` is applied to the pipeline when it is loaded.
            engine: pipeline.engine.clone(),
            work_location: pipeline.work_location.clone(),
            ..self.clone()
        }
    }
}

/// Create the session every table of a run is registered in.
pub async fn new_session(opts: &EngineOptions) -> Result<SessionContext, PipelineError> {
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
    // Spill files go to this process's own folder (see `spill`), whatever the cap.
    let disk = DiskManagerBuilder::default()
        .with_mode(DiskManagerMode::Directories(vec![crate::spill::folder()]));
    let mut runtime = RuntimeEnvBuilder::new().with_disk_manager_builder(disk);
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
    if opts.engine.is_ballista() {
        return ballista_session(config, runtime, opts).await;
    }
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    if let Some(pool) = opts.memory_limit_bytes.map(crate::memory_cap::pool_bytes) {
        // Joins against a small side hash it instead of sorting both sides.
        let mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> =
            vec![Arc::new(small_joins::HashSmallJoins {
                max_rows: SMALL_JOIN_ROWS,
                max_bytes: pool / 8,
            })];
        rules.extend(PhysicalOptimizer::new().rules);
        state = state.with_physical_optimizer_rules(rules);
    }
    let ctx = SessionContext::new_with_state(state.build());
    crate::functions::register(&ctx);
    Ok(ctx)
}

/// Under a cap, the most rows a join side may have to be hashed rather than sorted.
const SMALL_JOIN_ROWS: usize = 4_000_000;

#[cfg(feature = "ballista")]
async fn ballista_session(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    opts: &EngineOptions,
) -> Result<SessionContext, PipelineError> {
    ballista::session(config, runtime, opts).await
}

#[cfg(not(feature = "ballista"))]
async fn ballista_session(
    _: SessionConfig,
    _: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    opts: &EngineOptions,
) -> Result<SessionContext, PipelineError> {
    Err(PipelineError::Config(crate::error::ConfigError::Many(
        vec![format!(
            "engine = \"{}\": {}",
            opts.engine,
            crate::config::engine::NOT_BUILT
        )],
    )))
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
    if let Some(area) = work_area(ctx) {
        let dir = area.location.child(&unique_dir(name));
        return crate::output::spill_and_read_back(ctx, name, df, &dir)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)));
    }
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

/// Register `batches` (of `schema`) as the table `name`, replacing any table of that name:
/// in memory, or as Parquet in a Ballista session's work area.
pub async fn keep_batches(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(), DataFusionError> {
    let Some(area) = work_area(ctx) else {
        let table = MemTable::try_new(schema, vec![batches])?;
        ctx.deregister_table(name)?;
        ctx.register_table(name, Arc::new(table))?;
        return Ok(());
    };
    let mut bytes = Vec::new();
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(&mut bytes, schema.clone(), None)?;
    for batch in &batches {
        writer.write(batch)?;
    }
    writer.close()?;
    let dir = area.location.child(&unique_dir(name));
    dir.put("part-0.parquet", bytes)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    ctx.deregister_table(name)?;
    ctx.register_parquet(name, dir.url.as_str(), ParquetReadOptions::default())
        .await
}

/// A fresh folder name for a table in the work area (a name can be kept more than once).
fn unique_dir(name: &str) -> String {
    format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Remove what a Ballista session kept in a shared work location (a temporary folder goes
/// with the session). Failures are logged: a leftover folder is no failed run.
pub async fn clean_work_area(ctx: &SessionContext) {
    if let Some(area) = work_area(ctx).filter(|a| a.temp.is_none())
        && let Err(e) = area.location.delete_all().await
    {
        tracing::warn!(error = %e, "cannot remove the run's work tables");
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
