//! SQL stages: one SELECT per `.sql` file, named by the file stem, with the tables it reads.

pub mod backtest;
pub mod checks;
pub mod executor;
pub mod graph;
pub mod incremental;
pub mod model;
pub mod model_summary;
pub mod model_tables;
pub mod plan;

use std::path::{Path, PathBuf};

use datafusion::common::config::Dialect;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::config::names::is_identifier;

/// One SQL stage as found on disk.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub file: PathBuf,
    pub sql: String,
    /// Tables the statement reads (CTE names excluded), lowercase, deduplicated.
    pub reads: Vec<String>,
    /// SQL (from a file) or a model fitted in Rust (from `[models.NAME]`).
    pub kind: StageKind,
}

#[derive(Debug, Clone)]
pub enum StageKind {
    Sql,
    Model(crate::config::ModelSpec),
}

/// Every stage of a pipeline: the SQL files and the `[models.NAME]` model stages.
pub fn load_pipeline(
    ctx: &SessionContext,
    pipeline: &crate::config::Pipeline,
) -> (Vec<Stage>, Vec<String>) {
    let (mut stages, problems) = load_all(ctx, &pipeline.sql_dir);
    stages.extend(model::load_all(pipeline));
    (stages, problems)
}

/// Find every `.sql` file under `dir` (sorted, subfolders included) and parse it.
/// Problems are collected per file so `validate` can report them all at once.
pub fn load_all(ctx: &SessionContext, dir: &Path) -> (Vec<Stage>, Vec<String>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    if let Err(e) = collect_sql_files(dir, &mut files) {
        problems.push(format!("cannot read SQL folder {}: {e}", dir.display()));
    }
    files.sort();
    let mut stages = Vec::new();
    for file in files {
        match load_one(ctx, &file) {
            Ok(stage) => stages.push(stage),
            Err(e) => problems.push(format!("{}: {e}", file.display())),
        }
    }
    (stages, problems)
}

fn collect_sql_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_sql_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
    Ok(())
}

fn load_one(ctx: &SessionContext, file: &Path) -> Result<Stage, String> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if !is_identifier(&name) {
        return Err(format!(
            "the file stem '{name}' is the table name and must be a lowercase identifier (a-z, 0-9, _)"
        ));
    }
    let sql = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let reads = parse_reads(ctx, &sql)?;
    Ok(Stage {
        name,
        file: file.to_path_buf(),
        sql,
        reads,
        kind: StageKind::Sql,
    })
}

/// Parse one SELECT statement and list the tables it references.
pub fn parse_reads(ctx: &SessionContext, sql: &str) -> Result<Vec<String>, String> {
    let state = ctx.state();
    let statement = state
        .sql_to_statement(sql, &Dialect::Generic)
        .map_err(|e| format!("SQL syntax error: {}", e.strip_backtrace()))?;
    match &statement {
        Statement::Statement(s) if matches!(s.as_ref(), SqlStatement::Query(_)) => {}
        _ => return Err("a stage must be one SELECT statement (WITH ... SELECT is fine)".into()),
    }
    let refs = state
        .resolve_table_references(&statement)
        .map_err(|e| e.strip_backtrace().to_string())?;
    let mut reads: Vec<String> = refs.iter().map(|r| r.table().to_string()).collect();
    reads.sort();
    reads.dedup();
    Ok(reads)
}
