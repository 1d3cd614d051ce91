//! The file formats winback reads and writes: Parquet, CSV, and JSON lines (outputs only).

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Csv,
    Jsonl,
}

impl FileFormat {
    pub(super) fn parse(s: &str, allow_jsonl: bool) -> Result<Self, String> {
        match s {
            "parquet" => Ok(FileFormat::Parquet),
            "csv" => Ok(FileFormat::Csv),
            "jsonl" if allow_jsonl => Ok(FileFormat::Jsonl),
            other => Err(format!(
                "unknown format '{other}' (expected parquet, csv{})",
                if allow_jsonl { " or jsonl" } else { "" }
            )),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
        }
    }
}
