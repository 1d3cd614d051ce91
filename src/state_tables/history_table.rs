//! The run history as a table SQL stages can read: `winback_runs`.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;

use crate::config::variables::days_since_epoch;
use crate::error::PipelineError;
use crate::state::{RunRecord, State};

pub const TABLE: &str = "winback_runs";

fn schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("schedule", DataType::Utf8, true),
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("fire_time", ts(), true),
        Field::new("started_at", ts(), false),
        Field::new("ended_at", ts(), true),
        Field::new("status", DataType::Utf8, false),
        Field::new("attempt", DataType::Int64, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("rows_written", DataType::Int64, false),
        Field::new("messages_sent", DataType::Int64, false),
    ]))
}

fn batch(runs: &[RunRecord]) -> RecordBatch {
    let micros = |t: &chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    let ts = |v: Vec<Option<i64>>| {
        Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) as ArrayRef
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(runs.iter().map(|r| r.id.0))),
        Arc::new(StringArray::from_iter(
            runs.iter().map(|r| r.schedule.as_deref()),
        )),
        Arc::new(StringArray::from_iter_values(
            runs.iter().map(|r| r.pipeline.as_str()),
        )),
        Arc::new(Date32Array::from_iter_values(
            runs.iter().map(|r| days_since_epoch(r.as_of)),
        )),
        ts(runs
            .iter()
            .map(|r| r.fire_time.as_ref().map(micros))
            .collect()),
        ts(runs.iter().map(|r| Some(micros(&r.started_at))).collect()),
        ts(runs
            .iter()
            .map(|r| r.ended_at.as_ref().map(micros))
            .collect()),
        Arc::new(StringArray::from_iter_values(
            runs.iter().map(|r| r.status.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            runs.iter().map(|r| r.attempt as i64),
        )),
        Arc::new(StringArray::from_iter(
            runs.iter().map(|r| r.error.as_deref()),
        )),
        Arc::new(Int64Array::from_iter_values(
            runs.iter().map(|r| r.rows_written as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            runs.iter().map(|r| r.messages_sent as i64),
        )),
    ];
    RecordBatch::try_new(schema(), cols).expect("columns match the schema")
}

/// Register `winback_runs` from the state database in `state_dir` (empty when there is none).
pub async fn register(ctx: &SessionContext, state_dir: Option<&Path>) -> Result<(), PipelineError> {
    let runs = State::open_existing(state_dir)
        .and_then(|s| s.map_or(Ok(Vec::new()), |s| s.all_runs()))
        .map_err(|e| PipelineError::state(&e))?;
    crate::engine::keep_batches(ctx, TABLE, schema(), vec![batch(&runs)])
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    Ok(())
}
