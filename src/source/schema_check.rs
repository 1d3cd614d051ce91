//! Which Arrow types each declared column kind accepts, checked file by file before any stage.

use datafusion::arrow::datatypes::{DataType, Schema};

use crate::config::{ColumnKind, ColumnSpec};

/// A file's column that cannot serve as the declared kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub column: String,
    pub problem: String,
}

/// How the typed view must read a raw column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawShape {
    /// Already of a usable type: a plain cast.
    Native,
    /// Text that must be parsed row by row; failures are quarantined.
    Text,
    /// A timestamp carrying a timezone: converted to the pipeline's local time.
    ZonedTimestamp,
}

pub fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

/// How a column of Arrow type `t` serves as `kind`, or why it cannot.
pub fn shape(kind: ColumnKind, t: &DataType) -> Result<RawShape, String> {
    let accepted = match kind {
        ColumnKind::Id => t.is_integer() || is_text(t),
        ColumnKind::Text => is_text(t) || t.is_integer() || matches!(t, DataType::Boolean),
        ColumnKind::Timestamp => matches!(
            t,
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
        ),
        ColumnKind::Number => t.is_numeric(),
        ColumnKind::Integer => t.is_integer(),
        ColumnKind::Boolean => matches!(t, DataType::Boolean),
    };
    if let DataType::Timestamp(_, Some(_)) = t {
        return Ok(RawShape::ZonedTimestamp);
    }
    if accepted {
        return Ok(RawShape::Native);
    }
    if is_text(t) {
        return Ok(RawShape::Text);
    }
    Err(format!("has type {t}, expected {}", expected(kind)))
}

fn expected(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Id => "an id (text or integer)",
        ColumnKind::Text => "text",
        ColumnKind::Timestamp => "a timestamp or date (or text holding one)",
        ColumnKind::Number => "a number (integer, float or decimal, or text holding one)",
        ColumnKind::Integer => "an integer (or text holding one)",
        ColumnKind::Boolean => "a boolean (or text holding one)",
    }
}

/// Check one file's schema against the declared columns: every problem, not just the first.
pub fn check(columns: &[ColumnSpec], schema: &Schema) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for col in columns {
        match schema.field_with_name(&col.file_name) {
            Ok(field) => {
                if let Err(problem) = shape(col.kind, field.data_type()) {
                    out.push(Mismatch {
                        column: col.file_name.clone(),
                        problem,
                    });
                }
            }
            Err(_) if col.required => out.push(Mismatch {
                column: col.file_name.clone(),
                problem: format!(
                    "is missing (expected {}; found columns: {})",
                    expected(col.kind),
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            Err(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};

    fn spec(name: &str, kind: ColumnKind, required: bool) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            file_name: name.into(),
            kind,
            required,
        }
    }

    #[test]
    fn text_is_parsed_row_by_row_and_numbers_are_native() {
        assert_eq!(
            shape(ColumnKind::Number, &DataType::Utf8),
            Ok(RawShape::Text)
        );
        assert_eq!(
            shape(ColumnKind::Number, &DataType::Int32),
            Ok(RawShape::Native)
        );
        assert_eq!(
            shape(
                ColumnKind::Timestamp,
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            ),
            Ok(RawShape::ZonedTimestamp)
        );
    }

    #[test]
    fn reports_missing_and_mistyped_columns_together() {
        let schema = Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, true),
            Field::new("amount", DataType::Boolean, true),
        ]);
        let cols = [
            spec("customer_id", ColumnKind::Id, true),
            spec("order_ts", ColumnKind::Timestamp, true),
            spec("amount", ColumnKind::Number, true),
            spec("channel", ColumnKind::Text, false),
        ];
        let found = check(&cols, &schema);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].column, "order_ts");
        assert!(found[0].problem.starts_with("is missing"));
        assert_eq!(found[1].column, "amount");
        assert!(
            found[1].problem.contains("has type Boolean"),
            "{}",
            found[1].problem
        );
    }
}
