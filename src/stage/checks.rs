//! Column tests declared per stage in the pipeline file (`unique`, `not_null`,
//! `accepted_values`), run on a stage's result right after it is computed.

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::prelude::SessionContext;

use crate::config::StageSpec;
use crate::error::PipelineError;
use crate::source::views::ident;

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Every test query for a stage: (description, SQL counting the offending rows).
pub fn test_queries(table: &str, spec: &StageSpec) -> Vec<(String, String)> {
    let t = ident(table);
    let mut out = Vec::new();
    if !spec.unique.is_empty() {
        let cols: Vec<String> = spec.unique.iter().map(|c| ident(c)).collect();
        out.push((
            format!("unique ({})", spec.unique.join(", ")),
            // Rows are grouped by a hash of the key first (cheap); only rows sharing a
            // hash are grouped by the key itself (see `key_hash`).
            format!(
                "with hashed as (select {c}, key_hash({c}) as _h from {t}), \
                 shared as (select _h from hashed group by _h having count(*) > 1) \
                 select count(*) from (select {c} from hashed where _h in (select _h from shared) \
                 group by {c} having count(*) > 1)",
                c = cols.join(", ")
            ),
        ));
    }
    for col in &spec.not_null {
        out.push((
            format!("not_null {col}"),
            format!("select count(*) from {t} where {} is null", ident(col)),
        ));
    }
    for (col, values) in &spec.accepted_values {
        let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
        out.push((
            format!("accepted_values {col}"),
            format!(
                "select count(*) from {t} where {c} is not null and cast({c} as varchar) not in ({})",
                list.join(", "),
                c = ident(col)
            ),
        ));
    }
    out
}

/// Run the tests of `table`; all failures are reported together.
pub async fn run(ctx: &SessionContext, table: &str, spec: &StageSpec) -> Result<(), PipelineError> {
    let mut failures = Vec::new();
    for (what, sql) in test_queries(table, spec) {
        let err = |e: datafusion::error::DataFusionError| PipelineError::DataTest {
            stage: table.to_string(),
            message: format!("{what}: {}", e.strip_backtrace()),
        };
        let batches = ctx
            .sql(&sql)
            .await
            .map_err(err)?
            .collect()
            .await
            .map_err(err)?;
        let bad = batches
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
            .filter(|a| !a.is_empty())
            .map_or(0, |a| a.value(0));
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
