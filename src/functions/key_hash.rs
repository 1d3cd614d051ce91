//! `key_hash(a, b, ...)`: a 64-bit hash of a row's values, for finding repeated keys fast.
//!
//! Grouping ten million rows by one `UInt64` is several times cheaper than grouping them by
//! several text columns. Rows whose hash is unique cannot repeat; only rows sharing a hash
//! are compared by their real values, so a collision costs time, never correctness. The
//! engine uses it for `unique` tests and for removing exact duplicate rows.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function, ready to register on a session.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(KeyHash {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct KeyHash {
    signature: Signature,
}

impl ScalarUDFImpl for KeyHash {
    fn name(&self) -> &str {
        "key_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // Every argument as an array of the batch's length: a constant one too (a literal,
        // or a column the optimizer knows holds one value). `values_to_arrays` would make
        // a batch of constants one row long, shorter than the batch.
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<_>>()?;
        let mut hashes = vec![0u64; args.number_rows];
        // A fixed seed: the same values hash the same in every query of a run.
        create_hashes(&arrays, &RandomState::with_seed(0), &mut hashes)?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(hashes))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, ArrayRef, StringArray, UInt64Array};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::ScalarValue;
    use datafusion::common::config::ConfigOptions;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

    fn hash(args: Vec<ColumnarValue>, rows: usize) -> Vec<u64> {
        let field = Arc::new(Field::new("a", DataType::Utf8, true));
        let out = super::udf()
            .invoke_with_args(ScalarFunctionArgs {
                arg_fields: vec![field.clone(); args.len()],
                args,
                number_rows: rows,
                return_field: Arc::new(Field::new("h", DataType::UInt64, false)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .unwrap()
            .to_array(rows)
            .unwrap();
        let a = out.as_any().downcast_ref::<UInt64Array>().unwrap();
        (0..a.len()).map(|i| a.value(i)).collect()
    }

    /// Regression: with only constant arguments (a column the optimizer knows holds one
    /// value is one too) the hashes were one row long whatever the batch: a panic, "hashes_buffer
    /// and array should be of equal length", seen on a small incremental night. A constant
    /// hashes like the same value in a column.
    #[test]
    fn constant_arguments_hash_every_row_like_a_column() {
        let text = |v: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.into())));
        let column = |v: &str| {
            let a: ArrayRef = Arc::new(StringArray::from(vec![v; 3]));
            ColumnarValue::Array(a)
        };
        let constant = hash(vec![text("o1"), text("c1")], 3);
        let columns = hash(vec![column("o1"), column("c1")], 3);
        assert_eq!(constant.len(), 3);
        assert_eq!(constant, columns);
        assert_eq!(hash(vec![column("o1"), text("c1")], 3), columns);
    }
}
