//! `winback explain STAGE`: the SQL a stage runs, the tables it reads and its plans.

use datafusion::physical_plan::displayable;

use crate::cli::ExplainArgs;
use crate::config;
use crate::engine::{self, EngineOptions, Params};
use crate::error::{ConfigError, EXIT_OK};
use crate::run::today;
use crate::source;
use crate::stage::{self, graph::Graph, plan};

pub async fn explain(args: ExplainArgs) -> anyhow::Result<i32> {
    let opts = super::run::load_options(&args.pipeline, None);
    let pipeline = config::load(&args.pipeline.pipeline, &opts)?;
    let as_of = args.as_of.unwrap_or_else(|| today(&pipeline));
    let ctx = engine::new_session(&EngineOptions::default())?;
    let params = Params::for_run(&pipeline, as_of);
    let sources = source::register_all(&ctx, &pipeline, &params).await?;
    if let Some(s) = sources.iter().find(|s| s.report.name == args.stage) {
        println!("-- source '{}' from {}", s.report.name, s.report.url);
        println!(
            "-- typed rows and the reason a row is rejected:\n{}",
            s.checked_sql
        );
        return Ok(EXIT_OK);
    }
    let (stages, problems) = stage::load_pipeline(&ctx, &pipeline);
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
    }
    let external = crate::run::external_tables(&pipeline);
    crate::history_table::register(&ctx, None)?;
    let mut graph = Graph::build(stages, &external).map_err(ConfigError::Many)?;
    graph
        .select(std::slice::from_ref(&args.stage))
        .map_err(|e| ConfigError::Many(vec![e]))?;
    let target = graph
        .order
        .pop()
        .expect("select keeps the stage itself, last");
    let problems = plan::plan_all(&ctx, &graph, &pipeline.stages, &params).await;
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
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
    let physical = df.create_physical_plan().await?;
    println!(
        "\n-- physical plan:\n{}",
        displayable(physical.as_ref()).indent(true)
    );
    Ok(EXIT_OK)
}
