//! `winback explain STAGE`: the SQL a stage runs, the tables it reads and its plans.

use datafusion::physical_plan::{display::DisplayableExecutionPlan, displayable};

use crate::cli::ExplainArgs;
use crate::config;
use crate::engine::{EngineOptions, Params};
use crate::error::{ConfigError, EXIT_OK};
use crate::pipeline::{Mode, RunOptions, Session};
use crate::stage::{self, graph::Graph, plan};

pub async fn explain(args: ExplainArgs) -> anyhow::Result<i32> {
    let mut opts = RunOptions::new(&args.pipeline.pipeline);
    opts.load = super::run::load_options(&args.pipeline, None);
    opts.as_of = args.as_of;
    opts.engine = EngineOptions {
        target_partitions: args.threads,
        memory_limit_bytes: None,
        ..EngineOptions::default()
    };
    // Plans (and --analyze) are shown for this process's engine.
    let mut session = Session::open(&opts, Mode::Check).await?;
    let sources = session.register_sources().await?;
    if let Some(s) = sources.iter().find(|s| s.report.name == args.stage) {
        println!("-- source '{}' from {}", s.report.name, s.report.url);
        println!(
            "-- typed rows and the reason a row is rejected:\n{}",
            s.checked_sql
        );
        return Ok(EXIT_OK);
    }
    let mut graph = session.graph(std::slice::from_ref(&args.stage))?;
    let Session {
        pipeline,
        ctx,
        params,
        ..
    } = session;
    let target = graph
        .order
        .pop()
        .expect("select keeps the stage itself, last");
    let problems = plan::plan_all(&ctx, &graph, &pipeline.stages, &params).await;
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
    }
    if let stage::StageKind::Model(spec) = &target.kind {
        explain_model(&target, spec);
        return Ok(EXIT_OK);
    }
    let df = plan::plan_one(&ctx, &target, &params)
        .await
        .map_err(|e| ConfigError::Many(vec![e]))?;
    println!("-- stage '{}' ({})", target.name, target.file.display());
    println!("-- reads: {}", target.reads.join(", "));
    let mut bound: Vec<_> = params
        .0
        .iter()
        .map(|(k, v)| format!("${k} = {v}"))
        .collect();
    bound.sort();
    println!("-- parameters: {}", bound.join(", "));
    println!("{}", target.sql.trim_end());
    println!("\n-- output columns:");
    for f in df.schema().fields() {
        println!("--   {} {}", f.name(), f.data_type());
    }
    let optimized = df.clone().into_optimized_plan()?;
    println!("\n-- logical plan:\n{}", optimized.display_indent());
    if args.analyze {
        return analyze(&ctx, &graph, &pipeline, &params, &target).await;
    }
    let physical = df.create_physical_plan().await?;
    println!(
        "\n-- physical plan:\n{}",
        displayable(physical.as_ref()).indent(true)
    );
    Ok(EXIT_OK)
}

/// Run the stages `target` reads, then `target` itself, and print its physical plan with
/// each operator's metrics (output rows, compute time, memory).
async fn analyze(
    ctx: &datafusion::prelude::SessionContext,
    upstream: &Graph,
    pipeline: &config::Pipeline,
    params: &Params,
    target: &stage::Stage,
) -> anyhow::Result<i32> {
    let progress = crate::progress::Progress::new();
    let life = stage::executor::Lifecycle::default();
    stage::executor::run_all(ctx, upstream, &pipeline.stages, params, &progress, &life).await?;
    let df = plan::plan_one(ctx, target, params)
        .await
        .map_err(|e| ConfigError::Many(vec![e]))?;
    let task_ctx = std::sync::Arc::new(df.task_ctx());
    let physical = df.create_physical_plan().await?;
    let started = std::time::Instant::now();
    let rows: usize = datafusion::physical_plan::collect(physical.clone(), task_ctx)
        .await?
        .iter()
        .map(|b| b.num_rows())
        .sum();
    println!(
        "\n-- ran in {:.2}s, {rows} rows; physical plan with metrics:\n{}",
        started.elapsed().as_secs_f64(),
        DisplayableExecutionPlan::with_metrics(physical.as_ref()).indent(true)
    );
    Ok(EXIT_OK)
}

/// A model stage has no SQL: show what it reads, its parameters and its output columns.
fn explain_model(target: &stage::Stage, spec: &config::ModelSpec) {
    println!(
        "-- model '{}' ([models.{}] in {}), fitted in Rust",
        target.name,
        target.name,
        target.file.display()
    );
    println!("-- type: {:?}", spec.kind);
    println!("-- reads: {}", target.reads.join(", "));
    println!(
        "-- input columns: {}",
        stage::model_summary::SUMMARY_COLUMNS.join(", ")
    );
    println!("-- parameters:");
    println!("--   penalizer = {}", spec.fit.penalizer);
    println!("--   required = {}", spec.required);
    println!("--   horizon_days = {}", spec.clv.horizon_days);
    println!(
        "--   annual_discount_rate = {}",
        spec.clv.annual_discount_rate
    );
    println!("--   margin = {}", spec.clv.margin);
    if let (Some(m), Some(l)) = (&spec.model, &spec.lapsed) {
        println!("--   model = {m} (its fit is reused)");
        println!("--   lapsed = {l}");
        println!("--   p_alive_below = {}", spec.p_alive_below);
    }
    println!("\n-- output columns:");
    for f in stage::model_tables::output_schema(spec.kind).fields() {
        println!("--   {} {}", f.name(), f.data_type());
    }
}
