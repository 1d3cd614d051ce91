//! `winback demo`: generate synthetic shop data and run the default pipeline on it.

use std::time::Instant;

use chrono::NaiveDate;

use super::run::{Ended, run_once};
use super::schedule::cli_runner;
use crate::cli::{DemoArgs, PipelineArgs};
use crate::demo::{DemoOptions, generate};
use crate::engine::EngineOptions;
use crate::error::EXIT_OK;
use crate::manifest::Manifest;

/// The first night, this many days before `as_of`: more than the pipeline's
/// `attribution_days` (30) and a day, so its windows are complete on the second night.
const FIRST_NIGHT_DAYS_BEFORE: u64 = 35;

pub async fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    let as_of = args
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    generate_data(&args, as_of).await?;
    if args.no_run {
        return Ok(EXIT_OK);
    }
    let pipeline = demo_pipeline(&args);
    // The same path as `winback run`: locked, recorded in the run history.
    let mut runner = cli_runner(&pipeline, Some(args.output.clone()), &args.state_dir);
    runner.options.engine = EngineOptions {
        target_partitions: args.threads,
        memory_limit_bytes: None,
        ..EngineOptions::default()
    };
    // Two nights, five weeks apart: the first sends the campaigns; then some customers come
    // back within the attribution window (30 days; the messaged ones more often than the
    // holdout); the second, after the first night's windows have all ended, shows the
    // results.
    let first = as_of - chrono::Days::new(FIRST_NIGHT_DAYS_BEFORE);
    // No calls recorded before the first night's lists.
    let outcomes = args.dir.join("call_outcomes");
    if outcomes.exists() {
        std::fs::remove_dir_all(&outcomes)?;
    }
    std::fs::create_dir_all(&outcomes)?;
    let night = |d| run_once(&runner, &pipeline, &args.state_dir, d, 30, 60);
    let manifest = match night(first).await? {
        Ended::Done { manifest, .. } => manifest,
        Ended::Failed { message, exit_code } => {
            eprintln!("error: {message}");
            return Ok(exit_code);
        }
    };
    if let Some(m) = &manifest {
        let sent: u64 = m
            .campaigns
            .iter()
            .flat_map(|c| &c.deliveries)
            .map(|d| d.delivered)
            .sum();
        println!("night 1, as_of {first}: {sent} win-back messages sent");
    }
    let state = crate::state::State::open(&args.state_dir)?;
    let back = crate::demo::comebacks::simulate(&state, &args.dir, first, as_of, args.seed)?;
    println!("between the nights {back} messaged or held-out customers bought again");
    let reached = crate::demo::call_outcomes::simulate(&state, &args.dir, first, as_of, args.seed)?;
    println!("between the nights the team reached {reached} customers of the call lists");
    // A model backtest for the report: fitted on the purchases before 180 days ago, checked
    // against the 180 days since.
    let backtest = crate::cli::BacktestArgs {
        pipeline: pipeline.clone(),
        calibration_end: as_of - chrono::Days::new(180),
        holdout_end: as_of,
        output: Some(args.output.clone()),
    };
    if let Err(e) = super::ltv::backtest(backtest).await {
        eprintln!("the model backtest could not run: {e:#}");
    }
    let manifest = match night(as_of).await? {
        Ended::Done { manifest, .. } => manifest,
        Ended::Failed { message, exit_code } => {
            eprintln!("error: {message}");
            return Ok(exit_code);
        }
    };
    let Some(manifest) = manifest else {
        anyhow::bail!("the demo run left no manifest");
    };
    println!("night 2, as_of {as_of}:");
    super::summary::print(&manifest);
    print_outputs(&args, as_of, &manifest);
    Ok(EXIT_OK)
}

/// Writes the synthetic shop data up to `as_of` under `args.dir` and says what it wrote.
async fn generate_data(args: &DemoArgs, as_of: NaiveDate) -> anyhow::Result<()> {
    let started = Instant::now();
    let opts = DemoOptions {
        dir: args.dir.clone(),
        rows: args.rows,
        end: as_of,
        seed: args.seed,
    };
    let report = tokio::task::spawn_blocking(move || generate(&opts)).await??;
    println!(
        "generated {} purchase rows of {} customers ({} complaints) in {} file(s) under {} in {:.1}s",
        report.purchase_rows,
        report.customers,
        report.complaint_rows,
        report.files,
        args.dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The demo's pipeline with its four inputs read from the generated data.
fn demo_pipeline(args: &DemoArgs) -> PipelineArgs {
    let dir = |sub: &str| args.dir.join(sub).to_string_lossy().into_owned();
    PipelineArgs {
        pipeline: args.pipeline.clone(),
        inputs: [
            "purchases",
            "customers",
            "complaints",
            "feedback",
            "call_outcomes",
        ]
        .iter()
        .map(|s| (s.to_string(), dir(s)))
        .collect(),
        set: vec![],
        engine: args.engine.clone(),
    }
}

/// Where the second night's outputs, messages and report are, and how to look at them.
fn print_outputs(args: &DemoArgs, as_of: NaiveDate, manifest: &Manifest) {
    println!(
        "\nOutputs: {}/<table>/as_of={}/ (Parquet; try: duckdb -c \"select segment, count(*) from read_parquet('{}/rfm/*/*.parquet', hive_partitioning=true) group by 1\")",
        args.output, as_of, args.output
    );
    if manifest.campaigns.is_some() {
        println!(
            "Messages: {}/_outbox/as_of={}/ (JSONL per channel and campaign, for a marketing tool; calls/<campaign>.csv: the call list for the team); the ledger: winback sends",
            args.output, as_of
        );
    }
    if let Some(r) = &manifest.report {
        println!("Report (open it in any browser): {r}");
    }
}
