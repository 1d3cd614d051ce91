//! Finding a source's files and checking each one before anything is read: exact copies
//! skipped, every file's schema checked against the declared columns, CSV headers compared,
//! and the table schema worked out from all files.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::files;
use super::schema_check;
use crate::config::{FileFormat, Source};
use crate::engine::df_err;
use crate::error::{ConfigError, PipelineError};
use crate::storage;

#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    pub path: String,
    pub bytes: u64,
    /// Rows in the file as its footer says (Parquet only; CSV rows are counted per source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The store's version of the file (its e-tag, else its modification time): a file
    /// rewritten in place has a new one. Remembered by the incremental nights.
    #[serde(skip)]
    pub version: String,
}

/// A Parquet file's row count from its footer (no data is read).
async fn parquet_rows(
    store: &Arc<dyn object_store::ObjectStore>,
    meta: &object_store::ObjectMeta,
) -> Option<u64> {
    let metadata = DFParquetMetadata::new(store.as_ref(), meta)
        .fetch_metadata()
        .await
        .ok()?;
    u64::try_from(metadata.file_metadata().num_rows()).ok()
}

pub(super) struct Discovered<'a> {
    pub(super) source: &'a Source,
    pub(super) url: String,
    pub(super) selection: String,
    pub(super) files: Vec<(ListingTableUrl, InputFile)>,
    pub(super) skipped: Vec<files::SkippedFile>,
    pub(super) schema: SchemaRef,
}

/// How the source's files are read. Parquet takes the session's Parquet options: text as
/// plain Utf8 (the default format would decode every string column as Utf8View, only for
/// the checks to cast it back, about 4% of a 12M-row run).
pub(super) fn file_format(state: &SessionState, source: &Source) -> Arc<dyn DfFileFormat> {
    match source.format {
        FileFormat::Csv => Arc::new(
            CsvFormat::default()
                .with_has_header(true)
                .with_delimiter(source.delimiter)
                .with_schema_infer_max_rec(0),
        ),
        _ => Arc::new(ParquetFormat::default().with_options(state.table_options().parquet.clone())),
    }
}

/// List the files, skip exact copies, check each one's schema, and work out the table
/// schema. Every problem of every file is reported together.
pub(super) async fn discover<'a>(
    ctx: &SessionContext,
    source: &'a Source,
) -> Result<Discovered<'a>, PipelineError> {
    let (loc, selection) = storage::register_selection(ctx, &source.url).await?;
    let ext = format!(".{}", source.format.extension());
    let metas = loc.select(&selection, &ext).await?;
    let same_as = files::identical_content(&loc.store, &metas)
        .await
        .map_err(|e| storage::storage_err(&loc.url, e))?;
    let state = ctx.state();
    let format = file_format(&state, source);
    let mut problems = Vec::new();
    // Each column's type so far, and the file it was first seen in.
    let mut fields: Vec<(Field, String)> = Vec::new();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut first_header: Option<(String, Vec<String>)> = None;
    for (meta, same) in metas.iter().zip(&same_as) {
        let file_url = file_url_of(&loc, meta);
        if let Some(first) = same {
            let same_as = file_url_of(&loc, &metas[*first]);
            tracing::warn!(source = %source.name, file = %file_url, same_as = %same_as,
                "skipped: the same bytes as another file of the source");
            skipped.push(files::SkippedFile {
                path: file_url,
                same_as,
                bytes: meta.size,
            });
            continue;
        }
        if meta.size == 0 {
            problems.push(format!(
                "source '{}', file {file_url}: the file is empty (0 bytes); remove it or deliver it again",
                source.name
            ));
            continue;
        }
        let schema = match file_schema(&state, &format, &loc, meta, source).await {
            Ok(schema) => schema,
            Err(problem) => {
                problems.push(format!(
                    "source '{}', file {file_url}: {problem}",
                    source.name
                ));
                continue;
            }
        };
        if source.format == FileFormat::Csv {
            check_csv_header(&mut first_header, &schema, source, &file_url, &mut problems);
        }
        for m in schema_check::check(&source.columns, &schema) {
            problems.push(
                PipelineError::Schema {
                    source_name: source.name.clone(),
                    file: file_url.clone(),
                    column: m.column,
                    problem: m.problem,
                }
                .to_string(),
            );
        }
        merge_fields(&mut fields, &schema, source, &file_url, &mut problems);
        let url = ListingTableUrl::parse(&file_url).map_err(df_err(&source.name))?;
        let rows = match source.format {
            FileFormat::Parquet => parquet_rows(&loc.store, meta).await,
            _ => None,
        };
        files.push((
            url,
            InputFile {
                path: file_url,
                bytes: meta.size,
                rows,
                version: meta
                    .e_tag
                    .clone()
                    .unwrap_or_else(|| meta.last_modified.to_rfc3339()),
            },
        ));
    }
    if metas.is_empty() && !source.optional {
        problems.push(no_files(source, &loc, &selection, &ext));
    }
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
    }
    tracing::info!(source = %source.name, selection = %selection.describe(), files = files.len(), skipped = skipped.len(), "source files");
    Ok(Discovered {
        source,
        url: storage::redacted(&loc.url),
        selection: selection.describe(),
        files,
        skipped,
        schema: Arc::new(Schema::new(
            fields.into_iter().map(|(f, _)| f).collect::<Vec<_>>(),
        )),
    })
}

/// A file's schema as the source reads it (CSV: every column as text), or why the file
/// cannot be read.
async fn file_schema(
    state: &SessionState,
    format: &Arc<dyn DfFileFormat>,
    loc: &storage::Location,
    meta: &object_store::ObjectMeta,
    source: &Source,
) -> Result<Schema, String> {
    let schema = format
        .infer_schema(state, &loc.store, std::slice::from_ref(meta))
        .await
        .map_err(|e| {
            format!(
                "cannot be read as {} ({}); remove it or deliver it again",
                source.format.extension(),
                first_line(&e.to_string())
            )
        })?;
    Ok(match source.format {
        // CSV is read as text and parsed row by row, so bad values are quarantined.
        FileFormat::Csv => Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ),
        _ => schema.as_ref().clone(),
    })
}

/// CSV columns are read by position: every file must have the first file's header.
fn check_csv_header(
    first_header: &mut Option<(String, Vec<String>)>,
    schema: &Schema,
    source: &Source,
    file_url: &str,
    problems: &mut Vec<String>,
) {
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    match first_header {
        None => *first_header = Some((file_url.to_string(), names.iter().map(|n| n.to_string()).collect())),
        Some((first, header)) if header.iter().ne(names.iter().copied()) => problems.push(format!(
            "source '{}', file {file_url}: header ({}) differs from {first} ({}); CSV files of one source must have the same columns in the same order",
            source.name,
            names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","),
            header.join(",")
        )),
        Some(_) => {}
    }
}

/// Adds a file's columns the source reads to the table's `fields` (each with the file it
/// was first seen in), widening a type two files hold differently where no value is lost.
fn merge_fields(
    fields: &mut Vec<(Field, String)>,
    schema: &Schema,
    source: &Source,
    file_url: &str,
    problems: &mut Vec<String>,
) {
    for f in schema.fields() {
        let wanted = source.format == FileFormat::Csv
            || source.columns.iter().any(|c| &c.file_name == f.name());
        if !wanted {
            continue;
        }
        match fields.iter_mut().find(|(g, _)| g.name() == f.name()) {
            None => fields.push((f.as_ref().clone().with_nullable(true), file_url.to_string())),
            Some((g, first)) => match files::unify(g.data_type(), f.data_type()) {
                Some(t) => *g = g.clone().with_data_type(t),
                None => problems.push(format!(
                    "source '{}', column '{}': {} in {first} but {} in {file_url}; files of one source must hold one type, or types that convert without loss (integers and decimals to double, text)",
                    source.name,
                    f.name(),
                    g.data_type(),
                    f.data_type()
                )),
            },
        }
    }
}

/// The problem of a source that is not optional and has no file.
fn no_files(
    source: &Source,
    loc: &storage::Location,
    selection: &storage::Selection,
    ext: &str,
) -> String {
    let what = match selection {
        storage::Selection::Folder => format!("no {ext} files found in the folder {}", loc.url),
        other => format!("no files match the {} in {}", other.describe(), loc.url),
    };
    format!(
        "source '{}': {what} (set optional = true if the source may be absent{})",
        source.name,
        if loc.url.path().contains("/demo-data/") {
            "; `winback demo` generates demo data"
        } else {
            ""
        }
    )
}

fn file_url_of(loc: &storage::Location, meta: &object_store::ObjectMeta) -> String {
    format!(
        "{}://{}/{}",
        loc.url.scheme(),
        loc.url.authority(),
        meta.location
    )
}

/// The first line of an error: readers' messages can run on with backtraces.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}
