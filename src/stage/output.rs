//! Writing output tables: each run stages its files, and only a successful run swaps them
//! into `<output>/<table>/as_of=<YYYY-MM-DD>/`, so readers never see half a table and a
//! rerun of the same `as_of` replaces it.

use datafusion::common::config::{CsvOptions, JsonOptions, TableParquetOptions};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use object_store::ObjectStoreExt;

use crate::config::FileFormat;
use crate::error::PipelineError;
use crate::storage::Location;

/// Where one run writes: the output root and this run's private staging folder.
#[derive(Clone)]
pub struct OutputWriter {
    pub root: Location,
    staging: Location,
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

fn out_err(table: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Output {
        table: table.to_string(),
        message: e.to_string(),
    }
}

impl OutputWriter {
    pub fn new(root: Location, as_of: chrono::NaiveDate, run_id: &str) -> Self {
        let staging = root.child("_staging").child(run_id);
        OutputWriter {
            root,
            staging,
            partition: format!("as_of={}", as_of.format("%Y-%m-%d")),
        }
    }

    /// The final folder of a table for this run's `as_of`.
    pub fn final_location(&self, table: &str) -> Location {
        self.root.child(table).child(&self.partition)
    }

    /// Write a registered table into this run's staging folder.
    pub async fn stage(
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
        let (written, rows) = self.stage_frame(table, df, FileFormat::Parquet).await?;
        let dir = self.staging.child(table);
        ctx.deregister_table(table).map_err(|e| out_err(table, e))?;
        ctx.register_parquet(table, dir.url.as_str(), ParquetReadOptions::default())
            .await
            .map_err(|e| out_err(table, e))?;
        Ok((written, rows))
    }

    async fn stage_frame(
        &self,
        table: &str,
        df: DataFrame,
        format: FileFormat,
    ) -> Result<(WrittenTable, u64), PipelineError> {
        let dir = self.staging.child(table);
        let schema = Arc::new(df.schema().as_arrow().clone());
        let url = dir.url.as_str();
        let opts = DataFrameWriteOptions::new().with_single_file_output(false);
        let result = match format {
            FileFormat::Parquet => {
                let mut p = TableParquetOptions::default();
                p.global.compression = Some("snappy".into());
                // A writer holds a whole row group in memory: 256k rows instead of 1M
                // keeps that to a few dozen MB per file while staying reader-friendly.
                p.global.max_row_group_size = 256 * 1024;
                df.write_parquet(url, opts, Some(p)).await
            }
            FileFormat::Csv => {
                let csv = CsvOptions::default().with_has_header(true);
                df.write_csv(url, opts, Some(csv)).await
            }
            FileFormat::Jsonl => df.write_json(url, opts, Some(JsonOptions::default())).await,
        };
        let counts = result.map_err(|e| out_err(table, e.strip_backtrace()))?;
        let rows = crate::engine::single_count(&counts);
        let mut files = dir.list().await?.len();
        if files == 0 {
            // An empty result still gets a file, so readers see the table and its columns.
            let name = format!("part-0.{}", format.extension());
            dir.put(
                &name,
                empty_file(&schema, format).map_err(|e| out_err(table, e))?,
            )
            .await?;
            files = 1;
        }
        let written = WrittenTable {
            table: table.to_string(),
            format,
            path: self.final_location(table).url.to_string(),
            files,
        };
        Ok((written, rows))
    }

    /// Move every staged table into place, replacing what an earlier run of the same
    /// `as_of` wrote. On a local disk each table switches with a directory rename.
    pub async fn commit(&self, tables: &[WrittenTable]) -> Result<(), PipelineError> {
        for t in tables {
            let staged = self.staging.child(&t.table);
            let target = self.final_location(&t.table);
            match (staged.local_dir(), target.local_dir()) {
                (Some(from), Some(to)) => swap_local(&t.table, &from, &to)?,
                _ => {
                    target.delete_all().await?;
                    for meta in staged.list().await? {
                        let name = meta
                            .location
                            .as_ref()
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        let dest = target.prefix.clone().join(name.as_str());
                        target
                            .store
                            .copy(&meta.location, &dest)
                            .await
                            .map_err(|e| out_err(&t.table, e))?;
                    }
                    target.put("_SUCCESS", Vec::new()).await?;
                }
            }
        }
        self.discard().await
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
        if let Some(parent) = self.root.child("_staging").local_dir() {
            let _ = std::fs::remove_dir(parent); // only succeeds when empty
        }
        Ok(())
    }
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

fn swap_local(
    table: &str,
    from: &std::path::Path,
    to: &std::path::Path,
) -> Result<(), PipelineError> {
    let err = |e: std::io::Error| out_err(table, e);
    std::fs::write(from.join("_SUCCESS"), b"").map_err(err)?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let old = from.with_file_name(format!("_old_{table}"));
    let had_old = match std::fs::rename(to, &old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(err(e)),
    };
    std::fs::rename(from, to).map_err(err)?;
    if had_old {
        std::fs::remove_dir_all(&old).map_err(err)?;
    }
    Ok(())
}
