//! Sources: find a source's files, check every file's columns before anything runs, and
//! register typed rows (`<name>`) and rejected rows (`_rejects_<name>`) for SQL to read.

pub mod files;
pub mod schema_check;
pub mod views;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::config::{FileFormat, Pipeline, Source};
use crate::engine::{Params, df_err, materialize, sql_frame};
use crate::error::{Blame, ConfigError, PipelineError};
use crate::storage;

/// What the run read from one source, for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub url: String,
    /// What the URL named: a folder, a file, or a glob.
    pub selection: String,
    pub files: Vec<InputFile>,
    /// Files not read because another file of the source has the same bytes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<files::SkippedFile>,
    pub rows_read: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    pub path: String,
    pub bytes: u64,
    /// Rows in the file as its footer says (Parquet only; CSV rows are counted per source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
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

/// The SQL of a source's checked view, for `explain`.
pub struct RegisteredSource {
    pub report: SourceReport,
    pub checked_sql: String,
}

/// Register every source; all schema problems of all files are reported together.
pub async fn register_all(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    params: &Params,
) -> Result<Vec<RegisteredSource>, PipelineError> {
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for source in &pipeline.sources {
        match discover(ctx, source).await {
            Ok(d) => found.push(d),
            Err(PipelineError::Config(ConfigError::Many(mut p))) => problems.append(&mut p),
            // Storage and network failures are not configuration problems: a retry may help.
            Err(e) if e.blame() != Blame::User => return Err(e),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
    }
    let mut out = Vec::new();
    let mut rejects = Vec::new();
    for d in found {
        rejects.push(format!(
            "select * from {}",
            views::ident(&format!("_rejects_{}", d.source.name))
        ));
        out.push(register_one(ctx, pipeline, params, d).await?);
    }
    let quarantine = if rejects.is_empty() {
        "select cast(null as varchar) as source, cast(null as varchar) as reason, cast(null as varchar) as record where false".to_string()
    } else {
        rejects.join("\nunion all\n")
    };
    let df = sql_frame(ctx, &quarantine, params)
        .await
        .map_err(df_err("quarantine"))?;
    ctx.register_table("quarantine", df.into_view())
        .map_err(df_err("quarantine"))?;
    Ok(out)
}

/// Register every source as an empty table of its declared columns and types, so stages
/// can still be planned (by `validate`) when the real files have problems.
pub fn register_declared_empty(
    ctx: &SessionContext,
    pipeline: &Pipeline,
) -> Result<(), PipelineError> {
    use crate::config::ColumnKind;
    use datafusion::arrow::datatypes::TimeUnit;
    let mut names: Vec<&str> = vec!["quarantine"];
    let mut tables = vec![Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("record", DataType::Utf8, true),
    ]))];
    for s in &pipeline.sources {
        names.push(&s.name);
        tables.push(Arc::new(Schema::new(
            s.columns
                .iter()
                .map(|c| {
                    let t = match c.kind {
                        ColumnKind::Id | ColumnKind::Text => DataType::Utf8,
                        ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Nanosecond, None),
                        ColumnKind::Number => DataType::Float64,
                        ColumnKind::Integer => DataType::Int64,
                        ColumnKind::Boolean => DataType::Boolean,
                    };
                    Field::new(&c.name, t, true)
                })
                .collect::<Vec<_>>(),
        )));
    }
    for (name, schema) in names.into_iter().zip(tables) {
        let table = MemTable::try_new(schema, vec![vec![]]).map_err(df_err(name))?;
        let _ = ctx.deregister_table(name);
        ctx.register_table(name, Arc::new(table))
            .map_err(df_err(name))?;
    }
    Ok(())
}

struct Discovered<'a> {
    source: &'a Source,
    url: String,
    selection: String,
    files: Vec<(ListingTableUrl, InputFile)>,
    skipped: Vec<files::SkippedFile>,
    schema: SchemaRef,
}

/// How the source's files are read. Parquet takes the session's Parquet options: text as
/// plain Utf8 (the default format would decode every string column as Utf8View, only for
/// the checks to cast it back, about 4% of a 12M-row run).
fn file_format(state: &SessionState, source: &Source) -> Arc<dyn DfFileFormat> {
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
async fn discover<'a>(
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

/// The internal tables behind a source `x` are named `<prefix>x`.
pub const INTERNAL_PREFIXES: [&str; 7] = [
    "_raw_",
    "_checked_",
    "_hashed_",
    "_shared_",
    "_repeated_",
    "_valid_",
    "_rejects_",
];

async fn register_one(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    params: &Params,
    d: Discovered<'_>,
) -> Result<RegisteredSource, PipelineError> {
    let name = &d.source.name;
    let err = df_err(name);
    let raw_name = format!("_raw_{name}");
    let schema = if d.files.is_empty() {
        // An absent optional source: an empty table with the declared columns.
        let declared: Vec<Field> = d
            .source
            .columns
            .iter()
            .map(|c| Field::new(&c.file_name, DataType::Utf8, true))
            .collect();
        let schema = Arc::new(Schema::new(declared));
        crate::engine::keep_batches(ctx, &raw_name, schema.clone(), vec![])
            .await
            .map_err(&err)?;
        schema
    } else {
        let urls = d.files.iter().map(|(u, _)| u.clone()).collect();
        let options = ListingOptions::new(file_format(&ctx.state(), d.source))
            .with_file_extension(d.source.format.extension());
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(d.schema.clone());
        let table = ListingTable::try_new(config).map_err(&err)?;
        ctx.register_table(&raw_name, Arc::new(table))
            .map_err(&err)?;
        d.schema.clone()
    };
    let rows_read = count(ctx, &raw_name, params).await?;
    if rows_read == 0 && !d.source.optional {
        return Err(PipelineError::Source {
            source_name: name.clone(),
            message: format!(
                "the {} file(s) at {} hold no rows: there is nothing to compute",
                d.files.len(),
                d.url
            ),
        });
    }
    let tz = pipeline.timezone.name();
    let checked_name = format!("_checked_{name}");
    let checked_sql = views::checked_sql(d.source, &raw_name, &schema, tz);
    let checked = sql_frame(ctx, &checked_sql, params).await.map_err(&err)?;
    ctx.register_table(&checked_name, checked.into_view())
        .map_err(&err)?;
    let valid_name = format!("_valid_{name}");
    // Duplicate removal (see `views`): the few repeated rows are kept, read by the clean
    // rows and by the rejects.
    let t = views::DedupeTables {
        hashed: &format!("_hashed_{name}"),
        shared: &format!("_shared_{name}"),
        repeated: &format!("_repeated_{name}"),
    };
    if views::dedupe(d.source) != views::Dedupe::None {
        let hashed = sql_frame(ctx, &views::hashed_sql(d.source, &checked_name), params)
            .await
            .map_err(&err)?;
        ctx.register_table(t.hashed, hashed.into_view())
            .map_err(&err)?;
        for (table, sql) in [
            (t.shared, views::shared_hashes_sql(t.hashed)),
            (t.repeated, views::repeated_sql(d.source, &checked_name, &t)),
        ] {
            let df = sql_frame(ctx, &sql, params).await.map_err(&err)?;
            materialize(ctx, table, df).await.map_err(&err)?;
        }
    }
    let valid_sql = views::valid_sql(d.source, &checked_name, &t);
    // A view: the stages reading the source stream it from the files.
    let valid = sql_frame(ctx, &valid_sql, params).await.map_err(&err)?;
    ctx.register_table(&valid_name, valid.into_view())
        .map_err(&err)?;
    let columns: Vec<String> = d
        .source
        .columns
        .iter()
        .map(|c| views::ident(&c.name))
        .collect();
    let typed = sql_frame(
        ctx,
        &format!(
            "select {} from {}",
            columns.join(", "),
            views::ident(&valid_name)
        ),
        params,
    )
    .await
    .map_err(&err)?;
    ctx.register_table(name.as_str(), typed.into_view())
        .map_err(&err)?;
    let rejects = sql_frame(
        ctx,
        &views::rejects_sql(d.source, &checked_name, t.repeated, &schema),
        params,
    )
    .await
    .map_err(&err)?;
    ctx.register_table(format!("_rejects_{name}"), rejects.into_view())
        .map_err(&err)?;
    Ok(RegisteredSource {
        report: SourceReport {
            name: name.clone(),
            url: d.url,
            selection: d.selection,
            files: d.files.into_iter().map(|(_, f)| f).collect(),
            skipped: d.skipped,
            rows_read,
        },
        checked_sql,
    })
}

async fn count(ctx: &SessionContext, table: &str, params: &Params) -> Result<u64, PipelineError> {
    let df = sql_frame(
        ctx,
        &format!("select count(*) as n from {}", views::ident(table)),
        params,
    )
    .await
    .map_err(df_err(table))?;
    let batches = df.collect().await.map_err(df_err(table))?;
    Ok(crate::engine::count::single_count(&batches))
}
