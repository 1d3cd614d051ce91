//! The SQL that turns a raw source into typed rows plus a `_reason` for rows that fail.
//!
//! Generated once per source from its declared columns, shown by `winback explain`,
//! and bound to `$as_of_ts` like any stage: nothing is pasted into the text.

use datafusion::arrow::datatypes::Schema;

use super::schema_check::{RawShape, shape};
use crate::config::{ColumnKind, ColumnSpec, Source};

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
    let zoned = format!("'Timestamp(Nanosecond, Some(\"{timezone}\"))'");
    let finite = |v: &str| format!("(isnan({v}) or {v} in ('inf'::double, '-inf'::double))");
    let (typed, mut problems) = match (col.kind, shape) {
        (ColumnKind::Id, _) => {
            let typed = format!("nullif(btrim(cast({raw} as varchar)), '')");
            let cond = format!("{typed} is null");
            (typed, vec![(cond, missing)])
        }
        (ColumnKind::Text, _) => (format!("cast({raw} as varchar)"), vec![]),
        (ColumnKind::Timestamp, RawShape::Text) => {
            // Text without an offset is local time in the pipeline's timezone; text with
            // an offset is that instant. Both become local wall-clock time.
            let trimmed = format!("nullif(btrim({raw}), '')");
            let typed = format!("to_local_time(arrow_try_cast({trimmed}, {zoned}))");
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
            // A zoned timestamp is seen in the pipeline's timezone, a naive one is taken
            // as local time already; values out of the nanosecond range are bad rows.
            let typed = if shape == RawShape::ZonedTimestamp {
                format!("to_local_time(arrow_try_cast({raw}, {zoned}))")
            } else {
                format!("arrow_try_cast({raw}, 'Timestamp(Nanosecond, None)')")
            };
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
        // Optional columns may be null; only unparseable values are a problem.
        problems.retain(|(_, reason)| !reason.starts_with("missing_"));
        problems = problems
            .into_iter()
            .map(|(cond, reason)| (format!("({raw} is not null and {cond})"), reason))
            .collect();
    }
    ColumnSql { typed, problems }
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
    // The rejected row's values, in the file's column order.
    let mut present: Vec<(usize, &ColumnSpec)> = source
        .columns
        .iter()
        .filter_map(|c| schema.index_of(&c.file_name).ok().map(|i| (i, c)))
        .collect();
    present.sort_by_key(|(i, _)| *i);
    let record = present
        .into_iter()
        .map(|(_, c)| {
            record_pair(
                &c.file_name,
                &ident(&c.file_name),
                source.personal.contains(&c.name),
            )
        })
        .collect::<Vec<_>>()
        .join(" || ', ' || ");
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
    /// The key is every declared column: identical rows collapse into one (cheap: a
    /// hash aggregation), the extra copies are rejected.
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

/// `KeepFirst` only: valid rows numbered within their key (`_rn = 1` is kept).
pub fn ranked_sql(source: &Source, checked_table: &str) -> String {
    let key: Vec<String> = source.duplicate_key.iter().map(|k| ident(k)).collect();
    let order: Vec<String> = source
        .columns
        .iter()
        .map(|c| format!("{} nulls last", ident(&c.name)))
        .collect();
    format!(
        "select *, row_number() over (partition by {} order by {}) as _rn from {} where _reason is null",
        key.join(", "),
        order.join(", "),
        ident(checked_table)
    )
}

/// Valid rows, one per duplicate key, with `_copies` = how many input rows it stands for.
/// `input` is the checked table, or the ranked one for `KeepFirst`.
pub fn valid_sql(source: &Source, input: &str) -> String {
    let names: Vec<String> = source.columns.iter().map(|c| ident(&c.name)).collect();
    match dedupe(source) {
        Dedupe::None => format!(
            "select {}, 1 as _copies from {} where _reason is null",
            names.join(", "),
            ident(input)
        ),
        Dedupe::ExactRows => format!(
            "select {0}, count(*) as _copies from {1} where _reason is null group by {0}",
            names.join(", "),
            ident(input)
        ),
        Dedupe::KeepFirst => format!(
            "select {}, 1 as _copies from {} where _rn = 1",
            names.join(", "),
            ident(input)
        ),
    }
}

/// The source's rows that break a rule, one row per rejected input row.
pub fn rejects_sql(source: &Source, checked_table: &str, valid_or_ranked: &str) -> String {
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
            let record = source
                .columns
                .iter()
                .map(|c| record_pair(&c.file_name, &ident(&c.name), source.personal.contains(&c.name)))
                .collect::<Vec<_>>()
                .join(" || ', ' || ");
            sql.push_str(&format!(
                "\nunion all\nselect '{name}' as source, {dup} as reason, {record} as record \
                 from (select *, unnest(range(1, _copies)) as _copy from {} where _copies > 1)",
                ident(valid_or_ranked)
            ));
        }
        Dedupe::KeepFirst => sql.push_str(&format!(
            "\nunion all\nselect '{name}' as source, {dup} as reason, _record as record from {} where _rn > 1",
            ident(valid_or_ranked)
        )),
    }
    sql
}
