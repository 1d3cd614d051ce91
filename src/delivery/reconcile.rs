//! Reconciliation: settle `unknown` ledger rows (a request the provider may have processed)
//! by asking the provider what it accepted. A row becomes `delivered` (with the provider's
//! id) when the provider lists it, `rejected` when it lists it as failed, and `not_sent`
//! (sent again by the next run, once) only when the provider's answer is conclusive that it
//! never accepted it. Everything else stays `unknown`, with the reason. Rows are looked up
//! only once their channel's settle delay (`reconcile_after_secs`) has passed since the
//! attempt, as providers index what they accept with a lag.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::channels::{Channel, Settlement, Unsettled};
use crate::message::SendState;
use crate::state::ledger::UnknownRow;
use crate::state::{LedgerOutcome, State, StateError};

/// Rows asked of a provider in one `lookup` call.
const CHUNK: usize = 500;

/// Which rows, and whether to write.
#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    pub campaign: Option<String>,
    pub as_of: Option<NaiveDate>,
    /// Ask the providers, write nothing.
    pub dry_run: bool,
}

/// What reconciliation did for one channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelReconciled {
    pub channel: String,
    /// `unknown` rows of this channel.
    pub unknown: u64,
    /// Still within the settle delay: not asked yet.
    pub waiting: u64,
    pub delivered: u64,
    pub rejected: u64,
    pub not_sent: u64,
    /// Asked, and still `unknown`; why, with how many each.
    pub still_unknown: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, u64>,
}

/// What one reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reconciled {
    pub dry_run: bool,
    pub channels: Vec<ChannelReconciled>,
}

impl Reconciled {
    pub fn settled(&self) -> u64 {
        self.channels
            .iter()
            .map(|c| c.delivered + c.rejected + c.not_sent)
            .sum()
    }

    pub fn still_unknown(&self) -> u64 {
        self.channels
            .iter()
            .map(|c| c.still_unknown + c.waiting)
            .sum()
    }
}

/// The pipeline's channels by name, and why each other one cannot be built.
pub type Built = (BTreeMap<String, Arc<dyn Channel>>, BTreeMap<String, String>);

/// Settles the `unknown` rows of `opts` through the channels `build` makes (called only
/// when there is a row to settle: most nights there is none). A channel it could not build
/// (no longer configured, or its secret is not set) leaves its rows `unknown` with the
/// reason it gives.
pub async fn reconcile(
    state: &State,
    build: impl FnOnce() -> Built,
    opts: &ReconcileOptions,
    now: DateTime<Utc>,
) -> Result<Reconciled, StateError> {
    let rows = state.unknown_to_settle(opts.campaign.as_deref(), opts.as_of)?;
    let mut by_channel: BTreeMap<String, Vec<UnknownRow>> = BTreeMap::new();
    for r in rows {
        by_channel.entry(r.channel.clone()).or_default().push(r);
    }
    let mut out = Reconciled {
        dry_run: opts.dry_run,
        channels: vec![],
    };
    if by_channel.is_empty() {
        return Ok(out);
    }
    let (channels, why_missing) = build();
    for (name, rows) in by_channel {
        let mut report = ChannelReconciled {
            channel: name.clone(),
            unknown: rows.len() as u64,
            ..ChannelReconciled::default()
        };
        let Some(channel) = channels.get(&name) else {
            let why = why_missing
                .get(&name)
                .cloned()
                .unwrap_or_else(|| format!("channel {name} is not in the pipeline"));
            report.still_unknown = rows.len() as u64;
            report.reasons.insert(why, rows.len() as u64);
            out.channels.push(report);
            continue;
        };
        let delay = chrono::Duration::from_std(channel.settings().reconcile_after)
            .unwrap_or(chrono::Duration::MAX);
        let (due, waiting): (Vec<UnknownRow>, Vec<UnknownRow>) = rows
            .into_iter()
            .partition(|r| r.attempted_at.is_none_or(|t| t + delay <= now));
        report.waiting = waiting.len() as u64;
        for chunk in due.chunks(CHUNK) {
            let asked: Vec<Unsettled> = chunk
                .iter()
                .map(|r| Unsettled {
                    idempotency_key: r.idempotency_key.clone(),
                    campaign: r.campaign.clone(),
                    as_of: r.as_of,
                    to: r.address.clone().unwrap_or_default(),
                    attempted_at: r.attempted_at.unwrap_or(now),
                })
                .collect();
            let settlements = match channel.lookup(&asked).await {
                Ok(s) if s.len() == asked.len() => s,
                Ok(s) => vec![
                    Settlement::open(format!(
                        "the look-up answered {} settlements for {} rows",
                        s.len(),
                        asked.len()
                    ));
                    asked.len()
                ],
                Err(e) => vec![Settlement::open(e.to_string()); asked.len()],
            };
            let records: Vec<LedgerOutcome> = asked
                .iter()
                .zip(settlements)
                .map(|(u, s)| record(&mut report, &u.idempotency_key, s))
                .collect();
            if !opts.dry_run {
                state.settle_unknown(&records)?;
            }
        }
        tracing::info!(channel = %name, unknown = report.unknown, waiting = report.waiting,
            delivered = report.delivered, rejected = report.rejected, not_sent = report.not_sent,
            still_unknown = report.still_unknown, dry_run = opts.dry_run, "reconciled");
        out.channels.push(report);
    }
    Ok(out)
}

/// The ledger record of one settlement, counted in `report`.
fn record(report: &mut ChannelReconciled, key: &str, s: Settlement) -> LedgerOutcome {
    let (state, id, reason) = match s {
        Settlement::Accepted {
            provider_id,
            reason,
        } => {
            report.delivered += 1;
            (SendState::Delivered, provider_id, reason)
        }
        Settlement::AcceptedFailed {
            provider_id,
            reason,
        } => {
            report.rejected += 1;
            (SendState::Rejected, provider_id, reason)
        }
        Settlement::NotAccepted { reason } => {
            report.not_sent += 1;
            (SendState::NotSent, None, reason)
        }
        Settlement::Open { reason } => {
            report.still_unknown += 1;
            *report.reasons.entry(reason.clone()).or_default() += 1;
            (SendState::Unknown, None, reason)
        }
    };
    LedgerOutcome {
        idempotency_key: key.to_string(),
        state,
        provider_message_id: id,
        reason: Some(reason),
        suppression: None,
    }
}
