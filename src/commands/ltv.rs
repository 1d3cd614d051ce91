//! `winback ltv backtest`: fit BG/NBD on purchases before a calibration end date and
//! compare its predicted repeat purchases with what customers actually did in the
//! holdout period: in total and by calibration frequency (the classic validation table).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::scalar::ScalarValue;

use crate::cli::BacktestArgs;
use crate::config::{FileFormat, LoadOptions, variables::days_since_epoch};
use crate::engine::{EngineOptions, sql_frame};
use crate::error::{EXIT_OK, PipelineError};
use crate::models::{FitOptions, fit_bgnbd};
use crate::output::OutputWriter;
use crate::pipeline::{RunOptions, run_in_session};
use crate::stage::model::read_summary;
use crate::storage;

/// One line of the validation table.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestRow {
    pub frequency: String,
    pub customers: u64,
    pub predicted: f64,
    pub actual: f64,
}

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

fn invalid(message: String) -> PipelineError {
    PipelineError::Model {
        model: "backtest".into(),
        message,
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
    let summary = read_summary(&cal.ctx, "customer_summary", None)
        .await
        .map_err(invalid)?;
    let fit = fit_bgnbd(&summary.observations(), &FitOptions::default())
        .map_err(|e| invalid(e.to_string()))?;
    let (hold, _) = run_in_session(&options(args, args.holdout_end, "purchase_days")).await?;
    let mut params = hold.params.clone();
    params.0.insert(
        "calibration_end".into(),
        ScalarValue::Date32(Some(days_since_epoch(args.calibration_end))),
    );
    let batches = sql_frame(
        &hold.ctx,
        "select customer_id, count(*) as n from purchase_days where order_date >= $calibration_end group by customer_id",
        &params,
    )
    .await
    .map_err(|e| invalid(e.to_string()))?
    .collect()
    .await
    .map_err(|e| invalid(e.to_string()))?;
    let mut actual: HashMap<String, f64> = HashMap::new();
    for b in &batches {
        let ids = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
            .map_err(|e| invalid(e.to_string()))?;
        let ids = ids
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        let n = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("count is Int64");
        for i in 0..b.num_rows() {
            actual.insert(ids.value(i).to_string(), n.value(i) as f64);
        }
    }
    let horizon = (args.holdout_end - args.calibration_end).num_days() as f64;
    let mut by_x: Vec<(u64, f64, f64)> = vec![(0, 0.0, 0.0); 8];
    for i in 0..summary.x.len() {
        let predicted = fit
            .params
            .conditional_expected_purchases(horizon, summary.x[i], summary.t_x[i], summary.t[i])
            .map_err(|e| invalid(e.to_string()))?;
        let slot = &mut by_x[(summary.x[i] as usize).min(7)];
        slot.0 += 1;
        slot.1 += predicted;
        slot.2 += actual.get(summary.ids.value(i)).copied().unwrap_or(0.0);
    }
    let mut rows: Vec<BacktestRow> = by_x
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(x, s)| BacktestRow {
            frequency: if x == 7 { "7+".into() } else { x.to_string() },
            customers: s.0,
            predicted: s.1 / s.0 as f64,
            actual: s.2 / s.0 as f64,
        })
        .collect();
    let (n, p, a) = by_x
        .iter()
        .fold((0, 0.0, 0.0), |t, s| (t.0 + s.0, t.1 + s.1, t.2 + s.2));
    rows.push(BacktestRow {
        frequency: "total".into(),
        customers: n,
        predicted: p,
        actual: a,
    });
    Ok(rows)
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
        let schema = Arc::new(Schema::new(vec![
            Field::new("frequency", DataType::Utf8, false),
            Field::new("customers", DataType::Int64, false),
            Field::new("predicted", DataType::Float64, false),
            Field::new("actual", DataType::Float64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.frequency.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.customers as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.predicted),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.actual),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols)?;
        let ctx = crate::engine::new_session(&EngineOptions::default()).await?;
        ctx.register_table(
            "ltv_backtest",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;
        let root = storage::register(&ctx, url)?;
        let run_id = format!("backtest-{}", uuid::Uuid::new_v4().simple());
        let writer = OutputWriter::new(root, args.holdout_end, &run_id, "ltv_backtest");
        let written = writer
            .stage(&ctx, "ltv_backtest", FileFormat::Parquet)
            .await?;
        writer.commit(std::slice::from_ref(&written), None).await?;
        println!("written to {}", written.path);
    }
    Ok(EXIT_OK)
}
