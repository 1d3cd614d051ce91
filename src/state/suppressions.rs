//! What winback has been told never to send again (table `suppressions`): unsubscribes
//! (a one-click POST to `winback listen`, a provider's unsubscribe event, a STOP reply,
//! Twilio's 21610), hard bounces, repeated soft bounces and spam complaints. Every run's
//! suppression reads the whole table, whatever `as_of` the run is for: an opt-out is
//! never cut by a date. A row blocks a customer (`customer_id`), an address (`address`),
//! or both, on one medium or (`medium` null) on every medium.

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};

use super::{State, StateError, bad_column, parse_ts};
use crate::message::Medium;

/// The customer asked to hear no more (a link, a reply, the provider's list).
pub const UNSUBSCRIBED: &str = "unsubscribed";
/// The address does not exist (a permanent bounce).
pub const HARD_BOUNCE: &str = "hard_bounce";
/// The address bounced temporarily too often (`[feedback] soft_bounce_limit` in
/// `soft_bounce_days`).
pub const SOFT_BOUNCES: &str = "soft_bounces";
/// The customer marked a message as spam: nothing more on any medium.
pub const COMPLAINT: &str = "complaint";

/// The migration that creates `suppressions` (from the earlier `opt_outs`), the
/// `provider_events` seen (deduplicated by the provider's event id), and the ledger's
/// `provider_status` (the provider's later word on a message it accepted).
pub const SUPPRESSIONS_MIGRATION: &str = r#"
CREATE TABLE suppressions (
    customer_id TEXT,
    medium      TEXT CHECK (medium IS NULL OR medium IN ('email', 'sms')),
    address     TEXT,
    reason      TEXT NOT NULL,
    source      TEXT NOT NULL,
    campaign    TEXT,
    at          TEXT NOT NULL,
    CHECK (customer_id IS NOT NULL OR address IS NOT NULL)
);
CREATE UNIQUE INDEX suppressions_once ON suppressions (COALESCE(customer_id, ''),
    COALESCE(medium, ''), COALESCE(address, ''), reason, source);
INSERT INTO suppressions (customer_id, medium, address, reason, source, at)
    SELECT customer_id, medium, lower(trim(address)), 'unsubscribed', source, at FROM opt_outs;
DROP TABLE opt_outs;
CREATE TABLE provider_events (
    provider            TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    kind                TEXT NOT NULL,
    medium              TEXT NOT NULL,
    address             TEXT,
    idempotency_key     TEXT,
    provider_message_id TEXT,
    at                  TEXT NOT NULL,
    received_at         TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
) WITHOUT ROWID;
CREATE INDEX provider_events_address ON provider_events (address, kind);
ALTER TABLE sends ADD COLUMN provider_status TEXT
    CHECK (provider_status IS NULL OR provider_status IN ('delivered', 'bounced'));
CREATE INDEX sends_provider_message_id ON sends (provider_message_id);
"#;

/// One suppression. Its `Debug` masks the address.
#[derive(Clone, PartialEq)]
pub struct Suppression {
    pub customer_id: Option<String>,
    /// None = every medium.
    pub medium: Option<Medium>,
    /// Compared without case and surrounding blanks (never logged).
    pub address: Option<String>,
    /// [`UNSUBSCRIBED`], [`HARD_BOUNCE`], [`SOFT_BOUNCES`] or [`COMPLAINT`].
    pub reason: String,
    /// Who said so: `provider:<channel>` (a refusal while sending), `one_click`,
    /// `sendgrid`, `mailgun`, `twilio` (their event webhooks), `operator`.
    pub source: String,
    /// The campaign whose message it answered, when known.
    pub campaign: Option<String>,
    pub at: DateTime<Utc>,
}

impl std::fmt::Debug for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suppression")
            .field("customer_id", &self.customer_id)
            .field("medium", &self.medium)
            .field(
                "address",
                &crate::mask::optional_address(self.medium, self.address.as_deref()),
            )
            .field("reason", &self.reason)
            .field("source", &self.source)
            .field("campaign", &self.campaign)
            .field("at", &self.at)
            .finish()
    }
}

/// Addresses are stored as compared: trimmed and lowercased.
pub fn normalise_address(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Records `s` unless the same suppression (customer, medium, address, reason, source) is
/// already there; returns whether it is new.
pub(crate) fn insert_suppression(
    tx: &Transaction<'_>,
    s: &Suppression,
    at: &str,
) -> Result<bool, StateError> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO suppressions \
             (customer_id, medium, address, reason, source, campaign, at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            s.customer_id,
            s.medium.map(Medium::as_str),
            s.address.as_deref().map(normalise_address),
            s.reason,
            s.source,
            s.campaign,
            at
        ])?;
    Ok(n == 1)
}

impl State {
    /// Records one suppression (an operator's, the listener's, a test's); returns whether
    /// it is new. A provider's refusal arrives with the ledger record it settles.
    pub fn record_suppression(&self, s: &Suppression) -> Result<bool, StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let new = insert_suppression(&tx, s, &super::fmt_ts(s.at))?;
        tx.commit()?;
        Ok(new)
    }

    /// Every suppression recorded, oldest first.
    pub fn suppressions(&self) -> Result<Vec<Suppression>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT customer_id, medium, address, reason, source, campaign, at \
             FROM suppressions ORDER BY at, rowid",
        )?;
        let rows = stmt
            .query_map([], |r| {
                let medium: Option<String> = r.get(1)?;
                let at: String = r.get(6)?;
                Ok(Suppression {
                    customer_id: r.get(0)?,
                    medium: medium.as_deref().and_then(Medium::parse),
                    address: r.get(2)?,
                    reason: r.get(3)?,
                    source: r.get(4)?,
                    campaign: r.get(5)?,
                    at: parse_ts("suppressions.at", &at).map_err(|e| bad_column(6, e))?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}
