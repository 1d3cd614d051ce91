//! Typed pipeline variables: the values SQL stages read as `$name` parameters.

use chrono::NaiveDate;
use datafusion::scalar::ScalarValue;

/// A variable's value, typed from how it is written in the pipeline file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Variable {
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Text(String),
    Date(NaiveDate),
}

impl Variable {
    /// Read a TOML value; arrays and tables are not variables.
    pub fn from_toml(value: &toml::Value) -> Result<Self, String> {
        Ok(match value {
            toml::Value::Integer(i) => Variable::Integer(*i),
            toml::Value::Float(f) => Variable::Float(*f),
            toml::Value::Boolean(b) => Variable::Boolean(*b),
            toml::Value::String(s) => Variable::Text(s.clone()),
            toml::Value::Datetime(d) => match (d.date, d.time) {
                (Some(date), None) => Variable::Date(
                    NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())
                        .ok_or("not a valid date")?,
                ),
                _ => return Err("only plain dates (YYYY-MM-DD) are supported".into()),
            },
            other => {
                return Err(format!(
                    "a variable must be a number, boolean, string or date, not {}",
                    other.type_str()
                ));
            }
        })
    }

    /// The SQL parameter value bound for `$name`.
    pub fn to_scalar(&self) -> ScalarValue {
        match self {
            Variable::Integer(i) => ScalarValue::Int64(Some(*i)),
            Variable::Float(f) => ScalarValue::Float64(Some(*f)),
            Variable::Boolean(b) => ScalarValue::Boolean(Some(*b)),
            Variable::Text(s) => ScalarValue::Utf8(Some(s.clone())),
            Variable::Date(d) => ScalarValue::Date32(Some(days_since_epoch(*d))),
        }
    }
}

/// Days since 1970-01-01, Arrow's Date32 representation.
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch")).num_days() as i32
}
