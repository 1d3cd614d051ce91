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
        let arrays: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?;
        let mut hashes = vec![0u64; args.number_rows];
        // A fixed seed: the same values hash the same in every query of a run.
        create_hashes(&arrays, &RandomState::with_seed(0), &mut hashes)?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(hashes))))
    }
}
