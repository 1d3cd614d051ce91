//! Under a memory cap joins sort and merge, because a hash table cannot spill. But a join
//! against a small table (a source's shared duplicate hashes, a rules table) then sorts the
//! big side as well: every purchase row, to meet a few thousand hashes. This rule, first
//! among the physical optimizer's, turns such a sort-merge join back into a hash join whose
//! table is built from the small side (known small from statistics: at most `max_rows` rows
//! and a table of at most `max_bytes`). A table that small fits the pool; joins of two large
//! inputs keep sorting and merging. At 100M purchase rows `multi_line_orders` holds 2.3M
//! keys of 8 bytes: a 90 MB table, where sorting both sides spilled past 16 GB of disk.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode, SortMergeJoinExec};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// The bytes assumed for a value of variable width (text, binary, lists) when statistics
/// know the rows but not their size.
const ASSUMED_VARIABLE_BYTES: usize = 32;

/// A hash join's table costs more than its rows: a map entry and a chain link per row
/// (16 + 8 bytes in DataFusion's join hash map), with room to spare.
const HASH_ENTRY_BYTES: usize = 32;

/// The bytes of one row of `schema`, estimated: fixed-width types at their width, the rest
/// at `ASSUMED_VARIABLE_BYTES`.
fn row_bytes(schema: &datafusion::arrow::datatypes::Schema) -> usize {
    schema
        .fields()
        .iter()
        .map(|f| {
            f.data_type()
                .primitive_width()
                .unwrap_or(ASSUMED_VARIABLE_BYTES)
        })
        .sum()
}

/// Hash joins for sort-merge joins with a small side (see the module documentation).
#[derive(Debug)]
pub struct HashSmallJoins {
    pub max_rows: usize,
    pub max_bytes: usize,
}

impl HashSmallJoins {
    /// Whether statistics say `plan` yields at most `max_rows` rows, and a hash table of
    /// them takes at most `max_bytes` (the rows' size from statistics, else estimated from
    /// the schema, plus the table's own entries). Unknown rows are not small.
    fn small(&self, plan: &Arc<dyn ExecutionPlan>) -> bool {
        let Ok(stats) = StatisticsContext::new().compute(plan.as_ref(), &StatisticsArgs::new())
        else {
            return false;
        };
        let Some(&rows) = stats.num_rows.get_value() else {
            return false;
        };
        let bytes = stats
            .total_byte_size
            .get_value()
            .copied()
            .unwrap_or_else(|| rows.saturating_mul(row_bytes(&plan.schema())));
        let table = bytes.saturating_add(rows.saturating_mul(HASH_ENTRY_BYTES));
        rows <= self.max_rows && table <= self.max_bytes
    }

    fn replace(&self, smj: &SortMergeJoinExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        // The left input is the one a hash join builds its table from.
        let swap = if self.small(smj.left()) {
            false
        } else if self.small(smj.right()) && smj.join_type().supports_swap() {
            true
        } else {
            return Ok(None);
        };
        let join = HashJoinExec::try_new(
            Arc::clone(smj.left()),
            Arc::clone(smj.right()),
            smj.on().to_vec(),
            smj.filter().clone(),
            &smj.join_type(),
            None,
            PartitionMode::Auto,
            smj.null_equality(),
            false,
        )?;
        Ok(Some(if swap {
            join.swap_inputs(PartitionMode::Auto)?
        } else {
            Arc::new(join)
        }))
    }
}

impl PhysicalOptimizerRule for HashSmallJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(smj) = node.downcast_ref::<SortMergeJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            Ok(match self.replace(smj)? {
                Some(join) => Transformed::yes(join),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "hash_small_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The physical plan of a join of a 3-row and a 2-row table as a capped session plans
    /// it (sort-merge), then after the rule with `max_rows`.
    async fn plan_after(max_rows: usize) -> (String, String) {
        let mut config = SessionConfig::new().with_target_partitions(2);
        config.options_mut().optimizer.prefer_hash_join = false;
        let ctx = SessionContext::new_with_config(config);
        let table = |name: &str, n: i64| {
            let batch = RecordBatch::try_from_iter(vec![(
                name,
                Arc::new(Int64Array::from_iter_values(0..n)) as _,
            )])
            .unwrap();
            ctx.register_batch(name, batch).unwrap();
        };
        table("big", 3);
        table("small", 2);
        let df = ctx
            .sql("select * from big join small on big = small")
            .await
            .unwrap();
        let logical = df.into_optimized_plan().unwrap();
        let state = ctx.state();
        let planner = datafusion::physical_planner::DefaultPhysicalPlanner::default();
        use datafusion::physical_planner::PhysicalPlanner;
        let plan = planner
            .create_physical_plan(&logical, &state)
            .await
            .unwrap();
        let before = displayable(plan.as_ref()).indent(false).to_string();
        let rule = HashSmallJoins {
            max_rows,
            max_bytes: usize::MAX,
        };
        let after = rule.optimize(plan, state.config_options()).unwrap();
        (
            before,
            displayable(after.as_ref()).indent(false).to_string(),
        )
    }

    #[tokio::test]
    async fn a_join_with_a_small_side_hashes_the_small_side() {
        let (before, after) = plan_after(2).await;
        assert!(before.contains("SortMergeJoin"), "{before}");
        assert!(!after.contains("SortMergeJoin"), "{after}");
        // The 2-row side is the one hashed: `small` on the left, built from.
        let join = after.lines().find(|l| l.contains("HashJoinExec")).unwrap();
        assert!(join.contains("on=[(small@0, big@0)]"), "{after}");
    }

    #[tokio::test]
    async fn a_join_of_two_large_sides_keeps_sorting() {
        let (_, after) = plan_after(1).await;
        assert!(after.contains("SortMergeJoin"), "{after}");
        assert!(!after.contains("HashJoinExec"), "{after}");
    }
}
