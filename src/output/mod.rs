//! Writing output tables: each run stages its files in a private folder, and only a
//! successful run commits them (see [`commit`]): readers never see half a table, nor some
//! tables of one run beside tables of another.

pub mod commit;
pub mod previous;

use datafusion::common::config::{CsvOptions, JsonOptions, TableParquetOptions};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;

use crate::config::FileFormat;
use crate::error::PipelineError;
use crate::storage::Location;

/// Where one run writes: the output root and this run's private staging folder
/// `<output>/_staging/<scope>/<run_id>/`. The scope is the run lock's key (hashed): the
/// holder of that lock may remove staging left by an earlier holder that died.
#[derive(Clone)]
pub struct OutputWriter {
    pub root: Location,
    staging: Location,
    scope: Location,
    run_id: String,
    partition: String,
}

/// A table written to staging, waiting for the run to succeed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WrittenTable {
    pub table: String,
    pub format: FileFormat,
    pub path: String,
    pub files: usize,
}

pub(crate) fn out_err(table: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::output(table, e)
}

impl OutputWriter {
    pub fn new(root: Location, as_of: chrono::NaiveDate, run_id: &str, scope: &str) -> Self {
        let scope = root.child("_staging").child(&scope_dir(scope));
        OutputWriter {
            staging: scope.child(run_id),
            scope,
            root,
            run_id: run_id.to_string(),
            partition: format!("as_of={}", as_of.format("%Y-%m-%d")),
        }
    }

    /// The `as_of=<D>` folder name of this run.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The final folder of a table for this run's `as_of`.
    pub fn final_location(&self, table: &str) -> Location {
        self.root.child(table).child(&self.partition)
    }

    /// Write a registered table into this run's staging folder.
    pub async fn write_to_staging(
        &self,
        ctx: &SessionContext,
        table: &str,
        format: FileFormat,
    ) -> Result<WrittenTable, PipelineError> {
        let df = ctx.table(table).await.map_err(|e| out_err(table, e))?;
        Ok(self.stage_frame(table, df, format).await?.0)
    }

    /// Compute `df` straight into the staging folder as Parquet (never held in memory),
    /// then register `table` as those files for the stages that read it. Returns the
    /// staged table and its row count.
    pub async fn stage_and_read_back(
        &self,
        ctx: &SessionContext,
        table: &str,
        df: DataFrame,
    ) -> Result<(WrittenTable, u64), PipelineError> {
        let dir = self.staging.child(table);
        let (files, rows) = write_and_read_back(ctx, table, df, &dir, table).await?;
        Ok((self.written(table, FileFormat::Parquet, files), rows))
    }

    async fn stage_frame(
        &self,
        table: &str,
        df: DataFrame,
        format: FileFormat,
    ) -> Result<(WrittenTable, u64), PipelineError> {
        let (files, rows) = write_files(df, &self.staging.child(table), format, table).await?;
        Ok((self.written(table, format, files), rows))
    }

    fn written(&self, table: &str, format: FileFormat, files: usize) -> WrittenTable {
        WrittenTable {
            table: table.to_string(),
            format,
            path: self.final_location(table).url.to_string(),
            files,
        }
    }

    /// Remove this run's staging folder (after a commit, or after a failure).
    pub async fn discard(&self) -> Result<(), PipelineError> {
        match self.staging.local_dir() {
            Some(dir) => match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(out_err("_staging", e)),
            },
            None => self.staging.delete_all().await?,
        }
        // Each only succeeds when empty.
        let dirs = [
            self.scope.local_dir(),
            self.root.child("_staging").local_dir(),
        ];
        for dir in dirs.into_iter().flatten() {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(())
    }

    /// Remove staging left in this run's scope by runs that died (SIGKILL, power loss).
    /// Call only while holding the run lock the scope stands for: no other live run
    /// writes there. Returns how many folders were removed.
    pub async fn remove_stale_staging(&self) -> Result<usize, PipelineError> {
        let mut removed = 0;
        match self.scope.local_dir() {
            Some(scope) => {
                let Ok(entries) = std::fs::read_dir(&scope) else {
                    return Ok(0);
                };
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy() != self.run_id {
                        std::fs::remove_dir_all(entry.path())
                            .map_err(|e| out_err("_staging", e))?;
                        removed += 1;
                    }
                }
            }
            None => {
                let mut stale = std::collections::BTreeSet::new();
                for meta in self.scope.list().await? {
                    let rel = meta
                        .location
                        .as_ref()
                        .strip_prefix(self.scope.prefix.as_ref());
                    let run = rel
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .split('/')
                        .next();
                    if let Some(run) = run.filter(|r| !r.is_empty() && *r != self.run_id) {
                        stale.insert(run.to_string());
                    }
                }
                for run in &stale {
                    self.scope.child(run).delete_all().await?;
                }
                removed = stale.len();
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed staging left by runs that died");
        }
        Ok(removed)
    }
}

fn parquet_options() -> TableParquetOptions {
    let mut p = TableParquetOptions::default();
    p.global.compression = Some("snappy".into());
    // A writer holds a whole row group in memory: 256k rows instead of 1M keeps that to a
    // few dozen MB per file while staying reader-friendly.
    p.global.max_row_group_size = 256 * 1024;
    p
}

/// Compute `df` into Parquet files in the folder `dir` (a work table: a stage's result
/// that later stages read but that is no output) and register `table` as those files, so
/// it is read from disk instead of held in memory. Returns its row count.
pub async fn spill_and_read_back(
    ctx: &SessionContext,
    table: &str,
    df: DataFrame,
    dir: &Location,
) -> Result<u64, PipelineError> {
    let label = format!("{table} (work table)");
    Ok(write_and_read_back(ctx, table, df, dir, &label).await?.1)
}

/// Write `df` as Parquet into `dir`, then register `table` as those files. Returns the
/// number of files and of rows; errors name `label`.
async fn write_and_read_back(
    ctx: &SessionContext,
    table: &str,
    df: DataFrame,
    dir: &Location,
    label: &str,
) -> Result<(usize, u64), PipelineError> {
    let written = write_files(df, dir, FileFormat::Parquet, label).await?;
    ctx.deregister_table(table).map_err(|e| out_err(label, e))?;
    ctx.register_parquet(table, dir.url.as_str(), ParquetReadOptions::default())
        .await
        .map_err(|e| out_err(label, e))?;
    Ok(written)
}

/// Write `df` into files in the folder `dir`; an empty result still gets a file, so
/// readers see the table and its columns. Returns the number of files and of rows.
async fn write_files(
    df: DataFrame,
    dir: &Location,
    format: FileFormat,
    label: &str,
) -> Result<(usize, u64), PipelineError> {
    let schema = Arc::new(df.schema().as_arrow().clone());
    let url = dir.url.as_str();
    let opts = DataFrameWriteOptions::new().with_single_file_output(false);
    let result = match format {
        FileFormat::Parquet => df.write_parquet(url, opts, Some(parquet_options())).await,
        FileFormat::Csv => {
            let csv = CsvOptions::default().with_has_header(true);
            df.write_csv(url, opts, Some(csv)).await
        }
        FileFormat::Jsonl => df.write_json(url, opts, Some(JsonOptions::default())).await,
    };
    let counts = result.map_err(|e| out_err(label, e.strip_backtrace()))?;
    let rows = crate::engine::count::single_count(&counts);
    let mut files = dir.list().await?.len();
    if files == 0 {
        let name = format!("part-0.{}", format.extension());
        dir.put(
            &name,
            empty_file(&schema, format).map_err(|e| out_err(label, e))?,
        )
        .await?;
        files = 1;
    }
    Ok((files, rows))
}

/// A file holding no rows but the table's columns (Parquet schema, CSV header).
fn empty_file(schema: &SchemaRef, format: FileFormat) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    match format {
        FileFormat::Parquet => {
            let mut w =
                ArrowWriter::try_new(&mut buf, schema.clone(), None).map_err(|e| e.to_string())?;
            w.write(&RecordBatch::new_empty(schema.clone()))
                .map_err(|e| e.to_string())?;
            w.close().map_err(|e| e.to_string())?;
        }
        FileFormat::Csv => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            buf.extend_from_slice(format!("{}\n", names.join(",")).as_bytes());
        }
        FileFormat::Jsonl => {}
    }
    Ok(buf)
}

/// The staging folder name of a lock scope: a short hash (lock keys hold paths).
pub fn scope_dir(scope: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(scope.as_bytes())[..8])
}
