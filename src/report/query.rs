//! The report's queries over a run's outputs: an output table registered where it is, and
//! the rows of an aggregate query as text cells with their parsing.

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::error::PipelineError;
use crate::storage::Location;

/// Why a section is empty when its table is not in the output folder for `as_of`.
pub(super) fn missing_table(table: &str, as_of: NaiveDate) -> String {
    format!("the table `{table}` is not in this output folder for as_of {as_of}")
}

/// A report query that failed: an output error of the report.
pub(super) fn err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Output {
        table: "report".into(),
        message: e.to_string(),
    }
}

/// Rows of a query as text cells (nulls empty).
pub(super) async fn rows(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<Vec<String>>, PipelineError> {
    let batches: Vec<RecordBatch> = ctx
        .sql(sql)
        .await
        .map_err(err)?
        .collect()
        .await
        .map_err(err)?;
    let mut out = Vec::new();
    for b in &batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .zip(&fmts)
                    .map(|(c, f)| {
                        if c.is_null(r) {
                            String::new()
                        } else {
                            f.value(r).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

pub(super) fn num(s: &str) -> f64 {
    s.parse().unwrap_or(0.0)
}

pub(super) fn int(s: &str) -> u64 {
    s.parse::<f64>().map(|v| v.max(0.0) as u64).unwrap_or(0)
}

/// Register `<root>/<table>/as_of=<D>/` as `table` when it holds Parquet files.
pub(super) async fn register(
    ctx: &SessionContext,
    root: &Location,
    table: &str,
    as_of: NaiveDate,
) -> bool {
    let dir = root.child(table).child(&format!("as_of={as_of}"));
    let has_files = dir
        .list()
        .await
        .map(|l| l.iter().any(|m| m.location.as_ref().ends_with(".parquet")))
        .unwrap_or(false);
    has_files
        && ctx
            .register_parquet(table, dir.url.as_str(), ParquetReadOptions::default())
            .await
            .is_ok()
}
