//! The send ledger as a table SQL stages can read: `sends`, one row per (campaign, step,
//! customer, channel) of the runs before this one. Addresses are left out: SQL needs who
//! and what, never where.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;

use crate::config::variables::days_since_epoch;
use crate::error::PipelineError;
use crate::state::{LedgerRow, State};

pub const TABLE: &str = "sends";

fn schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let text = |n: &str, null| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        text("idempotency_key", false),
        text("campaign", false),
        Field::new("step", DataType::Int64, false),
        text("customer_id", false),
        text("channel", false),
        text("medium", false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("entry_date", DataType::Date32, false),
        text("state", false),
        text("reason", true),
        Field::new("attempts", DataType::Int64, false),
        text("provider_message_id", true),
        Field::new("cost", DataType::Float64, false),
        Field::new("created_at", ts(), false),
        Field::new("sent_at", ts(), true),
        text("segment", true),
        text("treatment", true),
        Field::new("value", DataType::Float64, true),
        text("provider_status", true),
        text("would_be_suppressed", true),
    ]))
}

fn batch(rows: &[LedgerRow]) -> RecordBatch {
    let ts = |v: Vec<Option<i64>>| {
        Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) as ArrayRef
    };
    let text = |f: &dyn Fn(&LedgerRow) -> &str| {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as ArrayRef
    };
    let cols: Vec<ArrayRef> = vec![
        text(&|r| &r.idempotency_key),
        text(&|r| &r.campaign),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.step as i64),
        )),
        text(&|r| &r.customer_id),
        text(&|r| &r.channel),
        text(&|r| r.medium.as_str()),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| days_since_epoch(r.as_of)),
        )),
        Arc::new(Date32Array::from_iter_values(
            rows.iter().map(|r| days_since_epoch(r.entry_date)),
        )),
        text(&|r| r.state.as_str()),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.reason.as_deref()),
        )),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.attempts as i64),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.provider_message_id.as_deref()),
        )),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.cost))),
        ts(rows
            .iter()
            .map(|r| Some(r.created_at.timestamp_micros()))
            .collect()),
        ts(rows
            .iter()
            .map(|r| r.sent_at.map(|t| t.timestamp_micros()))
            .collect()),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.tags.segment.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.tags.treatment.as_deref()),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.tags.value))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.provider_status.as_deref()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.tags.would_be_suppressed.as_deref()),
        )),
    ];
    RecordBatch::try_new(schema(), cols).expect("columns match the schema")
}

/// Register `sends` from the ledger in `state_dir`: the rows decided for an `as_of` before
/// `as_of`, so a backfill sees the ledger as it stood then (empty without a ledger).
pub async fn register(
    ctx: &SessionContext,
    state_dir: Option<&Path>,
    as_of: NaiveDate,
) -> Result<(), PipelineError> {
    let rows = State::open_existing(state_dir)
        .and_then(|s| s.map_or(Ok(Vec::new()), |s| s.all_rows()))
        .map_err(|e| PipelineError::state(&e))?;
    let rows: Vec<LedgerRow> = rows.into_iter().filter(|r| r.as_of < as_of).collect();
    crate::engine::keep_batches(ctx, TABLE, schema(), vec![batch(&rows)])
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    Ok(())
}
