//! Sources: find a source's files, check every file's columns before anything runs, and
//! register typed rows (`<name>`) and rejected rows (`_rejects_<name>`) for SQL to read.

mod discover;
pub mod files;
pub mod schema_check;
pub mod views;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::config::{Pipeline, Source};
use crate::engine::{Params, df_err, materialize, sql_frame};
use crate::error::{Blame, ConfigError, PipelineError};

pub use discover::InputFile;
use discover::{Discovered, discover, file_format};

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
    let schema = register_raw(ctx, &d, &raw_name).await?;
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
        register_dedupe(ctx, d.source, &checked_name, &t, params).await?;
    }
    let valid_sql = views::valid_sql(d.source, &checked_name, &t);
    // A view: the stages reading the source stream it from the files.
    let valid = sql_frame(ctx, &valid_sql, params).await.map_err(&err)?;
    ctx.register_table(&valid_name, valid.into_view())
        .map_err(&err)?;
    register_typed(ctx, d.source, &valid_name, params).await?;
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

/// The source's files as table `raw_name`, read as found; an absent optional source is
/// an empty table of the declared columns (all text). Returns the table's schema.
async fn register_raw(
    ctx: &SessionContext,
    d: &Discovered<'_>,
    raw_name: &str,
) -> Result<SchemaRef, PipelineError> {
    let err = df_err(&d.source.name);
    if d.files.is_empty() {
        let declared: Vec<Field> = d
            .source
            .columns
            .iter()
            .map(|c| Field::new(&c.file_name, DataType::Utf8, true))
            .collect();
        let schema = Arc::new(Schema::new(declared));
        crate::engine::keep_batches(ctx, raw_name, schema.clone(), vec![])
            .await
            .map_err(&err)?;
        return Ok(schema);
    }
    let urls = d.files.iter().map(|(u, _)| u.clone()).collect();
    let options = ListingOptions::new(file_format(&ctx.state(), d.source))
        .with_file_extension(d.source.format.extension());
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(d.schema.clone());
    let table = ListingTable::try_new(config).map_err(&err)?;
    ctx.register_table(raw_name, Arc::new(table))
        .map_err(&err)?;
    Ok(d.schema.clone())
}

/// The duplicate-removal tables of `t`: the checked rows' hashes (a view), then the
/// hashes seen more than once and the repeated rows themselves (kept in memory).
async fn register_dedupe(
    ctx: &SessionContext,
    source: &Source,
    checked_name: &str,
    t: &views::DedupeTables<'_>,
    params: &Params,
) -> Result<(), PipelineError> {
    let err = df_err(&source.name);
    let hashed = sql_frame(ctx, &views::hashed_sql(source, checked_name), params)
        .await
        .map_err(&err)?;
    ctx.register_table(t.hashed, hashed.into_view())
        .map_err(&err)?;
    for (table, sql) in [
        (t.shared, views::shared_hashes_sql(t.hashed)),
        (t.repeated, views::repeated_sql(source, checked_name, t)),
    ] {
        let df = sql_frame(ctx, &sql, params).await.map_err(&err)?;
        materialize(ctx, table, df).await.map_err(&err)?;
    }
    Ok(())
}

/// The table the stages read, under the source's name: the valid rows' declared columns.
async fn register_typed(
    ctx: &SessionContext,
    source: &Source,
    valid_name: &str,
    params: &Params,
) -> Result<(), PipelineError> {
    let err = df_err(&source.name);
    let columns: Vec<String> = source
        .columns
        .iter()
        .map(|c| views::ident(&c.name))
        .collect();
    let typed = sql_frame(
        ctx,
        &format!(
            "select {} from {}",
            columns.join(", "),
            views::ident(valid_name)
        ),
        params,
    )
    .await
    .map_err(&err)?;
    ctx.register_table(source.name.as_str(), typed.into_view())
        .map_err(&err)?;
    Ok(())
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

/// The SQL of the values of `key` in the rows a night adds to source `source`: the rows of
/// `new_files` (paths as the source's report names them), and, when `since` is given and
/// the source has a time column, the rows of every file from `since` on (rows the last
/// night left out as after its `as_of`; this night's `as_of` still bounds them). Rows a
/// check rejects count too: touching a key too many is only work. `None`: no such rows.
pub async fn added_keys_sql(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    source: &Source,
    new_files: &[String],
    key: &str,
    since: Option<chrono::NaiveDate>,
    params: &Params,
) -> Result<Option<String>, PipelineError> {
    let name = &source.name;
    let err = df_err(name);
    let key_col = views::ident(key);
    let mut parts = Vec::new();
    let raw_name = format!("_raw_{name}");
    let checked_name = format!("_checked_{name}");
    if !new_files.is_empty() {
        let schema = ctx
            .table_provider(raw_name.as_str())
            .await
            .map_err(&err)?
            .schema();
        let urls = new_files
            .iter()
            .map(datafusion::datasource::listing::ListingTableUrl::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(&err)?;
        let options = ListingOptions::new(file_format(&ctx.state(), source))
            .with_file_extension(source.format.extension());
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema.clone());
        let new_raw = format!("_inc_raw_{name}");
        let new_checked = format!("_inc_checked_{name}");
        let _ = ctx.deregister_table(new_raw.as_str());
        ctx.register_table(
            new_raw.as_str(),
            Arc::new(ListingTable::try_new(config).map_err(&err)?),
        )
        .map_err(&err)?;
        let sql = views::checked_sql(source, &new_raw, &schema, pipeline.timezone.name());
        let df = sql_frame(ctx, &sql, params).await.map_err(&err)?;
        let _ = ctx.deregister_table(new_checked.as_str());
        ctx.register_table(new_checked.as_str(), df.into_view())
            .map_err(&err)?;
        parts.push(format!(
            "select {key_col} from {} where {key_col} is not null",
            views::ident(&new_checked)
        ));
    }
    if let (Some(since), Some(time)) = (since, &source.time_column) {
        parts.push(format!(
            "select {key_col} from {} where {key_col} is not null and {} >= timestamp '{since} 00:00:00'",
            views::ident(&checked_name),
            views::ident(time)
        ));
    }
    Ok((!parts.is_empty()).then(|| parts.join("\nunion all\n")))
}
