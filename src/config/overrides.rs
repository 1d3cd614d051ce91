//! `--set KEY=VALUE` overrides applied to the parsed TOML tree by dotted path, before validation.

use crate::error::ConfigError;

/// Set `dotted.key` in `root` to `raw`, keeping the type of the value it replaces
/// (a number stays a number); new keys are typed by what `raw` looks like.
pub fn apply(root: &mut toml::Value, key: &str, raw: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Override {
        key: key.to_string(),
        message,
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(
            "the key must be a dotted path such as variables.lapse_factor".into(),
        ));
    }
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        let table = node
            .as_table_mut()
            .ok_or_else(|| err(format!("'{}' is not a table", parts[..i].join("."))))?;
        if i + 1 == parts.len() {
            let value = match table.get(*part) {
                Some(old) => typed_like(old, raw).map_err(err)?,
                None => guess(raw),
            };
            table.insert(part.to_string(), value);
            return Ok(());
        }
        node = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    unreachable!("split always yields at least one part")
}

fn typed_like(old: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    use toml::Value;
    Ok(match old {
        Value::Integer(_) => Value::Integer(
            raw.parse()
                .map_err(|_| format!("expected an integer, got '{raw}'"))?,
        ),
        Value::Float(_) => Value::Float(
            raw.parse()
                .map_err(|_| format!("expected a number, got '{raw}'"))?,
        ),
        Value::Boolean(_) => Value::Boolean(
            raw.parse()
                .map_err(|_| format!("expected true or false, got '{raw}'"))?,
        ),
        Value::Array(_) | Value::Table(_) => {
            let doc: toml::Table = toml::from_str(&format!("v = {raw}"))
                .map_err(|e| format!("expected a TOML value: {}", e.message()))?;
            doc["v"].clone()
        }
        _ => Value::String(raw.to_string()),
    })
}

fn guess(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_type_of_the_replaced_value() {
        let mut v: toml::Value =
            toml::from_str("[variables]\nlapse_factor = 1.5\nname = 'x'").unwrap();
        apply(&mut v, "variables.lapse_factor", "2").unwrap();
        assert_eq!(v["variables"]["lapse_factor"], toml::Value::Float(2.0));
        apply(&mut v, "variables.name", "12").unwrap();
        assert_eq!(v["variables"]["name"], toml::Value::String("12".into()));
    }

    #[test]
    fn rejects_a_value_of_the_wrong_type() {
        let mut v: toml::Value = toml::from_str("[variables]\nlapse_factor = 1.5").unwrap();
        let e = apply(&mut v, "variables.lapse_factor", "high").unwrap_err();
        assert!(e.to_string().contains("expected a number"), "{e}");
    }

    #[test]
    fn creates_missing_tables() {
        let mut v: toml::Value = toml::from_str("name = 'p'").unwrap();
        apply(&mut v, "output.format", "csv").unwrap();
        assert_eq!(v["output"]["format"], toml::Value::String("csv".into()));
    }
}
