//! The suppressions winback recorded (one-click unsubscribes, provider unsubscribes, STOP
//! replies, bounces, complaints) as a table SQL stages can read and the run outputs:
//! `suppressions`. The address is masked (`j***@example.com`): SQL needs who and why.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;

use crate::error::PipelineError;
use crate::state::State;
use crate::state::suppressions::Suppression;

pub const TABLE: &str = "suppressions";

fn schema() -> Arc<Schema> {
    let text = |n: &str, null| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        text("customer_id", true),
        text("medium", true),
        text("address_masked", true),
        text("reason", false),
        text("source", false),
        text("campaign", true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

fn batch(rows: &[Suppression]) -> RecordBatch {
    let opt = |f: &dyn Fn(&Suppression) -> Option<String>| {
        Arc::new(StringArray::from_iter(rows.iter().map(f))) as ArrayRef
    };
    let cols: Vec<ArrayRef> = vec![
        opt(&|s| s.customer_id.clone()),
        opt(&|s| s.medium.map(|m| m.as_str().to_string())),
        opt(&|s| {
            s.address
                .as_deref()
                .map(|a| crate::mask::address(s.medium, a))
        }),
        opt(&|s| Some(s.reason.clone())),
        opt(&|s| Some(s.source.clone())),
        opt(&|s| s.campaign.clone()),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                rows.iter().map(|s| s.at.timestamp_micros()),
            )
            .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(schema(), cols).expect("columns match the schema")
}

/// Register `suppressions` from the state database in `state_dir` (empty without one).
/// Every row counts whatever the run's `as_of`: an opt-out is never cut by a date.
pub async fn register(ctx: &SessionContext, state_dir: Option<&Path>) -> Result<(), PipelineError> {
    let rows = State::open_existing(state_dir)
        .and_then(|s| s.map_or(Ok(Vec::new()), |s| s.suppressions()))
        .map_err(|e| PipelineError::state(&e))?;
    crate::engine::keep_batches(ctx, TABLE, schema(), vec![batch(&rows)])
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))?;
    Ok(())
}
