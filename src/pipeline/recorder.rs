//! The run's record: one [`RunRecorder`] owns the manifest from the run's first moment to
//! its last, and writes `_runs/as_of=<D>/run-<id>.json` exactly once however the run ends
//! (succeeded, failed, interrupted), `manifest.json` with the committed tables, and again
//! after delivery. The run history row is the scheduler's (`crate::schedule`), which
//! exists before a run starts and outlives a run whose future is dropped.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::RunOptions;
use super::compute::ComputeRecord;
use super::session::Prepared;
use crate::config::Pipeline;
use crate::delivery::report::CampaignsReport;
use crate::error::PipelineError;
use crate::manifest::Manifest;
use crate::output::{OutputWriter, WrittenTable};
use crate::storage::{self, Location};

/// The manifest of one run and where it goes.
pub struct RunRecorder {
    manifest: Manifest,
    started_at: DateTime<Utc>,
    clock: Instant,
    /// The pipeline's output, as written in it (the report reads from it).
    output_url: Option<String>,
    /// The output location, once known (from the pipeline, or `--output` alone when the
    /// pipeline cannot be loaded).
    root: Option<Location>,
    writer: Option<OutputWriter>,
    /// Delivery added to a committed `manifest.json`, which is written again at the end.
    delivered: bool,
}

fn new_run_id(started_at: DateTime<Utc>) -> String {
    format!(
        "{}-{}",
        started_at.format("%Y%m%dT%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

impl RunRecorder {
    /// A run starting now. Until the pipeline is loaded, its output is known only from
    /// `--output`, and its `as_of` from `--as-of` (else today, UTC).
    pub fn start(opts: &RunOptions) -> RunRecorder {
        let started_at = Utc::now();
        let run_id = new_run_id(started_at);
        let as_of = opts.as_of.unwrap_or_else(|| started_at.date_naive());
        RunRecorder {
            manifest: Manifest::started(&opts.pipeline_file, "", &run_id, as_of, started_at),
            started_at,
            clock: Instant::now(),
            output_url: None,
            root: opts
                .load
                .output
                .as_deref()
                .and_then(|u| storage::locate(u).ok()),
            writer: None,
            delivered: false,
        }
    }

    /// The pipeline is loaded: its name, its `as_of`, its output location.
    pub fn loaded(&mut self, pipeline: &Pipeline, opts: &RunOptions) {
        let as_of = opts
            .as_of
            .unwrap_or_else(|| super::session::today(pipeline));
        let run_id = self.manifest.run_id.clone();
        self.manifest = Manifest::started(
            &pipeline.file,
            &pipeline.name,
            &run_id,
            as_of,
            self.started_at,
        );
        self.root = storage::locate(&pipeline.output.url).ok();
        self.output_url = Some(pipeline.output.url.clone());
    }

    /// The sources are checked: what was read, and how long it took.
    pub fn prepared(&mut self, p: &Prepared) {
        let m = &mut self.manifest;
        m.pipeline_hash = p.hash.clone();
        m.sources = p.sources.iter().map(|s| s.report.clone()).collect();
        m.sources_seconds = p.sources_seconds;
        m.rows_read = m.sources.iter().map(|s| s.rows_read).sum();
    }

    /// The run's staging writer, on the output registered in the session. A run holding a
    /// lock first removes staging that earlier holders of the same lock left behind.
    pub async fn open_output(
        &mut self,
        p: &Prepared,
        opts: &RunOptions,
    ) -> Result<OutputWriter, PipelineError> {
        let root = storage::register(&p.ctx, &p.pipeline.output.url)?;
        let writer =
            OutputWriter::new(root.clone(), p.as_of, &self.manifest.run_id, &opts.lock_key);
        if !opts.lock_key.is_empty()
            && let Err(e) = writer.remove_stale_staging().await
        {
            tracing::warn!(error = %e, "cannot remove staging left by earlier runs");
        }
        self.root = Some(root);
        self.writer = Some(writer.clone());
        Ok(writer)
    }

    /// The stages ran: their figures, and the tables staged to commit.
    pub fn computed(&mut self, record: ComputeRecord, written: Vec<WrittenTable>) {
        let m = &mut self.manifest;
        m.quarantine_seconds = record.quarantine_seconds;
        m.quarantine = record.quarantine;
        m.spill_peak_bytes = record.spill_peak_bytes;
        m.incremental = record.incremental;
        m.stages = record.stages;
        m.models = record.models;
        m.metrics = record.metrics;
        m.outputs = written;
    }

    /// Put every staged table in place with `manifest.json`, which says the run
    /// succeeded (delivery, after it, writes it again).
    pub async fn commit(&mut self) -> Result<(), PipelineError> {
        let writer = self
            .writer
            .clone()
            .ok_or_else(|| PipelineError::Internal("commit before the output was opened".into()))?;
        self.manifest.finish(self.clock, Ok(()));
        let json = self.manifest.to_json()?;
        writer.commit(&self.manifest.outputs, Some(&json)).await
    }

    /// What the campaigns decided and delivered.
    pub fn delivered(&mut self, report: Option<CampaignsReport>) {
        self.delivered = true;
        self.manifest.campaigns = report;
    }

    /// Finish the record of a run that ended with `result`: the manifest says how; a
    /// failed run's staging is removed; a delivery's outcome is added to the committed
    /// `manifest.json`; the run's own record is written once; a successful run writes its
    /// report. Returns the manifest, or the run's error.
    pub async fn finish(
        mut self,
        result: Result<(), PipelineError>,
        state_dir: Option<&Path>,
    ) -> Result<Manifest, PipelineError> {
        self.manifest
            .finish(self.clock, result.as_ref().map(|_| ()));
        if self.delivered
            && let Some(writer) = &self.writer
        {
            // The tables are in place either way; the record says what went wrong.
            match self.manifest.to_json() {
                Ok(json) => {
                    if let Err(e) = writer.update_manifest(&json).await {
                        tracing::warn!(error = %e, "cannot add the deliveries to manifest.json");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot serialize the manifest"),
            }
        }
        if result.is_err()
            && let Some(writer) = &self.writer
            && let Err(d) = writer.discard().await
        {
            tracing::warn!(error = %d, "cannot remove this run's staging");
        }
        let recorded = match &self.root {
            Some(root) => record(root, &self.manifest).await,
            None => Ok(()),
        };
        match (result, recorded) {
            (Err(e), Err(w)) => {
                tracing::warn!(error = %w, "cannot write the failed run's manifest");
                Err(e)
            }
            (Err(e), Ok(())) => Err(e),
            (Ok(()), Err(w)) => Err(w),
            (Ok(()), Ok(())) => {
                let m = &mut self.manifest;
                let as_of = m.as_of.parse().expect("the manifest's as_of is a date");
                if let Some(url) = &self.output_url {
                    // The report reads the committed tables; a report that cannot be
                    // written does not fail a run whose tables are in place.
                    match crate::report::write_report(url, as_of, state_dir).await {
                        Ok((path, _)) => m.report = Some(path),
                        Err(e) => tracing::warn!(error = %e, "cannot write the report"),
                    }
                }
                Ok(self.manifest)
            }
        }
    }
}

/// Write the run's own manifest, `_runs/as_of=<D>/run-<id>.json`.
async fn record(root: &Location, m: &Manifest) -> Result<(), PipelineError> {
    let dir = root.child("_runs").child(&format!("as_of={}", m.as_of));
    dir.put(&format!("run-{}.json", m.run_id), m.to_json()?)
        .await
}
