//! The run manifest: what a run read, computed and wrote, saved beside the outputs as
//! `<output>/_runs/as_of=<YYYY-MM-DD>/run-<id>.json`; `manifest.json` there is the one of
//! the run whose tables are in place.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Blame, PipelineError};
use crate::output::WrittenTable;
use crate::source::SourceReport;
use crate::stage::executor::StageRun;
use crate::state::RunStatus;

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub pipeline: String,
    pub pipeline_file: String,
    /// SHA-256 over the pipeline file and every SQL stage file.
    pub pipeline_hash: String,
    pub run_id: String,
    pub as_of: String,
    pub started_at: String,
    pub ended_at: String,
    pub seconds: f64,
    /// `succeeded`, `failed` or `interrupted`.
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whose fault the failure was: `user` (exit 78), `external` (retried), `internal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blame: Option<Blame>,
    pub sources: Vec<SourceReport>,
    /// Checking every source file and finding duplicates, before any stage.
    #[serde(default)]
    pub sources_seconds: f64,
    /// Collecting the rejected rows.
    #[serde(default)]
    pub quarantine_seconds: f64,
    pub stages: Vec<StageRun>,
    /// Rejected input rows by `source/reason`.
    pub quarantine: BTreeMap<String, u64>,
    pub outputs: Vec<WrittenTable>,
    /// Named figures declared under `[metrics]` in the pipeline file.
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Model fit diagnostics, by model name.
    pub models: BTreeMap<String, serde_json::Value>,
    pub rows_read: u64,
    pub rows_per_second: f64,
    pub peak_memory_bytes: Option<u64>,
    /// The most bytes of DataFusion's spill files on disk at once while the stages ran
    /// (sampled every 100 ms; per stage in `stages`).
    #[serde(default)]
    pub spill_peak_bytes: u64,
    /// How the stages maintained per key were computed (absent: the pipeline has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalRecord>,
    /// What the campaigns decided and delivered (absent when the run sent nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaigns: Option<crate::delivery::report::CampaignsReport>,
    /// Where the run's HTML report was written (after the manifest files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

/// Hash the pipeline file and the SQL files so a manifest says exactly what ran.
pub fn hash_files(pipeline_file: &Path, sql_files: &[&Path]) -> String {
    let mut h = Sha256::new();
    let mut all: Vec<&Path> = vec![pipeline_file];
    let mut sql: Vec<&Path> = sql_files.to_vec();
    sql.sort();
    all.extend(sql);
    for p in all {
        h.update(p.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(p).unwrap_or_default());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The process's peak resident memory (Linux `VmHWM`), when the platform tells.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Manifest {
    /// A manifest for a run that is starting: what is known before anything is read.
    pub fn started(
        file: &std::path::Path,
        name: &str,
        run_id: &str,
        as_of: NaiveDate,
        started_at: DateTime<Utc>,
    ) -> Self {
        Manifest {
            pipeline: name.to_string(),
            pipeline_file: file.display().to_string(),
            pipeline_hash: String::new(),
            run_id: run_id.to_string(),
            as_of: as_of.to_string(),
            started_at: started_at.to_rfc3339(),
            ended_at: String::new(),
            seconds: 0.0,
            status: RunStatus::Running,
            error: None,
            blame: None,
            sources: Vec::new(),
            sources_seconds: 0.0,
            quarantine_seconds: 0.0,
            stages: Vec::new(),
            quarantine: Default::default(),
            outputs: Vec::new(),
            metrics: Default::default(),
            models: Default::default(),
            rows_read: 0,
            rows_per_second: 0.0,
            peak_memory_bytes: None,
            spill_peak_bytes: 0,
            incremental: None,
            campaigns: None,
            report: None,
        }
    }

    /// Close the manifest: timings, peak memory, and the status the result gives.
    pub fn finish(&mut self, clock: Instant, result: Result<(), &PipelineError>) {
        self.seconds = clock.elapsed().as_secs_f64();
        self.ended_at = Utc::now().to_rfc3339();
        self.rows_per_second = self.rows_read as f64 / self.seconds.max(1e-9);
        self.peak_memory_bytes = peak_memory_bytes();
        match result {
            Ok(()) => {
                self.status = RunStatus::Succeeded;
                self.error = None;
                self.blame = None;
            }
            Err(e) => {
                self.status = match e {
                    PipelineError::Interrupted(_) => RunStatus::Interrupted,
                    _ => RunStatus::Failed,
                };
                self.error = Some(e.to_string());
                self.blame = Some(e.blame());
            }
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>, PipelineError> {
        serde_json::to_vec_pretty(self).map_err(|e| PipelineError::Internal(e.to_string()))
    }
}

/// How this run computed its maintained stages, for the manifest and the summary.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct IncrementalRecord {
    /// `incremental` (only the touched keys recomputed) or `full`.
    pub mode: String,
    /// Why the run recomputed in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The keys the night's new rows touched (incremental nights).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_touched: Option<u64>,
    /// Files not seen by the last night.
    pub new_files: usize,
    /// The stages maintained per key.
    pub maintained: Vec<String>,
    /// Whether the maintained tables were kept for the next night.
    pub remembered: bool,
}
