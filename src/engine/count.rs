//! Reading the one number a query returns (a `count(*)`, the row count of a write).

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::scalar::ScalarValue;

/// The number a one-number query returned (`count(*)`, the row count of a write): the
/// first value of the first column, 0 when there is none.
pub fn single_count(batches: &[RecordBatch]) -> u64 {
    let Some(column) = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .map(|b| b.column(0))
    else {
        return 0;
    };
    match ScalarValue::try_from_array(column, 0) {
        Ok(ScalarValue::Int64(Some(n))) => n.max(0) as u64,
        Ok(ScalarValue::UInt64(Some(n))) => n,
        _ => 0,
    }
}
