//! `[sources.NAME]` in the pipeline file: each source's location, format, typed columns and
//! row checks, resolved from the raw file (every problem reported at once), and the one
//! rule a source may not break: opt-outs are never cut by `as_of`.

use std::collections::BTreeMap;
use std::path::Path;

use super::file_format::FileFormat;
use super::names::is_identifier;
use super::raw::RawSource;

/// How a source column is typed and checked row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// An identifier: strings or integers, read as text; null or empty is a row problem.
    Id,
    Text,
    /// A timestamp or date, or text that parses as one.
    Timestamp,
    /// Any numeric type, or text that parses as a number, read as a 64-bit float.
    Number,
    Integer,
    Boolean,
}

impl ColumnKind {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "id" => ColumnKind::Id,
            "text" => ColumnKind::Text,
            "timestamp" => ColumnKind::Timestamp,
            "number" => ColumnKind::Number,
            "integer" => ColumnKind::Integer,
            "boolean" => ColumnKind::Boolean,
            other => {
                return Err(format!(
                    "unknown column type '{other}' (expected id, text, timestamp, number, integer or boolean)"
                ));
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// The canonical name SQL stages use.
    pub name: String,
    /// The name in the files.
    pub file_name: String,
    pub kind: ColumnKind,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub url: String,
    pub format: FileFormat,
    pub columns: Vec<ColumnSpec>,
    pub time_column: Option<String>,
    pub duplicate_key: Vec<String>,
    pub optional: bool,
    /// Canonical names of columns with personal data, masked in quarantine records.
    pub personal: Vec<String>,
    pub delimiter: u8,
}

/// `[sources.NAME]`, with the URLs `--input NAME=URL` replaces.
pub(super) fn sources(
    raw: &BTreeMap<String, RawSource>,
    base: &Path,
    inputs: &[(String, String)],
    problems: &mut Vec<String>,
) -> Vec<Source> {
    let mut sources = Vec::new();
    for (name, src) in raw {
        match resolve_source(name, src, base) {
            Ok(s) => sources.push(s),
            Err(mut e) => problems.append(&mut e),
        }
    }
    for (name, url) in inputs {
        match sources.iter_mut().find(|s| &s.name == name) {
            Some(s) => s.url = url.clone(),
            None => problems.push(format!(
                "--input {name}: no source named '{name}' (sources: {})",
                raw.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
    sources
}

/// The source campaigns read opt-outs from. Never cut by `as_of`: an unsubscribe is
/// honoured by every send after it, whatever `as_of` the run is for.
pub const OPT_OUTS_SOURCE: &str = "unsubscribes";

fn resolve_source(name: &str, src: &RawSource, base: &Path) -> Result<Source, Vec<String>> {
    let mut problems = Vec::new();
    let at = |m: String| format!("sources.{name}: {m}");
    if !is_identifier(name) {
        problems.push(at(
            "source names must be lowercase identifiers (a-z, 0-9, _)".into(),
        ));
    }
    let format = match src.format.as_deref() {
        None => FileFormat::Parquet,
        Some(f) => FileFormat::parse(f, false).unwrap_or_else(|e| {
            problems.push(at(e));
            FileFormat::Parquet
        }),
    };
    let mut columns = Vec::new();
    for (col, decl) in &src.columns {
        let (kind, required) = match decl.strip_suffix('?') {
            Some(k) => (k, false),
            None => (decl.as_str(), true),
        };
        match ColumnKind::parse(kind) {
            Ok(kind) => columns.push(ColumnSpec {
                name: col.clone(),
                file_name: src.rename.get(col).cloned().unwrap_or_else(|| col.clone()),
                kind,
                required,
            }),
            Err(e) => problems.push(at(format!("columns.{col}: {e}"))),
        }
    }
    for col in src.rename.keys() {
        if !src.columns.contains_key(col) {
            problems.push(at(format!("rename.{col}: no such column in columns")));
        }
    }
    if name == OPT_OUTS_SOURCE && src.time_column.is_some() {
        problems.push(at(
            "time_column would hide from the run every opt-out made on or after its as_of \
             (a backfill with --send would message people who unsubscribed since): remove \
             it; opt-outs are honoured by every send after them, whatever the as_of"
                .into(),
        ));
    }
    if let Some(tc) = &src.time_column {
        match columns.iter().find(|c| &c.name == tc) {
            Some(c) if c.kind == ColumnKind::Timestamp => {}
            Some(_) => problems.push(at(format!("time_column '{tc}' must have type timestamp"))),
            None => problems.push(at(format!("time_column '{tc}' is not a declared column"))),
        }
    }
    for key in &src.duplicate_key {
        if !src.columns.contains_key(key) {
            problems.push(at(format!(
                "duplicate_key '{key}' is not a declared column"
            )));
        }
    }
    for col in &src.personal {
        if !src.columns.contains_key(col) {
            problems.push(at(format!("personal '{col}' is not a declared column")));
        }
    }
    let delimiter = match src.delimiter.as_deref() {
        None => b',',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            problems.push(at(format!("delimiter '{d}' must be one character")));
            b','
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Source {
        name: name.to_string(),
        url: relative_to(base, &src.url),
        format,
        columns,
        time_column: src.time_column.clone(),
        duplicate_key: src.duplicate_key.clone(),
        optional: src.optional,
        personal: src.personal.clone(),
        delimiter,
    })
}

/// A URL stays as written; a relative path is taken relative to the pipeline file.
pub(super) fn relative_to(base: &Path, url: &str) -> String {
    if url.contains("://") || Path::new(url).is_absolute() {
        url.to_string()
    } else {
        base.join(url).to_string_lossy().into_owned()
    }
}
