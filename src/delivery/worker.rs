//! The worker pool of one delivery: `concurrency` workers take batches from a shared
//! source, reserve them in the ledger, send them under the channel's throttle, retry what
//! is retriable within `max_attempts` and the time budget, and record every outcome.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::SemaphorePermit;
use tracing::Instrument;

use super::window::{QUIET_HOURS, by_window};
use super::{ChannelReport, DeliveryError, DeliveryOptions, LedgerWriter, Outgoing};
use crate::channels::rate_limit::Throttle;
use crate::channels::{Channel, ChannelError, Outcome, RetryPolicy, Sent};
use crate::clock::add_std;
use crate::message::{Message, SendState};
use crate::state::suppressions::{Suppression, UNSUBSCRIBED};
use crate::state::{LedgerDecision, LedgerOutcome, Tags};

const BUDGET_EXHAUSTED: &str = "time budget exhausted";
const CANCELLED: &str = "run cancelled before the request";

/// One delivery in progress, of messages taken from the source as `T`.
pub(super) struct Run<T> {
    channel: Arc<dyn Channel>,
    ledger: LedgerWriter,
    source: Mutex<Box<dyn Iterator<Item = T> + Send>>,
    opts: DeliveryOptions,
    throttle: Throttle,
    deadline: DateTime<Utc>,
    /// Set when the channel must stop (bad credentials, internal failure).
    stop: AtomicBool,
    report: Mutex<ChannelReport>,
}

impl<T: Outgoing> Run<T> {
    pub(super) fn new(
        channel: Arc<dyn Channel>,
        ledger: LedgerWriter,
        source: Box<dyn Iterator<Item = T> + Send>,
        opts: DeliveryOptions,
    ) -> Arc<Run<T>> {
        let s = channel.settings();
        let throttle = Throttle::new(s.rate_per_sec, s.concurrency, opts.clock.clone());
        let deadline = add_std(opts.clock.now(), opts.time_budget);
        let report = ChannelReport {
            channel: channel.name().to_string(),
            ..ChannelReport::default()
        };
        Arc::new(Run {
            channel,
            ledger,
            source: Mutex::new(source),
            opts,
            throttle,
            deadline,
            stop: AtomicBool::new(false),
            report: Mutex::new(report),
        })
    }

    /// Runs the workers to the end; the first channel-stopping error wins.
    pub(super) async fn execute(self: Arc<Run<T>>) -> Result<ChannelReport, DeliveryError> {
        let workers = self.channel.settings().concurrency.max(1);
        let mut set = tokio::task::JoinSet::new();
        for id in 0..workers {
            let run = self.clone();
            set.spawn(
                async move { run.work().await }
                    .instrument(tracing::debug_span!("worker", worker = id)),
            );
        }
        let mut first_err = None;
        while let Some(joined) = set.join_next().await {
            let result = joined.unwrap_or_else(|e| {
                self.stop.store(true, Ordering::SeqCst);
                Err(self.ledger_err(format!("a delivery worker panicked: {e}")))
            });
            if let Err(e) = result {
                first_err.get_or_insert(e);
            }
        }
        // Whatever was never taken (cancelled, stopped) is left untouched for the next run.
        let left = self.take(usize::MAX).len() as u64;
        let mut report = self.report().clone();
        report.messages += left;
        report.not_attempted += left;
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn report(&self) -> std::sync::MutexGuard<'_, ChannelReport> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, n: usize) -> Vec<T> {
        let mut src = self.source.lock().unwrap_or_else(|e| e.into_inner());
        src.by_ref().take(n).collect()
    }

    fn ledger_err(&self, reason: String) -> DeliveryError {
        DeliveryError::Ledger {
            channel: self.channel.name().to_string(),
            reason,
        }
    }

    fn halted(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.opts.cancel.is_cancelled()
    }

    async fn work(self: Arc<Run<T>>) -> Result<(), DeliveryError> {
        let size = self.channel.settings().batch_size.max(1);
        while !self.halted() {
            let taken = self.take(size);
            if taken.is_empty() {
                break;
            }
            // Made ready (rendered) here, outside the source's lock, in every worker at once.
            let batch: Vec<Message> = taken.into_iter().filter_map(Outgoing::ready).collect();
            self.report().messages += batch.len() as u64;
            let batch = self.hold_back(batch, false).await?;
            let n = batch.len() as u64;
            if batch.is_empty() {
                continue;
            }
            let pending = self
                .ledger
                .reserve(batch)
                .await
                .map_err(|e| self.ledger_err(e))?;
            {
                let mut r = self.report();
                r.skipped += n - pending.len() as u64;
                r.sent += pending.len() as u64;
            }
            if pending.is_empty() {
                continue;
            }
            let span = tracing::debug_span!("batch", size = pending.len());
            if let Err(e) = self.send_batch(pending).instrument(span).await {
                self.stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sends one reserved batch until every recipient is settled.
    async fn send_batch(&self, mut pending: Vec<Message>) -> Result<(), DeliveryError> {
        let policy = self.channel.settings().retry;
        let mut attempt: u32 = 1;
        loop {
            let permit = match self.acquire_slot().await {
                Ok(p) => p,
                Err(why) => return self.settle_all(&pending, SendState::Failed, why).await,
            };
            // The slot may have waited (a 429 pause, the rate limit): check the windows again.
            pending = self.hold_back(pending, true).await?;
            if pending.is_empty() {
                return Ok(());
            }
            let sent = self.channel.send(&pending).await;
            drop(permit);
            self.report().requests += 1;
            if sent.outcomes.len() != pending.len() {
                let e = ChannelError::Internal {
                    channel: self.channel.name().to_string(),
                    reason: format!(
                        "the channel answered {} outcomes for {} recipients",
                        sent.outcomes.len(),
                        pending.len()
                    ),
                };
                // What happened is not known: never re-send automatically.
                self.settle_all(&pending, SendState::Unknown, &e.to_string())
                    .await?;
                return Err(e.into());
            }
            let Sent { outcomes, halt } = sent;
            let (free_retry, stop) = self.on_halt(halt, policy, attempt, pending.len());
            let max = match (&stop, free_retry) {
                (Some(_), _) => attempt, // nothing is retried: the channel stops
                (None, true) => u32::MAX,
                (None, false) => policy.max_attempts,
            };
            let (records, retry, wait, last_reason) =
                self.sort_outcomes(pending, outcomes, attempt, max);
            self.ledger
                .record(records)
                .await
                .map_err(|e| self.ledger_err(e))?;
            if let Some(e) = stop {
                return Err(e.into());
            }
            if free_retry {
                // Not an attempt: the requests of the recipients left were never processed.
                pending = retry;
                if pending.is_empty() {
                    return Ok(());
                }
                continue;
            }
            if retry.is_empty() {
                return Ok(());
            }
            let delay = policy.delay(attempt, wait, &mut rand::rng());
            tracing::warn!(recipients = retry.len(), attempt, delay_ms = delay.as_millis() as u64,
                reason = %last_reason, "retrying");
            if let Err(why) = self.back_off(delay).await {
                return self.settle_all(&retry, SendState::Failed, why).await;
            }
            attempt += 1;
            let keys = retry.iter().map(|m| m.idempotency_key.clone()).collect();
            self.ledger
                .count_attempt(keys)
                .await
                .map_err(|e| self.ledger_err(e))?;
            pending = retry;
        }
    }

    /// The messages of `batch` whose recipient's window is open now (or that the channel
    /// schedules for its opening); the others are recorded `deferred` (`quiet_hours`).
    /// `reserved`: the batch is in flight already (its rows are updated, not upserted).
    async fn hold_back(
        &self,
        batch: Vec<Message>,
        reserved: bool,
    ) -> Result<Vec<Message>, DeliveryError> {
        let sorted = by_window(self.channel.settings(), self.opts.clock.now(), batch);
        let deferred = sorted.deferred.len() as u64;
        {
            let mut r = self.report();
            r.deferred += deferred;
            r.scheduled += sorted.scheduled;
            if reserved {
                r.sent -= deferred;
            }
        }
        if deferred > 0 {
            tracing::info!(
                recipients = deferred,
                "quiet hours began: deferred to the next run"
            );
        }
        let done = if reserved {
            let records = sorted
                .deferred
                .into_iter()
                .map(|m| LedgerOutcome {
                    idempotency_key: m.idempotency_key,
                    state: SendState::Deferred,
                    provider_message_id: None,
                    reason: Some(QUIET_HOURS.to_string()),
                    suppression: None,
                })
                .collect();
            self.ledger.record(records).await
        } else {
            let rows = sorted
                .deferred
                .into_iter()
                .map(|m| LedgerDecision {
                    entry_date: m.entry_date,
                    message: m,
                    state: SendState::Deferred,
                    reason: Some(QUIET_HOURS.to_string()),
                    tags: Tags::default(),
                })
                .collect();
            self.ledger.decide(rows).await
        };
        done.map_err(|e| self.ledger_err(e))?;
        Ok(sorted.send)
    }

    /// A send slot: waits for the pause gate, the rate limit and a free slot. Gives up
    /// at the deadline or at cancellation with the reason (the batch was not sent this
    /// attempt: a later run retries).
    async fn acquire_slot(&self) -> Result<SemaphorePermit<'_>, &'static str> {
        let clock = &self.opts.clock;
        let permit = tokio::select! {
            p = self.throttle.acquire() => Ok(p),
            _ = clock.sleep_until(self.deadline) => Err(BUDGET_EXHAUSTED),
            _ = self.opts.cancel.cancelled() => Err(CANCELLED),
        };
        match permit {
            Ok(_) if clock.now() >= self.deadline => Err(BUDGET_EXHAUSTED),
            p => p,
        }
    }

    /// What a halt of the channel means for this batch: `(free_retry, stop)`. A 429
    /// pauses every worker and uses up no attempt (a free retry); any other halt stops
    /// the channel. Either way what the requests before it earned is recorded as is.
    fn on_halt(
        &self,
        halt: Option<ChannelError>,
        policy: RetryPolicy,
        attempt: u32,
        recipients: usize,
    ) -> (bool, Option<ChannelError>) {
        match halt {
            None => (false, None),
            Some(ChannelError::RateLimited { retry_after, .. }) => {
                let wait = policy.delay(attempt, retry_after, &mut rand::rng());
                let until = self.throttle.pause_for(wait);
                self.report().throttled += 1;
                tracing::warn!(wait_ms = wait.as_millis() as u64, %until, "provider answered 429: pausing the channel");
                (true, None)
            }
            Some(e) => {
                tracing::error!(error = %e, recipients, "stopping the channel");
                self.stop.store(true, Ordering::SeqCst);
                self.report().stopped = Some(e.to_string());
                (false, Some(e))
            }
        }
    }

    /// Waits `delay` before a retry; gives up with the reason when the wait would pass
    /// the deadline, or at cancellation.
    async fn back_off(&self, delay: std::time::Duration) -> Result<(), &'static str> {
        let clock = &self.opts.clock;
        if add_std(clock.now(), delay) >= self.deadline {
            return Err(BUDGET_EXHAUSTED);
        }
        tokio::select! {
            _ = clock.sleep(delay) => Ok(()),
            _ = self.opts.cancel.cancelled() => Err(CANCELLED),
        }
    }

    /// Splits outcomes into ledger records and recipients to retry; counts them.
    fn sort_outcomes(
        &self,
        pending: Vec<Message>,
        outcomes: Vec<Outcome>,
        attempt: u32,
        max_attempts: u32,
    ) -> (
        Vec<LedgerOutcome>,
        Vec<Message>,
        Option<std::time::Duration>,
        String,
    ) {
        let mut records = Vec::with_capacity(pending.len());
        let (mut retry, mut wait, mut last) = (Vec::new(), None, String::new());
        let mut r = self.report();
        for (m, o) in pending.into_iter().zip(outcomes) {
            let (state, id, reason) = match o {
                Outcome::Delivered { provider_id } => {
                    r.delivered += 1;
                    r.cost += m.cost;
                    (SendState::Delivered, provider_id, None)
                }
                Outcome::Rejected { reason } => {
                    r.rejected += 1;
                    (SendState::Rejected, None, Some(reason))
                }
                Outcome::OptedOut { reason } => {
                    r.rejected += 1;
                    r.opted_out += 1;
                    records.push(LedgerOutcome {
                        suppression: Some(Suppression {
                            customer_id: Some(m.customer_id.clone()),
                            medium: Some(m.medium),
                            address: Some(m.to.clone()),
                            reason: UNSUBSCRIBED.to_string(),
                            source: format!("provider:{}", self.channel.name()),
                            campaign: Some(m.campaign.clone()),
                            at: self.opts.clock.now(),
                        }),
                        idempotency_key: m.idempotency_key,
                        state: SendState::Rejected,
                        provider_message_id: None,
                        reason: Some(reason),
                    });
                    continue;
                }
                Outcome::Unknown { reason } => {
                    r.unknown += 1;
                    *r.unknown_reasons.entry(reason.clone()).or_default() += 1;
                    (SendState::Unknown, None, Some(reason))
                }
                Outcome::Retriable {
                    reason,
                    retry_after,
                } if attempt < max_attempts => {
                    wait = wait.max(retry_after);
                    last = reason;
                    retry.push(m);
                    continue;
                }
                Outcome::Retriable { reason, .. } => {
                    r.failed += 1;
                    let why = format!("gave up after {attempt} attempts: {reason}");
                    (SendState::Failed, None, Some(why))
                }
            };
            records.push(LedgerOutcome {
                idempotency_key: m.idempotency_key,
                state,
                provider_message_id: id,
                reason,
                suppression: None,
            });
        }
        (records, retry, wait, last)
    }

    /// Records every recipient of `batch` in `state` with `reason`.
    async fn settle_all(
        &self,
        batch: &[Message],
        state: SendState,
        reason: &str,
    ) -> Result<(), DeliveryError> {
        {
            let mut r = self.report();
            match state {
                SendState::Unknown => {
                    r.unknown += batch.len() as u64;
                    *r.unknown_reasons.entry(reason.to_string()).or_default() += batch.len() as u64;
                }
                _ => r.failed += batch.len() as u64,
            }
        }
        let records = batch
            .iter()
            .map(|m| LedgerOutcome {
                idempotency_key: m.idempotency_key.clone(),
                state,
                provider_message_id: None,
                reason: Some(reason.to_string()),
                suppression: None,
            })
            .collect();
        self.ledger
            .record(records)
            .await
            .map_err(|e| self.ledger_err(e))
    }
}
