//! An audience row's columns as the templates see them: one row of the audience's Arrow
//! batch, shared by every message and decision of that row and read only when a template
//! (or the ledger's tags) asks. A million recipients then cost their columns in Arrow's
//! compact form, not a map of names and JSON values each.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, RecordBatch, StringArray,
    UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use minijinja::value::Value;

/// One row of an audience batch (see [`Fields::table`] for the column types it holds).
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    batch: Arc<RecordBatch>,
    row: usize,
}

impl Fields {
    /// Row `row` of a batch made by [`Fields::table`].
    pub fn new(batch: Arc<RecordBatch>, row: usize) -> Fields {
        Fields { batch, row }
    }

    /// The batch's columns in the types a template reads: booleans, 64-bit integers,
    /// 64-bit floats, text and nulls. Dates, times, decimals and the rest become their
    /// text (`YYYY-MM-DD` for a date), as a template prints them.
    pub fn table(batch: &RecordBatch) -> Result<Arc<RecordBatch>, ArrowError> {
        let mut fields = Vec::with_capacity(batch.num_columns());
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let column = template_column(column)?;
            fields.push(Field::new(field.name(), column.data_type().clone(), true));
            columns.push(column);
        }
        let schema = Arc::new(Schema::new(fields));
        Ok(Arc::new(RecordBatch::try_new(schema, columns)?))
    }

    /// A one-row table from (name, JSON value) pairs: strings, numbers, booleans and
    /// nulls keep their type; anything else becomes its JSON text.
    pub fn from_pairs(pairs: &[(&str, serde_json::Value)]) -> Fields {
        use serde_json::Value as J;
        let mut fields = Vec::with_capacity(pairs.len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(pairs.len());
        for (name, v) in pairs {
            let column: ArrayRef = match v {
                J::Null => Arc::new(NullArray::new(1)),
                J::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
                J::Number(n) => match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => Arc::new(Int64Array::from(vec![i])),
                    (None, Some(u)) => Arc::new(UInt64Array::from(vec![u])),
                    _ => Arc::new(Float64Array::from(vec![n.as_f64().unwrap_or(f64::NAN)])),
                },
                J::String(s) => Arc::new(StringArray::from(vec![s.as_str()])),
                other => Arc::new(StringArray::from(vec![other.to_string()])),
            };
            fields.push(Field::new(*name, column.data_type().clone(), true));
            columns.push(column);
        }
        let schema = Arc::new(Schema::new(fields));
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(1));
        let batch = RecordBatch::try_new_with_options(schema, columns, &options)
            .expect("one value per column");
        Fields::new(Arc::new(batch), 0)
    }

    /// The value of column `name` (None when the row has no such column; a null reads as
    /// none, which renders as nothing).
    pub fn get(&self, name: &str) -> Option<Value> {
        let column = self.batch.column_by_name(name)?;
        let i = self.row;
        if column.is_null(i) {
            return Some(Value::from(()));
        }
        let any = column.as_any();
        Some(if let Some(a) = any.downcast_ref::<StringArray>() {
            Value::from(a.value(i))
        } else if let Some(a) = any.downcast_ref::<Int64Array>() {
            Value::from(a.value(i))
        } else if let Some(a) = any.downcast_ref::<Float64Array>() {
            Value::from(a.value(i))
        } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
            Value::from(a.value(i))
        } else if let Some(a) = any.downcast_ref::<UInt64Array>() {
            Value::from(a.value(i))
        } else {
            Value::from(()) // `table` leaves no other type
        })
    }

    /// A text column's value (None when absent, null or not text).
    pub fn text(&self, name: &str) -> Option<String> {
        let column = self.batch.column_by_name(name)?;
        let a = column.as_any().downcast_ref::<StringArray>()?;
        (!a.is_null(self.row)).then(|| a.value(self.row).to_string())
    }
}

/// One column in a type [`Fields::get`] reads.
fn template_column(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let to = match column.data_type() {
        DataType::Null
        | DataType::Boolean
        | DataType::Int64
        | DataType::UInt64
        | DataType::Float64
        | DataType::Utf8 => return Ok(Arc::clone(column)),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float64,
        _ => DataType::Utf8,
    };
    match cast(column, &to) {
        Ok(c) => Ok(c),
        // Lists, structs and other types without a cast to text: their display form.
        Err(_) => {
            let format = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
            let text: StringArray = (0..column.len())
                .map(|i| (!column.is_null(i)).then(|| format.value(i).to_string()))
                .collect();
            Ok(Arc::new(text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Float32Array, Int32Array};
    use serde_json::json;

    #[test]
    fn a_table_reads_each_type_as_a_template_prints_it() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "days",
                Arc::new(Int32Array::from(vec![Some(92), None])) as ArrayRef,
            ),
            (
                "share",
                Arc::new(Float32Array::from(vec![0.5, 1.25])) as ArrayRef,
            ),
            (
                // 2026-06-04 and 1970-01-01
                "alert_date",
                Arc::new(Date32Array::from(vec![20608, 0])) as ArrayRef,
            ),
            (
                "segment",
                Arc::new(StringArray::from(vec!["At Risk", "Lost"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let table = Fields::table(&batch).unwrap();
        let first = Fields::new(Arc::clone(&table), 0);
        let second = Fields::new(table, 1);
        assert_eq!(first.get("days"), Some(Value::from(92i64)));
        assert!(second.get("days").unwrap().is_none());
        assert_eq!(second.get("share"), Some(Value::from(1.25f64)));
        assert_eq!(first.get("alert_date"), Some(Value::from("2026-06-04")));
        assert_eq!(second.get("alert_date"), Some(Value::from("1970-01-01")));
        assert_eq!(second.text("segment").as_deref(), Some("Lost"));
        assert_eq!(first.get("missing"), None);
        assert_eq!(first.text("days"), None);
    }

    #[test]
    fn pairs_keep_their_json_types() {
        let f = Fields::from_pairs(&[
            ("segment", json!("At Risk")),
            ("days", json!(92)),
            ("clv", json!(12.5)),
            ("vip", json!(true)),
            ("first_name", json!(null)),
            ("tags", json!(["a"])),
        ]);
        assert_eq!(f.get("segment"), Some(Value::from("At Risk")));
        assert_eq!(f.get("days"), Some(Value::from(92i64)));
        assert_eq!(f.get("clv"), Some(Value::from(12.5f64)));
        assert_eq!(f.get("vip"), Some(Value::from(true)));
        assert!(f.get("first_name").unwrap().is_none());
        assert_eq!(f.text("tags").as_deref(), Some("[\"a\"]"));
    }
}
