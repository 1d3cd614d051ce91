//! Column tests declared per stage in the pipeline file (`unique`, `not_null`,
//! `accepted_values`), run on a stage's result right after it is computed.

use datafusion::common::{DFSchema, Dependency};
use datafusion::prelude::SessionContext;

use crate::config::StageSpec;
use crate::error::PipelineError;
use crate::source::views::ident;

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether the plan that computed a table guarantees its `unique` columns: DataFusion
/// tracks functional dependencies, and a GROUP BY key stays a unique key through filters,
/// projections and windows (joins and unions drop the guarantee). Checking such a key again
/// would group every row a second time for nothing.
pub fn unique_by_plan(schema: &DFSchema, columns: &[String]) -> bool {
    let Some(indices) = columns
        .iter()
        .map(|c| schema.index_of_column_by_name(None, c))
        .collect::<Option<Vec<usize>>>()
    else {
        return false;
    };
    schema.functional_dependencies().iter().any(|d| {
        d.mode == Dependency::Single && d.source_indices.iter().all(|i| indices.contains(i))
    })
}

/// One column test: the SQL counting its offending rows, and perhaps a cheaper query that
/// counts candidates first (when it finds none, the test passes without the exact query).
pub struct TestQuery {
    pub what: String,
    pub sql: String,
    pub screen: Option<String>,
}

/// Every test query for a stage.
/// `unique_proven`: the plan guarantees the `unique` columns (see `unique_by_plan`).
pub fn test_queries(table: &str, spec: &StageSpec, unique_proven: bool) -> Vec<TestQuery> {
    let t = ident(table);
    let mut out = Vec::new();
    if !spec.unique.is_empty() && !unique_proven {
        let cols: Vec<String> = spec.unique.iter().map(|c| ident(c)).collect();
        let c = cols.join(", ");
        // As SQL's UNIQUE, a key with an empty column equals no other (an order without an
        // id is its own).
        let present = cols
            .iter()
            .map(|c| format!("{c} is not null"))
            .collect::<Vec<_>>()
            .join(" and ");
        let hashed = format!("select {c}, key_hash({c}) as _h from {t} where {present}");
        out.push(TestQuery {
            what: format!("unique ({})", spec.unique.join(", ")),
            // Only rows sharing a hash of the key can share the key: grouped by the key
            // itself only when the screen found some (see `key_hash`).
            sql: format!(
                "with hashed as ({hashed}), \
                 shared as (select _h from hashed group by _h having count(*) > 1) \
                 select count(*) from (select {c} from hashed where _h in (select _h from shared) \
                 group by {c} having count(*) > 1)"
            ),
            // One aggregation of 64-bit hashes, which spills under a memory limit; no join.
            screen: Some(format!(
                "select count(*) from (select key_hash({c}) as _h from {t} where {present} \
                 group by _h having count(*) > 1)"
            )),
        });
    }
    for col in &spec.not_null {
        out.push(TestQuery {
            what: format!("not_null {col}"),
            sql: format!("select count(*) from {t} where {} is null", ident(col)),
            screen: None,
        });
    }
    for (col, values) in &spec.accepted_values {
        let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
        out.push(TestQuery {
            what: format!("accepted_values {col}"),
            sql: format!(
                "select count(*) from {t} where {c} is not null and cast({c} as varchar) not in ({})",
                list.join(", "),
                c = ident(col)
            ),
            screen: None,
        });
    }
    out
}

/// Run the tests of `table`; all failures are reported together.
pub async fn run(
    ctx: &SessionContext,
    table: &str,
    spec: &StageSpec,
    unique_proven: bool,
) -> Result<(), PipelineError> {
    if unique_proven && !spec.unique.is_empty() {
        tracing::debug!(stage = table, columns = ?spec.unique, "unique: guaranteed by the plan");
    }
    let mut failures = Vec::new();
    for test in test_queries(table, spec, unique_proven) {
        let what = &test.what;
        let err = |e: datafusion::error::DataFusionError| PipelineError::DataTest {
            stage: table.to_string(),
            message: format!("{what}: {}", e.strip_backtrace()),
        };
        let count = |sql: String| async move {
            let batches = ctx.sql(&sql).await?.collect().await?;
            Ok::<u64, datafusion::error::DataFusionError>(crate::engine::count::single_count(
                &batches,
            ))
        };
        if let Some(screen) = test.screen
            && count(screen).await.map_err(err)? == 0
        {
            continue;
        }
        let bad = count(test.sql).await.map_err(err)?;
        if bad > 0 {
            failures.push(format!("{what}: {bad} offending row(s)"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(PipelineError::DataTest {
            stage: table.to_string(),
            message: failures.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn proven(sql: &str, columns: &[&str]) -> bool {
        let ctx = SessionContext::new();
        ctx.sql("create table t (a int, b int, c int) as values (1, 2, 3), (1, 2, 4)")
            .await
            .unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        unique_by_plan(df.schema(), &columns)
    }

    #[tokio::test]
    async fn a_group_by_key_is_unique_through_filters_and_projections() {
        let grouped = "select a, b, sum(c) as s from t group by a, b";
        assert!(proven(grouped, &["a", "b"]).await);
        assert!(
            proven(grouped, &["b", "a", "s"]).await,
            "a superset of the key"
        );
        assert!(
            !proven(grouped, &["a"]).await,
            "part of the key is not unique"
        );
        let filtered = format!("select b, a from ({grouped}) where s > 1");
        assert!(proven(&filtered, &["a", "b"]).await);
    }

    #[tokio::test]
    async fn joins_unions_and_plain_tables_prove_nothing() {
        assert!(!proven("select a, b from t", &["a", "b"]).await);
        let joined =
            "select g.a, g.b from (select a, b from t group by a, b) g join t on t.a = g.a";
        assert!(!proven(joined, &["a", "b"]).await);
        let union = "select a, b from t group by a, b union all select a, b from t group by a, b";
        assert!(!proven(union, &["a", "b"]).await);
    }
}
