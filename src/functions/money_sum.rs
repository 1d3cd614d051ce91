//! `money_sum(x)`: an exact sum of money, returned as a double.
//!
//! It is `cast(sum(cast(x as decimal(38, 6))) as double)`, said once: each value is rounded
//! to the millionth (a decimal with 6 places), the decimals are added exactly, and the total
//! is turned back into a double. A float sum's last bits depend on the order the rows
//! arrive in, which changes with the partitioning; this one does not, so equal spenders tie
//! the same way on every run. Like `sum`, it ignores nulls and is null when no row has a
//! value (an empty group, or every value null or filtered out); `FILTER (WHERE ...)` works.
//!
//! It is DataFusion's own `sum` over `decimal(38, 6)` (the same accumulators: the grouped
//! one, the one without `GROUP BY`, the sliding one of windows), with the input cast by the
//! kernel SQL `CAST` uses and the result cast back by the same kernel, so the results are
//! bit-identical to the expression it replaces, at the same speed.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, not_impl_err, plan_err};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator,
    ReversedUDAF, Signature, Volatility,
};

/// The type money is summed in: 38 digits, 6 of them after the point.
pub const EXACT: DataType = DataType::Decimal128(38, 6);

/// The aggregate, ready to register on a session.
pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(MoneySum {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MoneySum {
    signature: Signature,
}

/// `values` cast as SQL's `CAST(values AS type)` casts them (same kernel, same options:
/// an overflow is an error, not a null).
fn cast(values: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    match ColumnarValue::Array(Arc::clone(values)).cast_to(to, None)? {
        ColumnarValue::Array(array) => Ok(array),
        ColumnarValue::Scalar(scalar) => scalar.to_array_of_size(values.len()),
    }
}

/// The call of `sum` that does the work: the same call, over `decimal(38, 6)`.
fn sum_args<'a>(args: AccumulatorArgs<'a>, fields: &'a [FieldRef]) -> AccumulatorArgs<'a> {
    AccumulatorArgs {
        return_field: Arc::new(Field::new(args.name, EXACT, true)),
        expr_fields: fields,
        ..args
    }
}

fn exact_fields(args: &AccumulatorArgs) -> Vec<FieldRef> {
    args.expr_fields
        .iter()
        .map(|f| Arc::new(Field::new(f.name(), EXACT, f.is_nullable())))
        .collect()
}

impl AggregateUDFImpl for MoneySum {
    fn name(&self) -> &str {
        "money_sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Any number (integers, floats, decimals); a bare NULL counts as a double.
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Null] => Ok(vec![DataType::Float64]),
            [t] if t.is_numeric() => Ok(vec![t.clone()]),
            [t] => plan_err!("money_sum takes a number, not {t}"),
            _ => plan_err!("money_sum takes one argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "sum"),
            EXACT,
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return not_impl_err!("money_sum(DISTINCT ...)");
        }
        let fields = exact_fields(&args);
        let inner = sum_udaf().accumulator(sum_args(args, &fields))?;
        Ok(Box::new(One { inner }))
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return not_impl_err!("money_sum(DISTINCT ...)");
        }
        let fields = exact_fields(&args);
        let inner = sum_udaf().create_sliding_accumulator(sum_args(args, &fields))?;
        Ok(Box::new(One { inner }))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.is_distinct
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let fields = exact_fields(&args);
        let inner = sum_udaf().create_groups_accumulator(sum_args(args, &fields))?;
        Ok(Box::new(Groups { inner }))
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
}

/// `sum`'s grouped accumulator over the values cast to `decimal(38, 6)`; its state is the
/// decimal sum, merged as it is; each result cast back to a double.
struct Groups {
    inner: Box<dyn GroupsAccumulator>,
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let exact = cast(&values[0], &EXACT)?;
        self.inner
            .update_batch(&[exact], group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.inner
            .merge_batch(values, group_indices, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        cast(&self.inner.evaluate(emit_to)?, &DataType::Float64)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.inner.state(emit_to)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let exact = cast(&values[0], &EXACT)?;
        self.inner.convert_to_state(&[exact], opt_filter)
    }

    fn size(&self) -> usize {
        self.inner.size()
    }
}

/// The same without `GROUP BY`, and in a window (where rows also leave the frame).
#[derive(Debug)]
struct One {
    inner: Box<dyn Accumulator>,
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.update_batch(&[cast(&values[0], &EXACT)?])
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.retract_batch(&[cast(&values[0], &EXACT)?])
    }

    fn supports_retract_batch(&self) -> bool {
        self.inner.supports_retract_batch()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.inner.merge_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.state()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.evaluate()?.cast_to(&DataType::Float64)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{Float64Type, Schema};
    use datafusion::catalog::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// `cast(sum(cast(X as decimal(38, 6))) [FILTER/OVER] as double)`: what money_sum
    /// replaces; `after` is a FILTER or OVER clause or empty.
    fn cast_sum_after(x: &str, after: &str) -> String {
        format!("cast(sum(cast({x} as decimal(38, 6))){after} as double)")
    }

    fn cast_sum(x: &str) -> String {
        cast_sum_after(x, "")
    }

    fn session(partitions: usize, skip_partial: bool) -> SessionContext {
        let mut config = SessionConfig::new().with_target_partitions(partitions);
        if skip_partial {
            // Every row turned into a state of its own (convert_to_state), then merged.
            let options = config.options_mut();
            options
                .execution
                .skip_partial_aggregation_probe_rows_threshold = 10;
            options
                .execution
                .skip_partial_aggregation_probe_ratio_threshold = 0.0;
        }
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udaf(udaf());
        ctx
    }

    /// Every column of the result as the bits of its doubles (None = null), row by row.
    async fn bits(ctx: &SessionContext, sql: &str) -> Vec<Vec<Option<u64>>> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut rows = Vec::new();
        for batch in batches {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| {
                            let c = cast(c, &DataType::Float64).unwrap();
                            let c = c.as_primitive::<Float64Type>();
                            c.is_valid(row).then(|| c.value(row).to_bits())
                        })
                        .collect(),
                );
            }
        }
        rows
    }

    /// Money in cents, some with more than six decimals, some null, in several partitions
    /// of small batches so that groups span batches and partitions.
    fn money_table(parts: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
        ]));
        // A small deterministic generator (no dependency on a random crate).
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let partitions = (0..parts)
            .map(|_| {
                let n = 20_000 / parts;
                let (mut g, mut x) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for _ in 0..n {
                    let r = next();
                    g.push((r % 60) as i64);
                    x.push(match (r >> 8) % 10 {
                        0 => None,
                        1 => Some(((r >> 16) % 1_000_000) as f64 / 3.0), // 0.333... rounded
                        2 => Some(-(((r >> 16) % 5_000) as f64) / 100.0), // refunds
                        _ => Some(((r >> 16) % 100_000) as f64 / 100.0), // cents
                    });
                }
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(g)),
                        Arc::new(Float64Array::from(x)),
                    ],
                )
                .unwrap();
                (0..batch.num_rows())
                    .step_by(101)
                    .map(|start| batch.slice(start, 101.min(batch.num_rows() - start)))
                    .collect()
            })
            .collect();
        MemTable::try_new(schema, partitions).unwrap()
    }

    #[tokio::test]
    async fn equals_the_decimal_cast_it_replaces_bit_for_bit() {
        // One phase; partial and final (state and merge); partial skipped.
        for (parts, threads, skip_partial) in [(1, 1, false), (4, 3, false), (4, 3, true)] {
            let ctx = session(threads, skip_partial);
            ctx.register_table("t", Arc::new(money_table(parts)))
                .unwrap();
            let rows = bits(
                &ctx,
                &format!(
                    "select money_sum(x) as a, {} as b, \
                            money_sum(x) filter (where x < 0) as c, {} as d, \
                            money_sum(x) filter (where g = 7) as e, {} as f \
                     from t group by g order by g",
                    cast_sum("x"),
                    cast_sum_after("x", " filter (where x < 0)"),
                    cast_sum_after("x", " filter (where g = 7)"),
                ),
            )
            .await;
            assert_eq!(rows.len(), 60);
            // (In a query of its own: sum(x) and sum(cast(x ...)) share a column name.)
            let float_sums = bits(&ctx, "select sum(x) from t group by g order by g").await;
            let mut float_differs = 0;
            for (row, float_sum) in rows.iter().zip(&float_sums) {
                assert_eq!(
                    row[0], row[1],
                    "{parts} partitions, skip partial {skip_partial}"
                );
                assert_eq!(row[2], row[3]);
                assert_eq!(row[4], row[5]);
                float_differs += usize::from(row[0] != float_sum[0]);
            }
            // Only group 7 passes the filter: every other group's filtered sum is null.
            assert_eq!(rows.iter().filter(|r| r[4].is_some()).count(), 1);
            // A plain float sum is off in its last bits for many of the groups.
            assert!(
                float_differs > 10,
                "float sum differs in {float_differs} groups"
            );

            // Without GROUP BY (the accumulator of a single group).
            let total = bits(
                &ctx,
                &format!("select money_sum(x), {} from t", cast_sum("x")),
            )
            .await;
            assert_eq!(total[0][0], total[0][1]);
        }
    }

    #[tokio::test]
    async fn cents_add_up_exactly() {
        let ctx = session(2, false);
        let got = bits(
            &ctx,
            "select money_sum(x), sum(x) from (values (0.1), (0.2)) t(x)",
        )
        .await;
        assert_eq!(got[0][0], Some(0.3_f64.to_bits()));
        assert_eq!(
            got[0][1],
            Some((0.1_f64 + 0.2).to_bits()),
            "a float sum is not 0.3"
        );
        // A thousand cents are 10, not 9.999999999999831.
        let got = bits(
            &ctx,
            &format!(
                "select money_sum(x), {} from (select 0.01 as x from unnest(range(1000)))",
                cast_sum("x")
            ),
        )
        .await;
        assert_eq!(got[0], vec![Some(10.0_f64.to_bits()); 2]);
        // Integers and decimals too; beyond six places, rounded as the cast rounds.
        let got = bits(
            &ctx,
            &format!(
                "select money_sum(i), {}, money_sum(d), {}, money_sum(f), {} from (values \
                 (1, cast(1.25 as decimal(10, 2)), 0.0000005), (2, cast(2.5 as decimal(10, 2)), 0.0000015)) t(i, d, f)",
                cast_sum("i"),
                cast_sum("d"),
                cast_sum("f")
            ),
        )
        .await;
        assert_eq!(got[0][0], Some(3.0_f64.to_bits()));
        assert_eq!(got[0][0], got[0][1]);
        assert_eq!(got[0][2], got[0][3]);
        assert_eq!(got[0][4], got[0][5]);
    }

    #[tokio::test]
    async fn nulls_and_empty_input_are_null_as_with_sum() {
        let ctx = session(2, false);
        let null = vec![None, None];
        // No rows at all, without GROUP BY: null (not 0).
        let got = bits(
            &ctx,
            &format!(
                "select money_sum(x), {} from (values (1.0)) t(x) where x > 5",
                cast_sum("x")
            ),
        )
        .await;
        assert_eq!(got, vec![null.clone()]);
        // Only nulls; everything filtered out; a bare NULL.
        let got = bits(
            &ctx,
            &format!(
                "select money_sum(x), {} from (values (cast(null as double)), (null)) t(x)",
                cast_sum("x")
            ),
        )
        .await;
        assert_eq!(got, vec![null.clone()]);
        let got = bits(
            &ctx,
            "select money_sum(x) filter (where x > 5) as a, sum(x) filter (where x > 5) as b from (values (1.0), (2.0)) t(x)",
        )
        .await;
        assert_eq!(got, vec![null.clone()]);
        // sum(NULL) is a planning error in DataFusion; money_sum takes a bare NULL as a double.
        assert_eq!(bits(&ctx, "select money_sum(null)").await, vec![vec![None]]);
        // Nulls are skipped; a group of only nulls is null, like sum's.
        let got = bits(
            &ctx,
            &format!(
                "select g, money_sum(x), {} from (values (1, 1.5), (1, null), (2, null)) t(g, x) group by g order by g",
                cast_sum("x")
            ),
        )
        .await;
        let one = Some(1.0_f64.to_bits());
        let two = Some(2.0_f64.to_bits());
        let sum = Some(1.5_f64.to_bits());
        assert_eq!(got, vec![vec![one, sum, sum], vec![two, None, None]]);
    }

    #[tokio::test]
    async fn works_as_a_window_function() {
        let ctx = session(2, false);
        let got = bits(
            &ctx,
            &format!(
                "select money_sum(x) over w, {}, money_sum(x) over (order by i), {} \
                 from (select i, cast(i as double) / 10 as x from unnest(range(50)) r(i)) \
                 window w as (order by i rows between 3 preceding and current row) order by i",
                cast_sum_after("x", " over w"),
                cast_sum_after("x", " over (order by i)"),
            ),
        )
        .await;
        assert_eq!(got.len(), 50);
        for row in got {
            assert_eq!(row[0], row[1]);
            assert_eq!(row[2], row[3]);
        }
    }
}
