//! Writing `report.html` beside a run's outputs, `<output>/_report/as_of=<D>/report.html`,
//! replaced atomically (a temporary file renamed over it on a local disk; one put on an
//! object store), so a reader never opens half a page.

use std::path::Path;

use chrono::NaiveDate;

use super::{ReportData, gather::gather, render};
use crate::error::PipelineError;
use crate::storage;

/// Gather, render and write the report of `as_of`; returns where it is and the data (its
/// `empty` says which sections are empty and why).
pub async fn write_report(
    output: &str,
    as_of: NaiveDate,
    state_dir: Option<&Path>,
) -> Result<(String, ReportData), PipelineError> {
    let data = gather(output, as_of, state_dir).await?;
    let html = render(&data);
    let dir = storage::locate(output)?
        .child("_report")
        .child(&format!("as_of={as_of}"));
    let err = |e: std::io::Error| PipelineError::Output {
        table: "report".into(),
        message: e.to_string(),
    };
    match dir.local_dir() {
        Some(local) => {
            std::fs::create_dir_all(&local).map_err(err)?;
            let tmp = local.join(".report.html.tmp");
            std::fs::write(&tmp, html.as_bytes()).map_err(err)?;
            std::fs::rename(&tmp, local.join("report.html")).map_err(err)?;
            Ok((local.join("report.html").display().to_string(), data))
        }
        None => {
            dir.put("report.html", html.into_bytes()).await?;
            Ok((format!("{}report.html", storage::redacted(&dir.url)), data))
        }
    }
}
