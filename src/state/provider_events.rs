//! Provider events (`winback listen`'s `/events/*`) into the state database: each event is
//! recorded once (`provider_events`, keyed by the provider's own event id: SendGrid
//! repeats events, up to dozens of times), then acted on in the same transaction:
//! - a hard bounce suppresses the address, and marks the ledger row `bounced`;
//! - soft bounces suppress the address after `soft_bounce_limit` in `soft_bounce_days`;
//! - a spam complaint suppresses the customer (and the address) on every medium;
//! - an unsubscribe (a provider's list, a STOP reply) suppresses the customer and the
//!   address on that medium;
//! - a delivery marks the ledger row `delivered` (accepted and then delivered), unless a
//!   bounce already said otherwise.
//!
//! The customer and campaign come from the ledger row the event names (winback's
//! idempotency key echoed back, else the provider's message id).

use chrono::{DateTime, Days, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::suppressions::{
    COMPLAINT, HARD_BOUNCE, SOFT_BOUNCES, Suppression, UNSUBSCRIBED, insert_suppression,
    normalise_address,
};
use super::{State, StateError, fmt_ts, parse_ts};
use crate::feedback::{FeedbackEvent, FeedbackKind};

/// When soft bounces become a suppression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftBouncePolicy {
    /// This many soft bounces of one address ...
    pub limit: u32,
    /// ... within this many days suppress it.
    pub days: u32,
}

impl Default for SoftBouncePolicy {
    /// 3 in 7 days: a full mailbox for a week is as good as gone.
    fn default() -> Self {
        SoftBouncePolicy { limit: 3, days: 7 }
    }
}

/// What recording a batch of events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventsRecorded {
    /// Events seen for the first time.
    pub new: u32,
    /// Events already recorded (the provider repeated them).
    pub repeated: u32,
    /// New suppressions.
    pub suppressed: u32,
}

/// The ledger row an event is about: (idempotency key, customer, campaign, address).
type LedgerMatch = (String, String, String, Option<String>);

fn ledger_row(tx: &Transaction<'_>, e: &FeedbackEvent) -> Result<Option<LedgerMatch>, StateError> {
    let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
    if let Some(key) = &e.idempotency_key {
        let found = tx
            .prepare_cached(
                "SELECT idempotency_key, customer_id, campaign, address FROM sends \
                 WHERE idempotency_key = ?1",
            )?
            .query_row([key], row)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(id) = &e.provider_message_id {
        return Ok(tx
            .prepare_cached(
                "SELECT idempotency_key, customer_id, campaign, address FROM sends \
                 WHERE provider_message_id = ?1 AND medium = ?2 LIMIT 1",
            )?
            .query_row(params![id, e.medium.as_str()], row)
            .optional()?);
    }
    Ok(None)
}

fn set_provider_status(tx: &Transaction<'_>, key: &str, status: &str) -> Result<(), StateError> {
    tx.prepare_cached(
        "UPDATE sends SET provider_status = ?2 WHERE idempotency_key = ?1 \
         AND (provider_status IS NULL OR ?2 = 'bounced')",
    )?
    .execute(params![key, status])?;
    Ok(())
}

/// Whether `limit` soft bounces of `address` (the one at `at` included) fall within some
/// `days` days that hold `at`. Providers report events out of order (batches, retries), so
/// the window is looked for around `at`, not only back from it: counting everything since
/// `at - days` would also count bounces after the window's end.
fn soft_bounce_limit_reached(
    tx: &Transaction<'_>,
    address: &str,
    at: DateTime<Utc>,
    policy: SoftBouncePolicy,
) -> Result<bool, StateError> {
    let span = Days::new(u64::from(policy.days));
    let times = tx
        .prepare_cached(
            "SELECT at FROM provider_events WHERE address = ?1 AND kind = 'soft_bounce' \
             AND at >= ?2 AND at <= ?3 ORDER BY at",
        )?
        .query_map(
            params![address, fmt_ts(at - span), fmt_ts(at + span)],
            |r| r.get::<_, String>(0),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // Any `days` days holding `at` and n bounces also hold them from the first of those
    // bounces: try each window starting at a bounce no later than `at`.
    let at = fmt_ts(at);
    for (i, start) in times.iter().enumerate().take_while(|(_, t)| **t <= at) {
        let end = fmt_ts(parse_ts("provider_events.at", start)? + span);
        let n = times[i..].iter().take_while(|t| **t <= end).count();
        if u32::try_from(n).unwrap_or(u32::MAX) >= policy.limit {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Records one event; returns (new, suppressions added).
fn record_event(
    tx: &Transaction<'_>,
    e: &FeedbackEvent,
    policy: SoftBouncePolicy,
    now: &str,
) -> Result<(bool, u32), StateError> {
    let found = ledger_row(tx, e)?;
    let address = e
        .address
        .clone()
        .or_else(|| found.as_ref().and_then(|f| f.3.clone()))
        .map(|a| normalise_address(&a));
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO provider_events (provider, event_id, kind, medium, address, \
             idempotency_key, provider_message_id, at, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            e.provider,
            e.event_id,
            e.kind.as_str(),
            e.medium.as_str(),
            address,
            found.as_ref().map(|f| f.0.as_str()),
            e.provider_message_id,
            fmt_ts(e.at),
            now
        ])?;
    if inserted == 0 {
        return Ok((false, 0));
    }
    let key = found.as_ref().map(|f| f.0.as_str());
    let customer_id = found.as_ref().map(|f| f.1.clone());
    let campaign = found.as_ref().map(|f| f.2.clone());
    let suppression = |reason: &str, customer_id: Option<String>, medium| Suppression {
        customer_id,
        medium,
        address: address.clone(),
        reason: reason.to_string(),
        source: e.provider.to_string(),
        campaign: campaign.clone(),
        at: e.at,
    };
    let mut add = None;
    match e.kind {
        FeedbackKind::Delivered => {
            if let Some(key) = key {
                set_provider_status(tx, key, "delivered")?;
            }
        }
        FeedbackKind::HardBounce => {
            if let Some(key) = key {
                set_provider_status(tx, key, "bounced")?;
            }
            // The address is gone, not the customer: a new address may be reached.
            add = Some(suppression(HARD_BOUNCE, None, Some(e.medium)));
        }
        FeedbackKind::SoftBounce => {
            if let Some(a) = &address
                && soft_bounce_limit_reached(tx, a, e.at, policy)?
            {
                add = Some(suppression(SOFT_BOUNCES, None, Some(e.medium)));
            }
        }
        FeedbackKind::Complaint => add = Some(suppression(COMPLAINT, customer_id, None)),
        FeedbackKind::Unsubscribe => {
            add = Some(suppression(UNSUBSCRIBED, customer_id, Some(e.medium)));
        }
    }
    let mut suppressed = 0;
    if let Some(s) = add.filter(|s| s.customer_id.is_some() || s.address.is_some()) {
        suppressed += u32::from(insert_suppression(tx, &s, now)?);
    }
    Ok((true, suppressed))
}

impl State {
    /// Records a verified batch of provider events in one transaction: each once, whatever
    /// how often the provider repeats it.
    pub fn record_provider_events(
        &self,
        events: &[FeedbackEvent],
        policy: SoftBouncePolicy,
    ) -> Result<EventsRecorded, StateError> {
        let now = fmt_ts(self.now());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = EventsRecorded::default();
        for e in events {
            let (new, suppressed) = record_event(&tx, e, policy, &now)?;
            if new {
                out.new += 1;
            } else {
                out.repeated += 1;
            }
            out.suppressed += suppressed;
        }
        tx.commit()?;
        Ok(out)
    }

    /// The provider's later word on an accepted message: `delivered`, `bounced`, or None.
    pub fn provider_status(&self, idempotency_key: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT provider_status FROM sends WHERE idempotency_key = ?1",
                [idempotency_key],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }
}

#[cfg(test)]
#[path = "provider_events_tests.rs"]
mod tests;
