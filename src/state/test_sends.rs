//! Test sends (`winback send-test`), kept apart from customers' rows: table `test_sends`,
//! never the ledger (`sends`), so results, frequency caps, sequences and the report never
//! count them. A row holds the recipient masked, never the address.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{State, StateError, bad_column, fmt_ts, parse_ts};

/// Appended at the end of `state::MIGRATIONS`.
pub const TEST_SENDS_MIGRATION: &str = r#"
CREATE TABLE test_sends (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign            TEXT NOT NULL,
    step                INTEGER NOT NULL,
    channel             TEXT NOT NULL,
    medium              TEXT NOT NULL CHECK (medium IN ('email', 'sms')),
    sample_customer_id  TEXT NOT NULL,
    recipient_masked    TEXT NOT NULL,
    sandbox             INTEGER NOT NULL,
    sent_at             TEXT NOT NULL,
    outcome             TEXT NOT NULL CHECK (outcome IN ('delivered', 'rejected', 'failed',
                          'unknown', 'render_error')),
    reason              TEXT,
    provider_message_id TEXT
);
CREATE INDEX test_sends_campaign ON test_sends (campaign, step);
"#;

/// One test message: which sample row it was rendered from, to whom (masked), and what
/// the provider answered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestSend {
    pub campaign: String,
    pub step: u32,
    pub channel: String,
    /// `"email"` or `"sms"`.
    pub medium: String,
    /// The audience row the message was rendered from (it was not sent to this customer).
    pub sample_customer_id: String,
    /// The test recipient, masked (`a***@example.com`, `+4915***5678`).
    pub recipient_masked: String,
    /// The channel sent with the provider's sandbox (accepted, never delivered).
    pub sandbox: bool,
    pub sent_at: DateTime<Utc>,
    /// `delivered` (accepted by the provider), `rejected`, `failed` (not sent: the
    /// channel stopped or the provider could not take it now), `unknown` (the answer was
    /// lost) or `render_error` (the sample row's templates failed: nothing sent).
    pub outcome: String,
    pub reason: Option<String>,
    pub provider_message_id: Option<String>,
}

impl State {
    /// Records test sends, in one transaction.
    pub fn record_test_sends(&self, rows: &[TestSend]) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO test_sends (campaign, step, channel, medium, sample_customer_id, \
                 recipient_masked, sandbox, sent_at, outcome, reason, provider_message_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for r in rows {
                stmt.execute(params![
                    r.campaign,
                    r.step,
                    r.channel,
                    r.medium,
                    r.sample_customer_id,
                    r.recipient_masked,
                    r.sandbox,
                    fmt_ts(r.sent_at),
                    r.outcome,
                    r.reason,
                    r.provider_message_id,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every test send recorded, oldest first.
    pub fn test_sends(&self) -> Result<Vec<TestSend>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT campaign, step, channel, medium, sample_customer_id, recipient_masked, \
             sandbox, sent_at, outcome, reason, provider_message_id FROM test_sends ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                let at: String = r.get(7)?;
                Ok(TestSend {
                    campaign: r.get(0)?,
                    step: r.get(1)?,
                    channel: r.get(2)?,
                    medium: r.get(3)?,
                    sample_customer_id: r.get(4)?,
                    recipient_masked: r.get(5)?,
                    sandbox: r.get(6)?,
                    sent_at: parse_ts("test_sends.sent_at", &at).map_err(|e| bad_column(7, e))?,
                    outcome: r.get(8)?,
                    reason: r.get(9)?,
                    provider_message_id: r.get(10)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sends_round_trip_and_stay_out_of_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z")
            .unwrap()
            .to_utc();
        let row = TestSend {
            campaign: "winback_quick".into(),
            step: 2,
            channel: "sms".into(),
            medium: "sms".into(),
            sample_customer_id: "C00000007".into(),
            recipient_masked: "+4915***5678".into(),
            sandbox: false,
            sent_at: at,
            outcome: "delivered".into(),
            reason: None,
            provider_message_id: Some("SM123".into()),
        };
        let failed = TestSend {
            outcome: "render_error".into(),
            reason: Some("text: undefined value (line 1)".into()),
            provider_message_id: None,
            sandbox: true,
            ..row.clone()
        };
        state
            .record_test_sends(&[row.clone(), failed.clone()])
            .unwrap();
        assert_eq!(state.test_sends().unwrap(), vec![row, failed]);
        assert!(state.all_rows().unwrap().is_empty(), "no ledger row");
    }
}
