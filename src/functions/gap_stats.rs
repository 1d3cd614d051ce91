//! `gap_stats(day)`: a customer's purchase rhythm in one aggregate.
//!
//! Given the days a customer bought on (a `DATE` column, duplicates allowed), it returns a
//! struct of the gaps in days between consecutive distinct days:
//! `{gaps, median, p25, p75}`; the percentiles interpolate linearly like
//! `percentile_cont`. With fewer than two distinct days there is no gap: `gaps` is 0 and
//! the rest null.
//!
//! SQL could say the same with a `lag()` window over every customer-day and percentiles
//! over the result, but that sorts all ~10M customer-days; this keeps each customer's days
//! in a vector and sorts only those (a hash aggregation by customer, several times faster).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Builder, Int32Array, Int64Builder, ListArray,
    StructArray,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, FieldRef, Fields, Int32Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature,
    TypeSignature, Volatility,
};

/// The rhythm of one customer: gaps between consecutive distinct purchase days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gaps {
    pub count: i64,
    pub median: Option<f64>,
    pub p25: Option<f64>,
    pub p75: Option<f64>,
}

/// Sorts and de-duplicates `days` in place, then measures the gaps between them.
/// `scratch` is reused between calls to avoid an allocation per customer.
pub fn gaps_of(days: &mut Vec<i32>, scratch: &mut Vec<f64>) -> Gaps {
    days.sort_unstable();
    days.dedup();
    scratch.clear();
    scratch.extend(days.windows(2).map(|w| f64::from(w[1] - w[0])));
    scratch.sort_unstable_by(f64::total_cmp);
    Gaps {
        count: scratch.len() as i64,
        median: percentile(scratch, 0.5),
        p25: percentile(scratch, 0.25),
        p75: percentile(scratch, 0.75),
    }
}

/// `percentile_cont(p)` of sorted values: linear interpolation at `p * (n - 1)`.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = p * last as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi]);
    Some(a + (b - a) * (pos - lo as f64))
}

fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("gaps", DataType::Int64, false),
        Field::new("median", DataType::Float64, true),
        Field::new("p25", DataType::Float64, true),
        Field::new("p75", DataType::Float64, true),
    ])
}

fn item_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int32, true))
}

/// The aggregate, ready to register on a session.
pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(GapStats {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Date32]),
                TypeSignature::Exact(vec![DataType::Int32]),
            ],
            Volatility::Immutable,
        ),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GapStats {
    signature: Signature,
}

impl AggregateUDFImpl for GapStats {
    fn name(&self) -> &str {
        "gap_stats"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "days"),
            DataType::List(item_field()),
            true,
        ))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One::default()))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::default()))
    }
}

/// The day numbers of an input column (`DATE` or an integer day number).
fn day_values(array: &ArrayRef) -> Int32Array {
    match array.data_type() {
        DataType::Date32 => array.as_primitive::<Date32Type>().reinterpret_cast(),
        _ => array.as_primitive::<Int32Type>().clone(),
    }
}

/// Builds the result struct for groups' day vectors.
fn evaluate_groups(groups: Vec<Vec<i32>>) -> Result<ArrayRef> {
    let n = groups.len();
    let (mut count, mut median, mut p25, mut p75) = (
        Int64Builder::with_capacity(n),
        Float64Builder::with_capacity(n),
        Float64Builder::with_capacity(n),
        Float64Builder::with_capacity(n),
    );
    let mut scratch = Vec::new();
    for mut days in groups {
        let g = gaps_of(&mut days, &mut scratch);
        count.append_value(g.count);
        median.append_option(g.median);
        p25.append_option(g.p25);
        p75.append_option(g.p75);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(count.finish()),
        Arc::new(median.finish()),
        Arc::new(p25.finish()),
        Arc::new(p75.finish()),
    ];
    Ok(Arc::new(StructArray::try_new(
        result_fields(),
        columns,
        None,
    )?))
}

/// The intermediate state: one list of day numbers per group.
fn state_list(groups: Vec<Vec<i32>>) -> ArrayRef {
    let offsets = OffsetBuffer::from_lengths(groups.iter().map(Vec::len));
    let values: Vec<i32> = groups.into_iter().flatten().collect();
    Arc::new(ListArray::new(
        item_field(),
        offsets,
        Arc::new(Int32Array::new(ScalarBuffer::from(values), None)),
        None,
    ))
}

/// Appends every list of a state column to its group.
fn merge_lists(state: &ArrayRef, mut push: impl FnMut(usize, &[i32])) {
    let lists = state.as_list::<i32>();
    let values = lists.values().as_primitive::<Int32Type>().values();
    let offsets = lists.value_offsets();
    for row in 0..lists.len() {
        if lists.is_valid(row) {
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            push(row, &values[start..end]);
        }
    }
}

/// One vector of days per group: the fast path DataFusion uses for `GROUP BY`.
#[derive(Debug, Default)]
struct Groups {
    days: Vec<Vec<i32>>,
    /// Days held, for `size()` (which must not walk every group).
    held: usize,
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.days.resize(total_num_groups, Vec::new());
        let input = day_values(&values[0]);
        for (row, &group) in group_indices.iter().enumerate() {
            let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if kept && input.is_valid(row) {
                self.days[group].push(input.value(row));
                self.held += 1;
            }
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.days.resize(total_num_groups, Vec::new());
        let (days, held) = (&mut self.days, &mut self.held);
        merge_lists(&values[0], |row, new| {
            days[group_indices[row]].extend_from_slice(new);
            *held += new.len();
        });
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        evaluate_groups(self.take(emit_to))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![state_list(self.take(emit_to))])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Every row its own group: a list of its one day (or an empty list).
        let input = day_values(&values[0]);
        let rows = (0..input.len()).map(|row| {
            let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if kept && input.is_valid(row) {
                vec![input.value(row)]
            } else {
                Vec::new()
            }
        });
        Ok(vec![state_list(rows.collect())])
    }

    fn size(&self) -> usize {
        // Vectors grow by doubling: count their capacity as twice what they hold.
        self.days.capacity() * size_of::<Vec<i32>>() + 2 * self.held * size_of::<i32>()
    }
}

impl Groups {
    fn take(&mut self, emit_to: EmitTo) -> Vec<Vec<i32>> {
        let taken = emit_to.take_needed(&mut self.days);
        self.held -= taken.iter().map(Vec::len).sum::<usize>();
        taken
    }
}

/// The same for an aggregate without `GROUP BY`.
#[derive(Debug, Default)]
struct One {
    days: Vec<i32>,
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.days.extend(day_values(&values[0]).iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        merge_lists(&states[0], |_, days| self.days.extend_from_slice(days));
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = state_list(vec![std::mem::take(&mut self.days)]);
        Ok(vec![ScalarValue::List(Arc::new(
            list.as_list::<i32>().clone(),
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let array = evaluate_groups(vec![self.days.clone()])?;
        ScalarValue::try_from_array(&array, 0)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.days.capacity() * size_of::<i32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(days: &[i32]) -> Gaps {
        gaps_of(&mut days.to_vec(), &mut Vec::new())
    }

    #[test]
    fn percentiles_match_percentile_cont() {
        // Days 0, 10, 12, 30, 31 (and a repeat of 12): gaps 10, 2, 18, 1 -> sorted 1, 2, 10, 18.
        let g = gaps(&[30, 0, 12, 10, 12, 31]);
        assert_eq!(g.count, 4);
        assert_eq!(g.median, Some(6.0)); // (2 + 10) / 2
        assert_eq!(g.p25, Some(1.75)); // 1 + (2 - 1) * 0.75
        assert_eq!(g.p75, Some(12.0)); // 10 + (18 - 10) * 0.25
    }

    #[test]
    fn one_distinct_day_has_no_gap() {
        let g = gaps(&[5, 5, 5]);
        assert_eq!(g.count, 0);
        assert_eq!((g.median, g.p25, g.p75), (None, None, None));
        assert_eq!(gaps(&[]).count, 0);
    }

    #[test]
    fn a_single_gap_is_every_percentile() {
        let g = gaps(&[100, 161]);
        assert_eq!(
            (g.median, g.p25, g.p75),
            (Some(61.0), Some(61.0), Some(61.0))
        );
    }
}
