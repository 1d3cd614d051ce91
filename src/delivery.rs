//! Delivery: reserve -> send -> record, for one channel. Batches are written `in_flight` to
//! the send ledger before their request and settled after it; workers share the channel's
//! rate limit, concurrency and 429 pause; retries are finite and the run has a time budget.

mod ledger_writer;
pub mod reconcile;
pub mod report;
pub mod test_send;
pub mod window;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::channels::{Channel, ChannelError, RequestPreview};
use crate::clock::Clock;
use crate::error::Blame;
use crate::message::Message;
use crate::state::{RunOwner, State};

pub use ledger_writer::LedgerWriter;

/// How one delivery runs.
#[derive(Clone)]
pub struct DeliveryOptions {
    /// Checked between batches: once cancelled no new batch is taken, the batches in flight
    /// are finished and recorded, the rest is left untouched for the next run.
    pub cancel: CancellationToken,
    /// The longest the whole delivery may take; recipients still waiting then end `failed`.
    pub time_budget: Duration,
    pub clock: Arc<dyn Clock>,
    /// `Some(dir)`: write the exact requests (secrets masked) to `dir/<channel>.requests.jsonl`,
    /// send nothing and record nothing.
    pub dry_run: Option<PathBuf>,
    /// Send `unknown` rows again (the campaign's `on_unknown = "resend"`).
    pub resend_unknown: bool,
    /// The run reserving the rows (its lock): recovery leaves a live run's rows alone.
    pub owner: Option<RunOwner>,
}

impl DeliveryOptions {
    /// Defaults: not cancelled, one hour of budget, no dry run, unknown rows not re-sent.
    pub fn new(clock: Arc<dyn Clock>) -> DeliveryOptions {
        DeliveryOptions {
            cancel: CancellationToken::new(),
            time_budget: Duration::from_secs(3600),
            clock,
            dry_run: None,
            resend_unknown: false,
            owner: None,
        }
    }
}

/// What happened to one channel's messages in one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelReport {
    pub channel: String,
    /// Messages handed to the channel.
    pub messages: u64,
    /// Already final in the ledger (delivered, rejected, holdout, unknown): not sent again.
    pub skipped: u64,
    /// Recipients at least one request was made for.
    pub sent: u64,
    pub delivered: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Not sent: the recipient's quiet hours when the batch was sent (`deferred`, reason
    /// `quiet_hours`; the next run plans them again).
    pub deferred: u64,
    /// Sent in the recipient's quiet hours for delivery when their window opens
    /// (`defer = "schedule"`).
    pub scheduled: u64,
    pub unknown: u64,
    /// Why recipients ended `unknown` (`timeout after send`, `provider 502`, ...), with
    /// how many each.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unknown_reasons: std::collections::BTreeMap<String, u64>,
    /// Recipients the provider refused because they opted out (recorded for later runs).
    pub opted_out: u64,
    /// Left untouched because the run was cancelled or the channel stopped.
    pub not_attempted: u64,
    /// Requests (or request groups) made, and how many of them were answered 429.
    pub requests: u64,
    pub throttled: u64,
    /// Cost of the delivered messages.
    pub cost: f64,
    /// Wall time of this channel's delivery.
    pub seconds: f64,
    pub dry_run: bool,
    /// Why the channel stopped early (bad credentials), if it did.
    pub stopped: Option<String>,
}

impl ChannelReport {
    /// Some recipient ended `failed` or `unknown`, or was not attempted: exit code 2.
    pub fn is_partial(&self) -> bool {
        self.failed + self.unknown + self.not_attempted > 0 || self.stopped.is_some()
    }
}

/// Why a delivery stopped. Never contains a secret, an address or a phone number.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("channel {channel}: {reason}")]
    Ledger { channel: String, reason: String },
    #[error("channel {channel}: cannot write the dry-run requests to {}: {source}", path.display())]
    DryRun {
        channel: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DeliveryError {
    /// A channel error is as its kind says; a ledger or dry-run file that cannot be
    /// written is never the user's configuration (a retry may help: the disk, a lock).
    pub fn blame(&self) -> Blame {
        match self {
            DeliveryError::Channel(e) => e.blame(),
            DeliveryError::Ledger { .. } | DeliveryError::DryRun { .. } => Blame::External,
        }
    }
}

/// A message as delivery takes it from its source: ready, or still to be made ready (its
/// text rendered) by the worker that sends it. The workers share one source under a lock;
/// taking is cheap, and the rendering, one message at a time, runs in every worker at
/// once instead of under that lock.
pub trait Outgoing: Send + 'static {
    /// The message to send; `None` leaves it out (the implementor logs why).
    fn ready(self) -> Option<Message>;
}

impl Outgoing for Message {
    fn ready(self) -> Option<Message> {
        Some(self)
    }
}

/// Delivers `messages` (all for `channel`) and records every recipient in the ledger.
///
/// Returns the report, or an error when the channel had to stop (bad credentials: every
/// recipient of the refused batch is recorded `failed`, naming the channel and the
/// environment variable) or the ledger could not be written.
pub async fn deliver<I>(
    state: &State,
    channel: Arc<dyn Channel>,
    messages: I,
    opts: DeliveryOptions,
) -> Result<ChannelReport, DeliveryError>
where
    I: IntoIterator,
    I::Item: Outgoing,
    I::IntoIter: Send + 'static,
{
    let name = channel.name().to_string();
    let span = tracing::info_span!("deliver", channel = %name, medium = channel.medium().as_str(),
        dry_run = opts.dry_run.is_some());
    async move {
        if let Some(dir) = opts.dry_run.clone() {
            return dry_run(state, channel.as_ref(), messages.into_iter(), &dir, &opts).await;
        }
        let started = std::time::Instant::now();
        let ledger = LedgerWriter::start(state.clone(), opts.resend_unknown, opts.owner.clone());
        let run = worker::Run::new(channel, ledger, Box::new(messages.into_iter()), opts);
        let mut report = run.execute().await?;
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            delivered = report.delivered,
            rejected = report.rejected,
            failed = report.failed,
            unknown = report.unknown,
            skipped = report.skipped,
            not_attempted = report.not_attempted,
            requests = report.requests,
            throttled = report.throttled,
            cost = report.cost,
            "delivery finished"
        );
        Ok(report)
    }
    .instrument(span)
    .await
}

/// The dry run: previews of what would be sent (ledger read, not written).
async fn dry_run(
    state: &State,
    channel: &dyn Channel,
    mut messages: impl Iterator<Item = impl Outgoing>,
    dir: &Path,
    opts: &DeliveryOptions,
) -> Result<ChannelReport, DeliveryError> {
    use std::io::Write;
    let name = channel.name().to_string();
    let path = dir.join(format!("{name}.requests.jsonl"));
    let io_err = |source| DeliveryError::DryRun {
        channel: name.clone(),
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let tmp = dir.join(format!(".{name}.requests.jsonl.tmp"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io_err)?);
    let mut report = ChannelReport {
        channel: name.clone(),
        dry_run: true,
        ..ChannelReport::default()
    };
    let size = channel.settings().batch_size.max(1);
    loop {
        let taken: Vec<_> = messages.by_ref().take(size).collect();
        if taken.is_empty() {
            break;
        }
        let batch: Vec<Message> = taken.into_iter().filter_map(Outgoing::ready).collect();
        report.messages += batch.len() as u64;
        let sorted = window::by_window(channel.settings(), opts.clock.now(), batch);
        report.deferred += sorted.deferred.len() as u64;
        report.scheduled += sorted.scheduled;
        let batch = sorted.send;
        let sendable =
            state
                .sendable(&batch, opts.resend_unknown)
                .map_err(|e| DeliveryError::Ledger {
                    channel: name.clone(),
                    reason: format!("send ledger: {e}"),
                })?;
        let batch: Vec<Message> = batch
            .into_iter()
            .zip(sendable)
            .filter_map(|(m, ok)| ok.then_some(m))
            .collect();
        if batch.is_empty() {
            continue;
        }
        report.sent += batch.len() as u64;
        for p in channel.preview(&batch) {
            write_preview(&mut out, &p).map_err(io_err)?;
            report.requests += 1;
        }
    }
    report.skipped = report.messages - report.sent - report.deferred;
    out.flush().map_err(io_err)?;
    out.into_inner()
        .map_err(|e| io_err(e.into_error()))?
        .sync_all()
        .map_err(io_err)?;
    std::fs::rename(&tmp, &path).map_err(io_err)?;
    tracing::info!(
        requests = report.requests,
        recipients = report.sent,
        "dry run written"
    );
    Ok(report)
}

fn write_preview(out: &mut impl std::io::Write, p: &RequestPreview) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, p)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod lost_answer_tests;

#[cfg(test)]
mod leak_tests;

impl crate::error::Blamed for DeliveryError {
    fn blame(&self) -> Blame {
        DeliveryError::blame(self)
    }
}

#[cfg(test)]
mod window_tests;
