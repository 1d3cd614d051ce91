//! How sure an uplift is: the 95% interval of a difference of two proportions, and the
//! holdout a difference needs before it can be told from luck.
//!
//! `campaign_results` compares the share of contacted customers who came back with the
//! share of the holdout. The textbook (Wald) interval `d ± 1.96·√(p₁q₁/n₁ + p₂q₂/n₂)`
//! collapses to a point when a share is 0 or 1 and is far too narrow for small groups
//! (0/3 against 6/30 reads "+5.7 to +34.3 points"). This module uses instead
//! **Newcombe's hybrid score interval** (method 10 of R. G. Newcombe, "Interval
//! estimation for the difference between independent proportions: comparison of eleven
//! methods", Statistics in Medicine 17:873-890, 1998), which combines the Wilson score
//! intervals `(l₁, u₁)`, `(l₂, u₂)` of the two shares:
//!
//! ```text
//! low  = (p₁ − p₂) − √((p₁ − l₁)² + (u₂ − p₂)²)
//! high = (p₁ − p₂) + √((u₁ − p₁)² + (p₂ − l₂)²)
//! Wilson: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n),  z = 1.95996
//! ```
//!
//! It stays inside [−1, 1], is never zero-width and keeps close to its 95% coverage for
//! small groups and shares near 0 or 1. The SQL functions `uplift_low(x₁, n₁, x₂, n₂)` and
//! `uplift_high(x₁, n₁, x₂, n₂)` return its ends (NULL when a group is empty), and
//! `holdout_needed(p₁, p₂)` the group size of [`holdout_needed`].

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The normal quantile of a two-sided 95% interval (and a 5% two-sided test).
const Z_95: f64 = 1.959_963_984_540_054;
/// The normal quantile of 80% power.
const Z_80: f64 = 0.841_621_233_572_914_3;

/// The Wilson score interval of `x` events out of `n` (no continuity correction).
pub fn wilson(x: f64, n: f64) -> (f64, f64) {
    let p = x / n;
    let z2 = Z_95 * Z_95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let margin = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - margin).max(0.0), (centre + margin).min(1.0))
}

/// Newcombe's hybrid score 95% interval of `x₁/n₁ − x₂/n₂`; `None` when a group is empty.
pub fn newcombe(x1: f64, n1: f64, x2: f64, n2: f64) -> Option<(f64, f64)> {
    if !(n1 > 0.0 && n2 > 0.0) {
        return None;
    }
    let (p1, p2) = (x1 / n1, x2 / n2);
    let ((l1, u1), (l2, u2)) = (wilson(x1, n1), wilson(x2, n2));
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((low.max(-1.0), high.min(1.0)))
}

/// The size of each of two equal groups needed to detect a true difference between the
/// shares `p1` and `p2` with 80% power in a 5% two-sided test (Fleiss, *Statistical
/// Methods for Rates and Proportions*, without continuity correction), rounded up:
///
/// ```text
/// n = (1.96·√(2·p̄·(1−p̄)) + 0.8416·√(p₁(1−p₁) + p₂(1−p₂)))² / (p₁ − p₂)²,  p̄ = (p₁ + p₂)/2
/// ```
///
/// `None` without a difference to detect.
pub fn holdout_needed(p1: f64, p2: f64) -> Option<i64> {
    let d = p1 - p2;
    if !d.is_finite() || d == 0.0 {
        return None;
    }
    let pbar = (p1 + p2) / 2.0;
    let a = Z_95 * (2.0 * pbar * (1.0 - pbar)).sqrt();
    let b = Z_80 * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    // A hair below an integer is that integer: float noise must not add a customer.
    Some((((a + b).powi(2) / (d * d)) - 1e-9).ceil().max(1.0) as i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum End {
    Low,
    High,
    Needed,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct UpliftFn {
    end: End,
    signature: Signature,
}

/// `uplift_low(x1, n1, x2, n2)`: the interval's lower end.
pub fn low_udf() -> ScalarUDF {
    udf(End::Low, 4)
}

/// `uplift_high(x1, n1, x2, n2)`: the interval's upper end.
pub fn high_udf() -> ScalarUDF {
    udf(End::High, 4)
}

/// `holdout_needed(p1, p2)`: the group size of [`holdout_needed`].
pub fn needed_udf() -> ScalarUDF {
    udf(End::Needed, 2)
}

fn udf(end: End, args: usize) -> ScalarUDF {
    ScalarUDF::new_from_impl(UpliftFn {
        end,
        signature: Signature::uniform(args, vec![DataType::Float64], Volatility::Immutable),
    })
}

impl ScalarUDFImpl for UpliftFn {
    fn name(&self) -> &str {
        match self.end {
            End::Low => "uplift_low",
            End::High => "uplift_high",
            End::Needed => "holdout_needed",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.end {
            End::Needed => DataType::Int64,
            _ => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?;
        let cols: Vec<&Float64Array> = arrays
            .iter()
            .map(|a| a.as_primitive::<Float64Type>())
            .collect();
        let value = |c: &Float64Array, i: usize| (!c.is_null(i)).then(|| c.value(i));
        let row = |i: usize| {
            cols.iter()
                .map(|c| value(c, i))
                .collect::<Option<Vec<f64>>>()
        };
        let out: ArrayRef = match self.end {
            End::Needed => Arc::new(Int64Array::from_iter(
                (0..args.number_rows).map(|i| row(i).and_then(|v| holdout_needed(v[0], v[1]))),
            )),
            end => Arc::new(Float64Array::from_iter((0..args.number_rows).map(|i| {
                let v = row(i)?;
                let (low, high) = newcombe(v[0], v[1], v[2], v[3])?;
                Some(if end == End::Low { low } else { high })
            }))),
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round4(v: f64) -> f64 {
        (v * 10_000.0).round() / 10_000.0
    }

    /// Newcombe (1998), Table II, method 10 (score, no continuity correction): the eight
    /// worked examples, to the paper's four decimals.
    #[test]
    fn newcombe_matches_the_papers_worked_examples() {
        let cases = [
            ((56, 70, 48, 80), (0.0524, 0.3339)),
            ((9, 10, 3, 10), (0.1705, 0.8090)),
            ((6, 7, 2, 7), (0.0582, 0.8062)),
            ((5, 56, 0, 29), (-0.0381, 0.1926)),
            ((0, 10, 0, 20), (-0.1611, 0.2775)),
            ((0, 10, 0, 10), (-0.2775, 0.2775)),
            ((10, 10, 0, 20), (0.6791, 1.0)),
            ((10, 10, 0, 10), (0.6075, 1.0)),
        ];
        for ((x1, n1, x2, n2), (low, high)) in cases {
            let (l, h) = newcombe(x1 as f64, n1 as f64, x2 as f64, n2 as f64).unwrap();
            assert_eq!((round4(l), round4(h)), (low, high), "{x1}/{n1} - {x2}/{n2}");
        }
    }

    #[test]
    fn wilson_is_never_zero_width_at_0_or_n() {
        // 0/10: (0, 0.2775); 10/10: (0.7225, 1) (Newcombe 1998, the examples' parts).
        let (l, h) = wilson(0.0, 10.0);
        assert_eq!((round4(l), round4(h)), (0.0, 0.2775));
        let (l, h) = wilson(10.0, 10.0);
        assert_eq!((round4(l), round4(h)), (0.7225, 1.0));
    }

    #[test]
    fn an_empty_group_has_no_interval() {
        assert_eq!(newcombe(0.0, 0.0, 3.0, 10.0), None);
        assert_eq!(newcombe(3.0, 10.0, 0.0, 0.0), None);
    }

    #[test]
    fn the_issues_small_holdout_is_not_called_a_win() {
        // 6/30 contacted against 0/3 held out: Wald says +5.7 to +34.3 points; the score
        // interval reaches well below zero.
        let (l, h) = newcombe(6.0, 30.0, 0.0, 3.0).unwrap();
        assert!(l < 0.0 && h > 0.2, "{l} {h}");
    }

    #[test]
    fn holdout_needed_follows_the_formula() {
        // 20% against 10%: p̄ = 0.15, a = 1.96·√0.255 = 0.98975, b = 0.84162·√0.25 =
        // 0.42081, (a + b)² / 0.01 = 198.97 → 199 per group (Fleiss' table: 199).
        assert_eq!(holdout_needed(0.2, 0.1), Some(199));
        // 20% against 0%: p̄ = 0.1, a = 1.96·√0.18 = 0.83154, b = 0.84162·0.4 = 0.33665,
        // (a + b)² / 0.04 = 34.12 → 35.
        assert_eq!(holdout_needed(0.2, 0.0), Some(35));
        assert_eq!(holdout_needed(0.3, 0.3), None);
        // Symmetric in the direction of the difference.
        assert_eq!(holdout_needed(0.1, 0.2), Some(199));
    }
}
