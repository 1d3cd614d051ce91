//! The SQL that turns a raw source into typed rows plus a `_reason` for rows that fail.
//!
//! Generated once per source from its declared columns, shown by `winback explain`,
//! and bound to `$as_of_ts` like any stage: nothing is pasted into the text.

use datafusion::arrow::datatypes::Schema;

use super::schema_check::{RawShape, shape};
use crate::config::{ColumnKind, ColumnSpec, Source};

/// A time of day followed by a UTC offset, at the end of a text timestamp.
const OFFSET_SUFFIX: &str = r"(?i)\d:\d\d(:\d\d(\.\d+)?)?\s*(z|[+-]\d\d(:?\d\d)?)$";

/// Quote an identifier for SQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Id | ColumnKind::Text => "varchar",
        ColumnKind::Timestamp => "timestamp",
        ColumnKind::Number => "double",
        ColumnKind::Integer => "bigint",
        ColumnKind::Boolean => "boolean",
    }
}

/// One `name=value` pair of a rejected row's record; personal data keeps only its last
/// two characters, so the row can be found without copying the e-mail or phone number.
fn record_pair(label: &str, value_sql: &str, personal: bool) -> String {
    let value = format!("cast({value_sql} as varchar)");
    let shown = if personal {
        format!("case when {value} is null then 'NULL' else '***' || right({value}, 2) end")
    } else {
        format!("coalesce({value}, 'NULL')")
    };
    format!("'{}=' || {shown}", label.replace('\'', "''"))
}

/// A rejected row's record: `name=value` pairs in the file's column order, the value read
/// from the column `column(c)` names. `absent`: also the declared columns the files do not
/// have (after the others, as NULL).
fn record_sql(
    source: &Source,
    schema: &Schema,
    column: impl Fn(&ColumnSpec) -> &String,
    absent: bool,
) -> String {
    let mut columns: Vec<(usize, &ColumnSpec)> = source
        .columns
        .iter()
        .map(|c| (schema.index_of(&c.file_name).unwrap_or(usize::MAX), c))
        .filter(|(i, _)| absent || *i != usize::MAX)
        .collect();
    columns.sort_by_key(|(i, _)| *i);
    columns
        .into_iter()
        .map(|(_, c)| {
            record_pair(
                &c.file_name,
                &ident(column(c)),
                source.personal.contains(&c.name),
            )
        })
        .collect::<Vec<_>>()
        .join(" || ', ' || ")
}

/// Typed expression and failure conditions for one declared column.
struct ColumnSql {
    typed: String,
    /// (condition, reason) in the order they are checked.
    problems: Vec<(String, String)>,
}

fn column_sql(col: &ColumnSpec, schema: &Schema, timezone: &str) -> ColumnSql {
    let raw = ident(&col.file_name);
    let ty = sql_type(col.kind);
    let Ok(field) = schema.field_with_name(&col.file_name) else {
        // An optional column that the files do not have.
        return ColumnSql {
            typed: format!("cast(null as {ty})"),
            problems: vec![],
        };
    };
    let shape = shape(col.kind, field.data_type()).unwrap_or(RawShape::Native);
    let missing = format!("missing_{}", col.name);
    let bad = format!("bad_{}", col.name);
    let finite = |v: &str| format!("(isnan({v}) or {v} in ('inf'::double, '-inf'::double))");
    let (typed, mut problems) = match (col.kind, shape) {
        (ColumnKind::Id, _) => {
            let typed = format!("nullif(btrim(cast({raw} as varchar)), '')");
            let cond = format!("{typed} is null");
            (typed, vec![(cond, missing)])
        }
        (ColumnKind::Text, _) => (format!("cast({raw} as varchar)"), vec![]),
        (ColumnKind::Timestamp, RawShape::Text) => {
            let trimmed = format!("nullif(btrim({raw}), '')");
            let typed = typed_timestamp(&trimmed, RawShape::Text, timezone);
            let problems = vec![
                (format!("{trimmed} is null"), missing),
                (format!("{typed} is null"), bad),
            ];
            (typed, problems)
        }
        (_, RawShape::Text) => {
            let trimmed = format!("nullif(btrim({raw}), '')");
            let typed = format!("try_cast({trimmed} as {ty})");
            let mut problems = vec![
                (format!("{trimmed} is null"), missing),
                (format!("{typed} is null"), bad.clone()),
            ];
            if col.kind == ColumnKind::Number {
                problems.push((finite(&typed), bad));
            }
            (typed, problems)
        }
        (ColumnKind::Timestamp, shape) => {
            // Values out of the nanosecond range are bad rows.
            let typed = typed_timestamp(&raw, shape, timezone);
            let problems = vec![
                (format!("{raw} is null"), missing),
                (format!("{typed} is null"), bad),
            ];
            (typed, problems)
        }
        (_, _) => {
            let typed = format!("cast({raw} as {ty})");
            let mut problems = vec![(format!("{raw} is null"), missing)];
            if col.kind == ColumnKind::Number {
                problems.push((finite(&typed), bad));
            }
            (typed, problems)
        }
    };
    if !col.required {
        problems = when_present(problems, &raw);
    }
    ColumnSql { typed, problems }
}

/// A timestamp column's value `value` (of the file's `shape`) as a local wall-clock
/// timestamp in the pipeline's `timezone`, null where it cannot be read.
fn typed_timestamp(value: &str, shape: RawShape, timezone: &str) -> String {
    let zoned = format!("'Timestamp(Nanosecond, Some(\"{timezone}\"))'");
    match shape {
        // Text with an offset (`Z`, `+01:00`, `-0500`) is that instant, seen in the
        // pipeline's timezone. Text without one is already local wall-clock time and is
        // taken as written: a time that a daylight-saving change skips or repeats is
        // still that time of that day (no instant is needed to count days).
        RawShape::Text => format!(
            "case when regexp_like({value}, '{OFFSET_SUFFIX}') \
             then to_local_time(arrow_try_cast({value}, {zoned})) \
             else arrow_try_cast({value}, 'Timestamp(Nanosecond, None)') end"
        ),
        // A zoned timestamp is seen in the pipeline's timezone, a naive one is taken as
        // local time already.
        RawShape::ZonedTimestamp => format!("to_local_time(arrow_try_cast({value}, {zoned}))"),
        _ => format!("arrow_try_cast({value}, 'Timestamp(Nanosecond, None)')"),
    }
}

/// An optional column's problems: it may be null, so only a value present and unreadable
/// is a problem.
fn when_present(problems: Vec<(String, String)>, raw: &str) -> Vec<(String, String)> {
    problems
        .into_iter()
        .filter(|(_, reason)| !reason.starts_with("missing_"))
        .map(|(cond, reason)| (format!("({raw} is not null and {cond})"), reason))
        .collect()
}

/// `select <typed columns>, <reason> as _reason from <raw>` with rows at or after
/// `$as_of_ts` left out (they are outside the run, not wrong).
pub fn checked_sql(source: &Source, raw_table: &str, schema: &Schema, timezone: &str) -> String {
    let mut selects = Vec::new();
    let mut reasons = Vec::new();
    let mut time_expr = None;
    for col in &source.columns {
        let c = column_sql(col, schema, timezone);
        if source.time_column.as_deref() == Some(col.name.as_str()) {
            time_expr = Some(c.typed.clone());
        }
        selects.push(format!("  {} as {}", c.typed, ident(&col.name)));
        for (cond, reason) in c.problems {
            reasons.push(format!("    when {cond} then '{reason}'"));
        }
    }
    let reason = if reasons.is_empty() {
        "cast(null as varchar)".to_string()
    } else {
        format!("case\n{}\n  end", reasons.join("\n"))
    };
    // The rejected row's values as read.
    let record = record_sql(source, schema, |c| &c.file_name, false);
    let filter = match time_expr {
        Some(t) => format!("\nwhere not coalesce({t} >= $as_of_ts, false)"),
        None => String::new(),
    };
    format!(
        "select\n{},\n  {reason} as _reason,\n  {record} as _record\nfrom {}{filter}",
        selects.join(",\n"),
        ident(raw_table)
    )
}

/// How a source's repeated rows are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedupe {
    /// No duplicate key.
    None,
    /// The key is every declared column: identical rows collapse into one, the extra
    /// copies are rejected.
    ExactRows,
    /// Rows sharing the key keep one whole row (the first by all columns, so the
    /// choice is deterministic); the others are rejected with their own values.
    KeepFirst,
}

pub fn dedupe(source: &Source) -> Dedupe {
    if source.duplicate_key.is_empty() {
        Dedupe::None
    } else if source
        .columns
        .iter()
        .all(|c| source.duplicate_key.contains(&c.name))
    {
        Dedupe::ExactRows
    } else {
        Dedupe::KeepFirst
    }
}

// Duplicate removal, for a source with a duplicate key. Grouping ten million rows by a
// 64-bit hash of their key is several times cheaper than grouping them by the key's text
// columns, so: (1) hash every valid row's key; (2) keep the hashes more than one row has;
// (3) only rows with such a hash (the duplicates, and any collision) are resolved by their
// real values into a small table; (4) the valid rows are every row with a hash of its own
// plus the resolved ones. Nothing is held in memory but the few repeated rows.

/// The tables behind duplicate removal: hashed rows (a view), shared hashes and resolved
/// repeated rows (both small, kept).
pub struct DedupeTables<'a> {
    pub hashed: &'a str,
    pub shared: &'a str,
    pub repeated: &'a str,
}

fn column_names(source: &Source) -> Vec<String> {
    source.columns.iter().map(|c| ident(&c.name)).collect()
}

fn key_hash(source: &Source) -> String {
    let key: Vec<String> = source.duplicate_key.iter().map(|k| ident(k)).collect();
    format!("key_hash({})", key.join(", "))
}

/// The rows that are never duplicates: those missing an optional id of the key. A
/// purchase without an order id is its own order, however many identical rows there are
/// (the same CD bought twice on one day); only an id says two rows are one record.
fn without_identity(source: &Source) -> Option<String> {
    let missing: Vec<String> = source
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Id && !c.required)
        .filter(|c| source.duplicate_key.contains(&c.name))
        .map(|c| format!("{} is null", ident(&c.name)))
        .collect();
    (!missing.is_empty()).then(|| format!("({})", missing.join(" or ")))
}

/// (1) The valid rows with `_row_hash`, the hash of their duplicate key; null for rows that
/// are never duplicates (they match no other row and pass straight through).
pub fn hashed_sql(source: &Source, checked_table: &str) -> String {
    let hash = match without_identity(source) {
        Some(cond) => format!("case when {cond} then null else {} end", key_hash(source)),
        None => key_hash(source),
    };
    format!(
        "select {}, {hash} as _row_hash from {} where _reason is null",
        column_names(source).join(", "),
        ident(checked_table),
    )
}

/// (2) The hashes more than one valid row has.
pub fn shared_hashes_sql(hashed_table: &str) -> String {
    format!(
        "select _row_hash from {} where _row_hash is not null group by _row_hash having count(*) > 1",
        ident(hashed_table)
    )
}

/// (3) The rows with a shared hash, resolved by value. `ExactRows`: collapsed, with
/// `_copies`. `KeepFirst`: numbered within their key by all columns (`_rn = 1` is kept, the
/// choice is deterministic), with the record as read for the rejected ones.
pub fn repeated_sql(source: &Source, checked_table: &str, t: &DedupeTables) -> String {
    let names = column_names(source).join(", ");
    let shared = format!("(select _row_hash from {})", ident(t.shared));
    match dedupe(source) {
        Dedupe::KeepFirst => {
            let key: Vec<String> = source.duplicate_key.iter().map(|k| ident(k)).collect();
            let order: Vec<String> = source
                .columns
                .iter()
                .map(|c| format!("{} nulls last", ident(&c.name)))
                .collect();
            format!(
                "select *, row_number() over (partition by {} order by {}) as _rn from {} \
                 where _reason is null and {}{} in {shared}",
                key.join(", "),
                order.join(", "),
                ident(checked_table),
                without_identity(source).map_or(String::new(), |c| format!("not {c} and ")),
                key_hash(source),
            )
        }
        _ => format!(
            "select {names}, count(*) as _copies from {} where _row_hash in {shared} group by {names}",
            ident(t.hashed),
        ),
    }
}

/// Valid rows, one per duplicate key, with `_copies` = how many input rows it stands for.
pub fn valid_sql(source: &Source, checked_table: &str, t: &DedupeTables) -> String {
    let names = column_names(source).join(", ");
    let resolved = match dedupe(source) {
        Dedupe::None => {
            return format!(
                "select {names}, 1 as _copies from {} where _reason is null",
                ident(checked_table)
            );
        }
        Dedupe::ExactRows => format!("select {names}, _copies from {}", ident(t.repeated)),
        Dedupe::KeepFirst => format!(
            "select {names}, 1 as _copies from {} where _rn = 1",
            ident(t.repeated)
        ),
    };
    format!(
        "select {names}, 1 as _copies from {} h \
         where not exists (select 1 from {} s where s._row_hash = h._row_hash)\n\
         union all\n{resolved}",
        ident(t.hashed),
        ident(t.shared),
    )
}

/// The source's rows that break a rule, one row per rejected input row.
pub fn rejects_sql(
    source: &Source,
    checked_table: &str,
    repeated_table: &str,
    schema: &Schema,
) -> String {
    let name = source.name.replace('\'', "''");
    let mut sql = format!(
        "select '{name}' as source, _reason as reason, _record as record from {} where _reason is not null",
        ident(checked_table)
    );
    let Some(first) = source.duplicate_key.first() else {
        return sql;
    };
    let dup = format!("'duplicate_{first}'");
    match dedupe(source) {
        Dedupe::None => {}
        Dedupe::ExactRows => {
            // Identical rows: the repeated values, one reject per extra copy.
            let record = record_sql(source, schema, |c| &c.name, true);
            sql.push_str(&format!(
                "\nunion all\nselect '{name}' as source, {dup} as reason, {record} as record \
                 from (select *, unnest(range(1, _copies)) as _copy from {} where _copies > 1)",
                ident(repeated_table)
            ));
        }
        Dedupe::KeepFirst => sql.push_str(&format!(
            "\nunion all\nselect '{name}' as source, {dup} as reason, _record as record from {} where _rn > 1",
            ident(repeated_table)
        )),
    }
    sql
}
