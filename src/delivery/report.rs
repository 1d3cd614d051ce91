//! What the campaigns of one run did: the plan's counts and each channel's delivery, for
//! the run summary, the manifest and the exit code.

use serde::Serialize;

use super::ChannelReport;

/// Whether a run sends the messages it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendMode {
    /// Decide, record and send (`winback run`, scheduled runs).
    #[default]
    Send,
    /// Decide everything, write the exact requests (secrets masked) to the outbox; send
    /// and record nothing (`--dry-run`).
    DryRun,
    /// Stop after the tables (`--no-send`; `backfill` without `--send`).
    NoSend,
}

/// What the campaigns of a run did, for the summary and the manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CampaignsReport {
    pub mode: SendMode,
    /// Recipients found `in_flight` at start (a process died mid-request): now `unknown`.
    pub unknown_recovered: u64,
    pub plan: crate::campaign::summary::PlanSummary,
    /// One per channel that had messages.
    pub deliveries: Vec<ChannelReport>,
    /// Channels that stopped (credentials refused), with the variable to check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Whose fault the worst of `errors` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blame: Option<crate::error::Blame>,
}

impl CampaignsReport {
    /// Some recipient ended failed or unknown, or was not attempted: exit code 2.
    pub fn is_partial(&self) -> bool {
        self.unknown_recovered > 0 || self.deliveries.iter().any(ChannelReport::is_partial)
    }
}
