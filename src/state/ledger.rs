//! The send ledger (table `sends`): one row per idempotency key, written `in_flight` before a
//! request and settled after it, in one transaction per batch, so that a rerun never sends
//! again what was delivered or rejected and a crash leaves `unknown` rows instead of doubles.
//!
//! The table is keyed by the idempotency key (`WITHOUT ROWID`: one b-tree, not a table
//! plus a unique index) and only an `as_of` index, because every recipient costs one insert
//! and one update on the hot path (an index on `state` cost 40% of the ledger's time;
//! `recover_in_flight` scans instead, once per run). `as_of >= entry_date` holds for every row.
//!
//! Rows hold the recipient's address because delivery needs it; it is never logged (use
//! [`LedgerRow::masked_address`]).
//!
//! This file holds the rows and the writes (reserve, record, recovery, reconciliation);
//! `ledger_batches` the batch statements behind them; `ledger_reads` the reads for planning
//! and reporting.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::ledger_batches::{attempt_tx, decide_tx, record_tx, reserve_tx};
use super::ledger_rows::{LedgerDecision, LedgerOutcome, Tags, parse_state};
use super::{State, StateError, bad_column, fmt_ts, parse_ts};
use crate::message::{Medium, Message, SendState};

/// An `unknown` row, as reconciliation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownRow {
    pub idempotency_key: String,
    pub campaign: String,
    pub channel: String,
    pub as_of: NaiveDate,
    pub address: Option<String>,
    pub attempted_at: Option<DateTime<Utc>>,
}

/// One row of `sends`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRow {
    pub idempotency_key: String,
    pub campaign: String,
    pub step: u32,
    pub customer_id: String,
    pub channel: String,
    pub medium: Medium,
    /// The real address: never log it, use [`LedgerRow::masked_address`].
    #[serde(skip_serializing)]
    pub address: Option<String>,
    pub as_of: NaiveDate,
    pub entry_date: NaiveDate,
    pub state: SendState,
    pub reason: Option<String>,
    pub attempts: u32,
    pub provider_message_id: Option<String>,
    pub cost: f64,
    /// The audience's segment, treatment and value at decision time.
    pub tags: Tags,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The provider's later word on a message it accepted (its event webhook, through
    /// `winback listen`): `delivered`, `bounced`, or None (accepted, no news).
    pub provider_status: Option<String>,
}

impl LedgerRow {
    pub fn masked_address(&self) -> String {
        self.address
            .as_deref()
            .map(|a| crate::mask::address(Some(self.medium), a))
            .unwrap_or_default()
    }
}

/// Rows per (campaign, step, channel, state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendCount {
    pub campaign: String,
    pub step: u32,
    pub channel: String,
    pub state: SendState,
    pub n: u64,
}

pub(super) const ROW_COLUMNS: &str = "idempotency_key, campaign, step, customer_id, channel, medium, \
    address, as_of, entry_date, state, reason, attempts, provider_message_id, cost, \
    created_at, updated_at, sent_at, segment, treatment, value, provider_status, would_be_suppressed";

fn bad(column: &'static str, value: &str) -> StateError {
    StateError::InvalidValue {
        column,
        value: value.to_string(),
    }
}

pub(super) fn parse_date(column: &'static str, s: &str) -> Result<NaiveDate, StateError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad(column, s))
}

pub(super) fn parse_medium(s: &str) -> Result<Medium, StateError> {
    match s {
        "email" => Ok(Medium::Email),
        "sms" => Ok(Medium::Sms),
        "call" => Ok(Medium::Call),
        _ => Err(bad("sends.medium", s)),
    }
}

pub(super) fn read_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow(
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ),
        (
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
            r.get(10)?,
            r.get(11)?,
        ),
        (r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?),
        Tags {
            segment: r.get(17)?,
            treatment: r.get(18)?,
            value: r.get(19)?,
            would_be_suppressed: r.get(21)?,
        },
        r.get(20)?,
    ))
}

type RawA = (String, String, u32, String, String, String);
type RawB = (Option<String>, String, String, String, Option<String>, u32);
type RawC = (Option<String>, f64, String, String, Option<String>);
pub(super) struct RawRow(RawA, RawB, RawC, Tags, Option<String>);

impl RawRow {
    pub(super) fn into_row(self) -> Result<LedgerRow, StateError> {
        let RawRow(a, b, c, tags, provider_status) = self;
        Ok(LedgerRow {
            idempotency_key: a.0,
            campaign: a.1,
            step: a.2,
            customer_id: a.3,
            channel: a.4,
            medium: parse_medium(&a.5)?,
            address: b.0,
            as_of: parse_date("sends.as_of", &b.1)?,
            entry_date: parse_date("sends.entry_date", &b.2)?,
            state: parse_state(&b.3)?,
            reason: b.4,
            attempts: b.5,
            provider_message_id: c.0,
            cost: c.1,
            tags,
            created_at: parse_ts("sends.created_at", &c.2)?,
            updated_at: parse_ts("sends.updated_at", &c.3)?,
            sent_at: c
                .4
                .as_deref()
                .map(|s| parse_ts("sends.sent_at", s))
                .transpose()?,
            provider_status,
        })
    }
}

impl State {
    /// Rows left `in_flight` by a run that is dead (its lock is gone, expired, held by
    /// another holder, or held by a dead process on this host) become `unknown` (they may
    /// have been delivered) and are returned for reporting. Rows of a live run (another
    /// `as_of` running at the same time on this state folder) are left alone. Call it under
    /// the run lock, before any delivery of this run.
    pub fn recover_in_flight(&self) -> Result<Vec<LedgerRow>, StateError> {
        let now = self.now();
        let owners: Vec<(Option<String>, Option<String>)> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT DISTINCT run_lock, run_holder FROM sends WHERE state = 'in_flight'",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for (lock, holder) in owners {
            let alive = match (&lock, &holder) {
                (Some(l), Some(h)) => self.holds_live_lock(l, h, now)?,
                _ => false,
            };
            if alive {
                continue;
            }
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let raw: Vec<RawRow> = {
                let mut stmt = tx.prepare(&format!(
                    "UPDATE sends SET state = 'unknown', updated_at = ?1, reason = \
                     'in flight when a previous winback process stopped: maybe delivered' \
                     WHERE state = 'in_flight' AND run_lock IS ?2 AND run_holder IS ?3 \
                     RETURNING {ROW_COLUMNS}"
                ))?;
                stmt.query_map(params![fmt_ts(now), lock, holder], read_row)?
                    .collect::<rusqlite::Result<_>>()?
            };
            tx.commit()?;
            for r in raw {
                out.push(r.into_row()?);
            }
        }
        Ok(out)
    }

    /// The `unknown` rows reconciliation may settle, of `campaign` and `as_of` when given
    /// (the caller waits each channel's settle delay after `attempted_at`).
    pub fn unknown_to_settle(
        &self,
        campaign: Option<&str>,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<UnknownRow>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT idempotency_key, campaign, channel, as_of, address, \
             COALESCE(attempted_at, updated_at) FROM sends WHERE state = 'unknown' \
             AND (?1 IS NULL OR campaign = ?1) AND (?2 IS NULL OR as_of = ?2) \
             ORDER BY channel, attempted_at, idempotency_key",
        )?;
        let rows = stmt
            .query_map(params![campaign, as_of.map(|d| d.to_string())], |r| {
                let as_of: String = r.get(3)?;
                let attempted: Option<String> = r.get(5)?;
                Ok(UnknownRow {
                    idempotency_key: r.get(0)?,
                    campaign: r.get(1)?,
                    channel: r.get(2)?,
                    as_of: parse_date("sends.as_of", &as_of).map_err(|e| bad_column(3, e))?,
                    address: r.get(4)?,
                    attempted_at: attempted
                        .map(|t| parse_ts("sends.attempted_at", &t))
                        .transpose()
                        .map_err(|e| bad_column(5, e))?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Settles reconciled rows, each only if it is still `unknown` (a concurrent
    /// reconciliation or a resend may have moved it). Returns how many changed.
    pub fn settle_unknown(&self, records: &[LedgerOutcome]) -> Result<usize, StateError> {
        let now = fmt_ts(self.now());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut changed = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE sends SET state = ?2, reason = ?3, \
                 provider_message_id = COALESCE(?4, provider_message_id), updated_at = ?5, \
                 sent_at = CASE WHEN ?2 = 'delivered' THEN COALESCE(attempted_at, ?5) \
                 ELSE sent_at END WHERE idempotency_key = ?1 AND state = 'unknown'",
            )?;
            for r in records {
                changed += stmt.execute(params![
                    r.idempotency_key,
                    r.state.as_str(),
                    r.reason,
                    r.provider_message_id,
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// In one transaction: marks `in_flight` (attempts + 1) every message whose row is not
    /// final, and returns those, in order. Skipped: delivered, rejected, holdout, rows in
    /// flight, and `unknown` unless `resend_unknown`.
    pub fn reserve(
        &self,
        batch: &[Message],
        resend_unknown: bool,
    ) -> Result<Vec<Message>, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let keep = reserve_tx(&tx, batch, resend_unknown, None, &fmt_ts(self.now()))?;
        tx.commit()?;
        Ok(batch
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(m, _)| m.clone())
            .collect())
    }

    /// Read only: which messages `reserve` would send now (for `--dry-run`).
    pub fn sendable(
        &self,
        batch: &[Message],
        resend_unknown: bool,
    ) -> Result<Vec<bool>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT state FROM sends WHERE idempotency_key = ?1")?;
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            let state: Option<String> = stmt
                .query_row([&m.idempotency_key], |r| r.get(0))
                .optional()?;
            out.push(match state.as_deref().map(parse_state).transpose()? {
                None => true,
                Some(SendState::Unknown) => resend_unknown,
                Some(s) => !(s.is_final() || s == SendState::InFlight),
            });
        }
        Ok(out)
    }

    /// Settles the outcomes of a batch in one transaction.
    pub fn record(&self, records: &[LedgerOutcome]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        record_tx(&tx, records, &fmt_ts(self.now()))?;
        tx.commit()?;
        Ok(())
    }

    /// Counts one more attempt for rows still in flight (a retry within the run).
    pub fn count_attempt(&self, keys: &[&str]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        attempt_tx(&tx, keys, &fmt_ts(self.now()))?;
        tx.commit()?;
        Ok(())
    }

    /// Rows of night `as_of` of these campaigns still `planned` and not written since
    /// `since` (a timestamp of [`State::now`] taken before this run recorded its decisions):
    /// an earlier attempt of the night planned them and this run's plan did not (it chose
    /// another channel for the step: a call place, a new bounce). They become `not_sent`
    /// with reason `replanned`, so the ledger lists no message that will never go out; the
    /// step stays plannable on later nights. Returns how many.
    pub fn supersede_planned(
        &self,
        as_of: NaiveDate,
        campaigns: &[&str],
        since: DateTime<Utc>,
    ) -> Result<usize, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut changed = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE sends SET state = 'not_sent', reason = 'replanned', updated_at = ?1 \
                 WHERE as_of = ?2 AND campaign = ?3 AND state = 'planned' AND updated_at < ?4",
            )?;
            let (now, since) = (fmt_ts(self.now()), fmt_ts(since));
            for campaign in campaigns {
                changed += stmt.execute(params![now, as_of.to_string(), campaign, since])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Writes planning decisions (planned, holdout, suppressed, deferred) in one transaction.
    /// A row already final or in flight is left as it is.
    pub fn record_decisions(&self, decisions: &[LedgerDecision]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        decide_tx(&tx, decisions, &fmt_ts(self.now()))?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
