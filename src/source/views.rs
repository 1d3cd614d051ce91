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
    let (typed, mut problems) = match (col.kind, shape) {
        (ColumnKind::Id, _) => {
            let typed = format!("nullif(btrim(cast({raw} as varchar)), '')");
            let cond = format!("{typed} is null");
            (typed, vec![(cond, missing)])
        }
        (ColumnKind::Text, _) => (format!("cast({raw} as varchar)"), vec![]),
        (_, RawShape::Text) => {
            let trimmed = format!("nullif(btrim({raw}), '')");
            let typed = format!("try_cast({trimmed} as {ty})");
            let problems = vec![
                (format!("{trimmed} is null"), missing),
                (format!("{typed} is null"), bad),
            ];
            (typed, problems)
        }
        (ColumnKind::Timestamp, RawShape::ZonedTimestamp) => {
            // Same instant seen in the pipeline's timezone, then the zone dropped: local time.
            let typed = format!(
                "cast(arrow_cast({raw}, 'Timestamp(Nanosecond, Some(\"{timezone}\"))') as timestamp)"
            );
            (typed, vec![(format!("{raw} is null"), missing)])
        }
        (_, _) => {
            let typed = format!("cast({raw} as {ty})");
            let mut problems = vec![(format!("{raw} is null"), missing)];
            if col.kind == ColumnKind::Number {
                problems.push((
                    format!("isnan({typed}) or {typed} in ('inf'::double, '-inf'::double)"),
                    bad,
                ));
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
            format!(
                "'{}=' || coalesce(cast({} as varchar), 'NULL')",
                c.file_name.replace('\'', "''"),
                ident(&c.file_name)
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

/// Valid rows, with exact repeats of the duplicate key collapsed and counted in `_copies`.
pub fn valid_sql(source: &Source, checked_table: &str) -> String {
    let names: Vec<String> = source.columns.iter().map(|c| ident(&c.name)).collect();
    if source.duplicate_key.is_empty() {
        return format!(
            "select {}, 1 as _copies from {} where _reason is null",
            names.join(", "),
            ident(checked_table)
        );
    }
    let key: Vec<String> = source.duplicate_key.iter().map(|k| ident(k)).collect();
    let rest: Vec<String> = source
        .columns
        .iter()
        .filter(|c| !source.duplicate_key.contains(&c.name))
        .map(|c| format!("max({0}) as {0}", ident(&c.name)))
        .chain(["count(*) as _copies".into()])
        .collect();
    format!(
        "select {}, {} from {} where _reason is null group by {}",
        key.join(", "),
        rest.join(", "),
        ident(checked_table),
        key.join(", ")
    )
}

/// The source's rows that break a rule, one row per rejected input row.
pub fn rejects_sql(source: &Source, checked_table: &str, valid_table: &str) -> String {
    let name = source.name.replace('\'', "''");
    let mut sql = format!(
        "select '{name}' as source, _reason as reason, _record as record from {} where _reason is not null",
        ident(checked_table)
    );
    if let Some(first) = source.duplicate_key.first() {
        // The repeated row's values (as read), one reject per extra copy.
        let record = source
            .columns
            .iter()
            .map(|c| {
                format!(
                    "'{}=' || coalesce(cast({} as varchar), 'NULL')",
                    c.file_name.replace('\'', "''"),
                    ident(&c.name)
                )
            })
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        sql.push_str(&format!(
            "\nunion all\nselect '{name}' as source, 'duplicate_{first}' as reason, {record} as record \
             from (select *, unnest(range(1, _copies)) as _copy from {} where _copies > 1)",
            ident(valid_table)
        ));
    }
    sql
}
