//! `winback ltv backtest`: fit BG/NBD on purchases before a calibration end date and
//! compare its predicted repeat purchases with what customers actually did in the
//! holdout period: in total and by calibration frequency (the classic validation table,
//! `models::backtest`; the sessions are read by `stage::backtest`).

use crate::cli::BacktestArgs;
use crate::config::LoadOptions;
use crate::error::{EXIT_OK, PipelineError};
use crate::models::BacktestRow;
use crate::pipeline::{RunOptions, run_in_session};
use crate::stage::backtest::{Calibration, holdout_purchases, invalid, write_table};

fn options(args: &BacktestArgs, as_of: chrono::NaiveDate, stage: &str) -> RunOptions {
    RunOptions {
        pipeline_file: args.pipeline.pipeline.clone(),
        as_of: Some(as_of),
        load: LoadOptions {
            set: args.pipeline.overrides(),
            inputs: args.pipeline.inputs.clone(),
            output: None,
        },
        select: vec![stage.to_string()],
        ..RunOptions::new(&args.pipeline.pipeline)
    }
}

/// Fit on the calibration period and compare with the holdout period.
pub async fn backtest_rows(args: &BacktestArgs) -> Result<Vec<BacktestRow>, PipelineError> {
    if args.holdout_end <= args.calibration_end {
        return Err(invalid(
            "--holdout-end must be after --calibration-end".into(),
        ));
    }
    let (cal, _) = run_in_session(&options(args, args.calibration_end, "customer_summary")).await?;
    let calibration = Calibration::fit(&cal.ctx).await?;
    let (hold, _) = run_in_session(&options(args, args.holdout_end, "purchase_days")).await?;
    let actual = holdout_purchases(&hold.ctx, &hold.params, args.calibration_end).await?;
    let horizon = (args.holdout_end - args.calibration_end).num_days() as f64;
    calibration.compare(horizon, &actual)
}

pub async fn backtest(args: BacktestArgs) -> anyhow::Result<i32> {
    // On the query runtime, like every run (its stacks fit Ballista's plan encoding).
    let rows = {
        let args = args.clone();
        crate::engine::query_runtime()
            .spawn(async move { backtest_rows(&args).await })
            .await
            .map_err(|e| PipelineError::Internal(format!("backtest task: {e}")))??
    };
    println!(
        "BG/NBD backtest: calibration before {}, holdout {} to {} (exclusive)",
        args.calibration_end, args.calibration_end, args.holdout_end
    );
    println!(
        "{:>10} {:>10} {:>16} {:>16}",
        "frequency", "customers", "predicted", "actual"
    );
    for r in &rows {
        let note = if r.frequency == "total" {
            " (sums)"
        } else {
            " (per customer)"
        };
        println!(
            "{:>10} {:>10} {:>16.3} {:>16.3}{note}",
            r.frequency, r.customers, r.predicted, r.actual
        );
    }
    if let Some(url) = &args.output {
        let path = write_table(&rows, url, args.holdout_end).await?;
        println!("written to {path}");
    }
    Ok(EXIT_OK)
}
