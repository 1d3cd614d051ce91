//! The previous run's `ltv`, read back for this run's stages as the table `previous_ltv`
//! (`customer_id`, `p_alive`, `as_of`): the committed `<output>/ltv/as_of=<D>/` of the
//! latest `D` before this run's `as_of`, whatever run wrote it. A stage compares it with
//! tonight's `ltv` to see whose P(alive) fell since the last run
//! (`sql/marts/at_risk_customers.sql`). Empty on a first run, when `ltv` is not an
//! output, or when its files cannot be read (then with a warning): no drop is seen.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Date32Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::prelude::{
    CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext, col,
};

use crate::config::{FileFormat, OutputSpec};
use crate::error::PipelineError;
use crate::storage::{self, Location};

/// The table stages read.
pub const TABLE: &str = "previous_ltv";
/// The output table it is read from.
const SOURCE: &str = "ltv";

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("p_alive", DataType::Float64, true),
        Field::new("as_of", DataType::Date32, false),
    ]))
}

/// Register `previous_ltv` for a run of `as_of` writing to `output`.
pub async fn register(
    ctx: &SessionContext,
    output: &OutputSpec,
    as_of: NaiveDate,
) -> Result<(), PipelineError> {
    let batches = match read(ctx, output, as_of).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "the previous run's ltv cannot be read: no P(alive) drop is seen tonight");
            Vec::new()
        }
    };
    crate::engine::keep_batches(ctx, TABLE, schema(), batches)
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))
}

/// Register an empty `previous_ltv` (checking a pipeline reads no outputs).
pub async fn register_empty(ctx: &SessionContext) -> Result<(), PipelineError> {
    crate::engine::keep_batches(ctx, TABLE, schema(), Vec::new())
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))
}

/// The previous `ltv`'s rows, or none.
async fn read(
    ctx: &SessionContext,
    output: &OutputSpec,
    as_of: NaiveDate,
) -> Result<Vec<RecordBatch>, PipelineError> {
    if !output.lists(SOURCE) {
        return Ok(Vec::new());
    }
    let root = storage::register(ctx, &output.url)?.child(SOURCE);
    let Some(previous) = latest_before(&root, as_of).await? else {
        return Ok(Vec::new());
    };
    let dir = root.child(&format!("as_of={previous}"));
    let url = dir.url.as_str();
    let format = output.format_of(SOURCE);
    let ext = format!(".{}", format.extension());
    let df = match format {
        FileFormat::Parquet => {
            ctx.read_parquet(url, ParquetReadOptions::default().file_extension(&ext))
                .await
        }
        FileFormat::Csv => {
            ctx.read_csv(url, CsvReadOptions::new().file_extension(&ext))
                .await
        }
        FileFormat::Jsonl => {
            ctx.read_json(url, JsonReadOptions::default().file_extension(&ext))
                .await
        }
    };
    let err = |e: DataFusionError| PipelineError::output(TABLE, e);
    let df = df
        .and_then(|df| {
            df.select(vec![
                datafusion::logical_expr::cast(col("customer_id"), DataType::Utf8)
                    .alias("customer_id"),
                datafusion::logical_expr::cast(col("p_alive"), DataType::Float64).alias("p_alive"),
            ])
        })
        .map_err(err)?;
    let day = crate::config::variables::days_since_epoch(previous);
    let batches = df.collect().await.map_err(err)?;
    batches
        .into_iter()
        .map(|b| {
            let days = Arc::new(Date32Array::from(vec![day; b.num_rows()]));
            RecordBatch::try_new(
                schema(),
                vec![b.column(0).clone(), b.column(1).clone(), days],
            )
            .map_err(|e| PipelineError::output(TABLE, e))
        })
        .collect()
}

/// The latest `as_of=<D>` folder below `root` with `D` before `as_of`.
async fn latest_before(
    root: &Location,
    as_of: NaiveDate,
) -> Result<Option<NaiveDate>, PipelineError> {
    let names: Vec<String> = match root.local_dir() {
        // The local layout's `as_of=<D>` folders are links into `_versions/`.
        Some(dir) => match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        },
        None => root
            .list()
            .await?
            .iter()
            .filter_map(|m| {
                let path = m.location.as_ref();
                let rest = path.strip_prefix(root.prefix.as_ref())?;
                let part = rest.trim_start_matches('/').split('/').next()?;
                Some(part.to_string())
            })
            .collect(),
    };
    Ok(names
        .iter()
        .filter_map(|n| n.strip_prefix("as_of="))
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .filter(|d| *d < as_of)
        .max())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_latest_folder_before_the_run_is_the_previous_run() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "as_of=2026-05-30",
            "as_of=2026-06-02",
            "as_of=2026-06-04",
            "junk",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let root = storage::locate(dir.path().to_str().unwrap()).unwrap();
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            latest_before(&root, day("2026-06-04")).await.unwrap(),
            Some(day("2026-06-02"))
        );
        assert_eq!(latest_before(&root, day("2026-05-30")).await.unwrap(), None);
        let missing = storage::locate(dir.path().join("nothing").to_str().unwrap()).unwrap();
        assert_eq!(
            latest_before(&missing, day("2026-06-04")).await.unwrap(),
            None
        );
    }
}
