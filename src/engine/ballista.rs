//! Ballista sessions (`engine = "ballista-standalone"` or `"ballista://HOST:PORT"`), and
//! what winback's own scheduler and executor (`winback cluster`) share with them: winback's
//! SQL functions, and object stores built from each session's `s3.*` settings.
//!
//! The driver (this process) plans, runs the models and campaigns and keeps every table
//! the local engine would hold in memory as Parquet in the work area; the scheduler plans
//! the distributed stages (it lists files, so it reads storage too) and executors run them.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::object_store::{
    S3Options, runtime_env_with_s3_support, session_config_with_s3_support,
    session_state_with_s3_support,
};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{FunctionRegistry, SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use tokio::sync::OnceCell;

use super::{EngineOptions, WorkArea, query_runtime};
use crate::config::Engine;
use crate::error::PipelineError;
use crate::storage;

fn internal(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Internal(e.to_string())
}

/// A Ballista session for `opts.engine`, with `config` (winback's settings) and `runtime`
/// (this process's memory pool and object stores) on the driver side.
pub async fn session(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    opts: &EngineOptions,
) -> Result<SessionContext, PipelineError> {
    let area = work_area(opts.work_location.as_deref())?;
    let work_url = area.location.url.to_string();
    let mut config = config
        .upgrade_for_ballista()
        .with_option_extension(S3Options::default())
        .with_extension(Arc::new(area));
    for (key, value) in s3_settings().into_iter().chain(planner_settings()) {
        config.options_mut().set(key, &value).map_err(internal)?;
    }
    let scheduler = match &opts.engine {
        Engine::BallistaRemote { host, port } => {
            let url = format!("http://{host}:{port}");
            reachable(&url, &opts.engine).await?;
            url
        }
        _ => standalone(opts.target_partitions).await?,
    };
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build()
        .upgrade_for_ballista(scheduler)
        .map_err(internal)?;
    let ctx = SessionContext::new_with_state(state);
    // After the upgrade, which replaces the function lists.
    crate::functions::register(&ctx);
    storage::register(&ctx, &work_url)?;
    tracing::info!(engine = %opts.engine, work = %storage::redacted(&url::Url::parse(&work_url).map_err(internal)?), "Ballista session");
    Ok(ctx)
}

/// The run's own folder below `work_location`, or a temporary local folder.
fn work_area(work_location: Option<&str>) -> Result<WorkArea, PipelineError> {
    Ok(match work_location {
        Some(w) => {
            let run = uuid::Uuid::new_v4().simple().to_string();
            WorkArea {
                location: storage::locate(w)?.child(&format!("run-{}", &run[..12])),
                temp: None,
            }
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix(&crate::spill::work_prefix())
                .tempdir()
                .map_err(|e| internal(format!("cannot create a work folder: {e}")))?;
            WorkArea {
                location: storage::locate(&temp.path().to_string_lossy())?,
                temp: Some(temp),
            }
        }
    })
}

/// This process's S3 settings (the `AWS_*` variables winback's own stores read) as the
/// session's `s3.*` options: they travel with every query, so the scheduler and the
/// executors reach the same endpoint with the same credentials.
fn s3_settings() -> Vec<(&'static str, String)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut out = Vec::new();
    if let Some(endpoint) = env("AWS_ENDPOINT_URL").or_else(|| env("AWS_ENDPOINT")) {
        if endpoint.starts_with("http://") {
            out.push(("s3.allow_http", "true".to_string()));
        }
        out.push(("s3.endpoint", endpoint));
    }
    let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    out.push(("s3.region", region.unwrap_or_else(|| "us-east-1".into())));
    if let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        out.push(("s3.access_key_id", key));
        out.push(("s3.secret_access_key", secret));
        if let Some(token) = env("AWS_SESSION_TOKEN") {
            out.push(("s3.session_token", token));
        }
    }
    out
}

/// Ballista 55's adaptive planner loops forever on a stage whose input it has found empty
/// (its propagate-empty rule puts the same empty exchange back after every re-plan, as
/// for the duplicate check of a source without repeated rows): that rule is off.
fn planner_settings() -> Vec<(&'static str, String)> {
    vec![("ballista.planner.adaptive.enabled", "false".into())]
}

/// Fail early, and clearly, when no scheduler answers at `url`.
async fn reachable(url: &str, engine: &Engine) -> Result<(), PipelineError> {
    let connect = SchedulerGrpcClient::connect(url.to_string());
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(engine, &e.to_string())),
        Err(_) => Err(unreachable(engine, "no answer in 10 s")),
    }
}

fn unreachable(engine: &Engine, why: &str) -> PipelineError {
    PipelineError::Storage {
        url: engine.to_string(),
        message: format!(
            "cannot reach the Ballista scheduler ({why}); start one with `winback cluster scheduler` and executors with `winback cluster executor`"
        ),
        blame: crate::error::Blame::External,
    }
}

/// An executor's functions (it decodes plans that call them): DataFusion's, with the
/// nested ones (`range`, `array_*`: Ballista 55's default registry lacks them, though its
/// sessions plan with them), and winback's.
pub fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for f in ballista_core::extension::ballista_scalar_functions() {
        registry.scalar_functions.insert(f.name().to_string(), f);
    }
    for udf in crate::functions::scalar_udfs() {
        registry
            .scalar_functions
            .insert(udf.name().to_string(), Arc::new(udf));
    }
    for udaf in [
        crate::functions::gap_stats::udaf(),
        crate::functions::money_sum::udaf(),
    ] {
        registry
            .aggregate_functions
            .insert(udaf.name().to_string(), Arc::new(udaf));
    }
    registry
}

/// The session a scheduler plans a query in: Ballista's, with S3 from the query's `s3.*`
/// settings and winback's functions (registered one by one: replacing the function list
/// would drop the built-ins).
pub fn scheduler_state(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let mut state = session_state_with_s3_support(config)?;
    for udf in crate::functions::scalar_udfs() {
        state.register_udf(Arc::new(udf))?;
    }
    state.register_udaf(Arc::new(crate::functions::gap_stats::udaf()))?;
    state.register_udaf(Arc::new(crate::functions::money_sum::udaf()))?;
    Ok(state)
}

/// The config a scheduler or executor starts each session from (knows `s3.*`).
pub fn cluster_config() -> SessionConfig {
    session_config_with_s3_support()
}

/// An executor's runtime for a session: object stores from the session's `s3.*` settings.
pub fn executor_runtime(config: &SessionConfig) -> datafusion::error::Result<Arc<RuntimeEnv>> {
    runtime_env_with_s3_support(config)
}

/// The scheduler URL of this process's own scheduler and executor, started on first use
/// on the query runtime (so they outlive the task that started them) and shared by every
/// `ballista-standalone` session of the process.
async fn standalone(threads: Option<usize>) -> Result<String, PipelineError> {
    static URL: OnceCell<String> = OnceCell::const_new();
    URL.get_or_try_init(|| async move {
        let vcores =
            threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        query_runtime()
            .spawn(start_standalone(vcores))
            .await
            .map_err(internal)?
    })
    .await
    .cloned()
}

async fn start_standalone(vcores: usize) -> Result<String, PipelineError> {
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
        Arc::new(scheduler_state),
        Arc::new(cluster_config),
        BallistaCodec::default(),
    )
    .await
    .map_err(internal)?;
    let url = format!("http://localhost:{}", addr.port());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let scheduler = loop {
        match SchedulerGrpcClient::connect(url.clone()).await {
            Ok(client) => break client,
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(internal(format!(
                    "the in-process Ballista scheduler did not start: {e}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    ballista_executor::new_standalone_executor_from_builder(
        scheduler,
        vcores,
        Arc::new(|| cluster_config().upgrade_for_ballista()),
        Arc::new(executor_runtime),
        BallistaCodec::default(),
        function_registry(),
    )
    .await
    .map_err(internal)?;
    tracing::info!(scheduler = %url, vcores, "in-process Ballista scheduler and executor started");
    Ok(url)
}
