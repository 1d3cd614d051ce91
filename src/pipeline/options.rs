//! What chooses what one run does: the pipeline file and its overrides, the `as_of`, the
//! engine, the state folder, the run lock it holds, and whether its campaigns send.

use std::path::PathBuf;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use crate::config::{LoadOptions, Pipeline};
pub use crate::delivery::report::SendMode;
use crate::engine::EngineOptions;
use crate::progress::Progress;

/// Everything that chooses what one run does.
#[derive(Clone)]
pub struct RunOptions {
    pub pipeline_file: PathBuf,
    /// The pipeline already loaded from `pipeline_file` with `load` (`winback run` loads
    /// it once to find today's `as_of` before locking); `None` loads it.
    pub pipeline: Option<Pipeline>,
    pub as_of: Option<NaiveDate>,
    pub load: LoadOptions,
    /// Run only these stages and what they read (`--select`).
    pub select: Vec<String>,
    pub engine: EngineOptions,
    pub progress: Progress,
    /// Where the run history lives (`winback_runs` is read from it); default `.winback`.
    pub state_dir: Option<PathBuf>,
    /// Fires when the run must stop: it stops at the next safe point (no table is
    /// committed), cleans its staging and records `interrupted` in its manifest.
    pub cancel: CancellationToken,
    /// The run lock this run holds, empty when it holds none. A run holding a lock removes
    /// staging that earlier holders of the same lock left behind when they died.
    pub lock_key: String,
    /// Who holds `lock_key` (empty when no lock is held).
    pub lock_holder: String,
    /// Whether the campaigns send. Campaigns need the state folder (the send ledger): a
    /// run without `state_dir` sends nothing.
    pub send: SendMode,
    /// Recompute the stages maintained per key in full (`--full-refresh`), not only the
    /// keys the night's new rows touch.
    pub full_refresh: bool,
}

impl RunOptions {
    /// Options for a run of `pipeline_file` with everything else at its default.
    pub fn new(pipeline_file: impl Into<PathBuf>) -> Self {
        RunOptions {
            pipeline_file: pipeline_file.into(),
            pipeline: None,
            as_of: None,
            load: LoadOptions::default(),
            select: vec![],
            engine: EngineOptions::default(),
            progress: Progress::hidden(),
            state_dir: None,
            cancel: CancellationToken::new(),
            lock_key: String::new(),
            lock_holder: String::new(),
            send: SendMode::Send,
            full_refresh: false,
        }
    }

    /// Whether this run's campaigns act: they send (or dry-run), the state folder holds
    /// the ledger, and the whole pipeline runs (a `--select` run may lack the audiences).
    pub fn acts(&self, has_campaigns: bool) -> bool {
        self.send != SendMode::NoSend
            && self.state_dir.is_some()
            && self.select.is_empty()
            && has_campaigns
    }

    /// The run's lock and holder, recorded with each ledger reservation.
    pub fn owner(&self) -> Option<crate::state::RunOwner> {
        (!self.lock_key.is_empty() && !self.lock_holder.is_empty()).then(|| {
            crate::state::RunOwner {
                lock: self.lock_key.clone(),
                holder: self.lock_holder.clone(),
            }
        })
    }
}
