//! The backtest's session side (`winback ltv backtest`): fit BG/NBD on the customer
//! summaries of a session computed to the calibration end, read what customers actually
//! bought in a session computed to the holdout end, compare (`models::backtest`), and
//! write the validation table as the output table `ltv_backtest`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use super::model::read_summary;
use super::model_summary::Summary;
use crate::config::{FileFormat, variables::days_since_epoch};
use crate::engine::{EngineOptions, Params, sql_frame};
use crate::error::PipelineError;
use crate::models::{BacktestRow, BgNbdParams, FitOptions, Observation, backtest_table, fit_bgnbd};
use crate::output::OutputWriter;
use crate::storage;

/// A backtest error: what was wrong with its input or its computation.
pub fn invalid(message: String) -> PipelineError {
    PipelineError::Model {
        model: "backtest".into(),
        message,
    }
}

/// The calibration period: every customer's summary and the BG/NBD fit on them.
pub struct Calibration {
    summary: Summary,
    params: BgNbdParams,
}

impl Calibration {
    /// Reads `customer_summary` from a session computed to the calibration end and fits
    /// BG/NBD on it.
    pub async fn fit(ctx: &SessionContext) -> Result<Calibration, PipelineError> {
        let summary = read_summary(ctx, "customer_summary", None)
            .await
            .map_err(invalid)?;
        let fit = fit_bgnbd(&summary.observations(), &FitOptions::default())
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Calibration {
            summary,
            params: fit.params,
        })
    }

    /// The validation table over a holdout of `horizon` days, given the purchase days each
    /// customer had in it (`holdout_purchases`; a customer not there bought nothing).
    pub fn compare(
        &self,
        horizon: f64,
        actual: &HashMap<String, f64>,
    ) -> Result<Vec<BacktestRow>, PipelineError> {
        let s = &self.summary;
        let customers = (0..s.x.len()).map(|i| {
            let seen = actual.get(s.ids.value(i)).copied().unwrap_or(0.0);
            (Observation::new(s.x[i], s.t_x[i], s.t[i]), seen)
        });
        backtest_table(&self.params, horizon, customers).map_err(|e| invalid(e.to_string()))
    }
}

/// Purchase days per customer id from `calibration_end` on, in a session computed to the
/// holdout end (`params` are that session's).
pub async fn holdout_purchases(
    ctx: &SessionContext,
    params: &Params,
    calibration_end: NaiveDate,
) -> Result<HashMap<String, f64>, PipelineError> {
    let mut params = params.clone();
    params.0.insert(
        "calibration_end".into(),
        ScalarValue::Date32(Some(days_since_epoch(calibration_end))),
    );
    let batches = sql_frame(
        ctx,
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
    Ok(actual)
}

/// Writes `rows` as the table `ltv_backtest` of `as_of` under the output location `url`
/// and commits it; returns where it was written.
pub async fn write_table(
    rows: &[BacktestRow],
    url: &str,
    as_of: NaiveDate,
) -> anyhow::Result<String> {
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
    let writer = OutputWriter::new(root, as_of, &run_id, "ltv_backtest");
    let written = writer
        .write_to_staging(&ctx, "ltv_backtest", FileFormat::Parquet)
        .await?;
    writer.commit(std::slice::from_ref(&written), None).await?;
    Ok(written.path)
}
