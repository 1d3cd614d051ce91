//! Opt-outs winback learns itself (table `opt_outs`): a provider that refuses a recipient
//! because they opted out (Twilio 21610, a STOP reply) is recorded here, in the same
//! transaction as the ledger row it settles, and every later run's suppression reads it,
//! whatever `as_of` that run is for.

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};

use super::{State, StateError, bad_column, parse_ts};

/// One opt-out: a customer, for one medium.
#[derive(Debug, Clone, PartialEq)]
pub struct OptOut {
    pub customer_id: String,
    /// `"email"` or `"sms"`.
    pub medium: String,
    /// The address it was learnt for (never logged).
    pub address: Option<String>,
    pub reason: String,
    /// Who said so: `provider:<channel>`.
    pub source: String,
    pub at: DateTime<Utc>,
}

pub(crate) fn insert_opt_out(
    tx: &Transaction<'_>,
    o: &OptOut,
    now: &str,
) -> Result<(), StateError> {
    tx.prepare_cached(
        "INSERT INTO opt_outs (customer_id, medium, address, reason, source, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (customer_id, medium, source) DO UPDATE \
         SET address = excluded.address, reason = excluded.reason",
    )?
    .execute(params![
        o.customer_id,
        o.medium,
        o.address,
        o.reason,
        o.source,
        now
    ])?;
    Ok(())
}

impl State {
    /// Records one opt-out (an operator's, or a test's); a provider's arrives with the
    /// ledger record it settles.
    pub fn record_opt_out(&self, o: &OptOut) -> Result<(), StateError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        insert_opt_out(&tx, o, &super::fmt_ts(o.at))?;
        tx.commit()?;
        Ok(())
    }

    /// Every opt-out recorded, oldest first.
    pub fn opt_outs(&self) -> Result<Vec<OptOut>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT customer_id, medium, address, reason, source, at FROM opt_outs ORDER BY at",
        )?;
        let rows = stmt
            .query_map([], |r| {
                let at: String = r.get(5)?;
                Ok(OptOut {
                    customer_id: r.get(0)?,
                    medium: r.get(1)?,
                    address: r.get(2)?,
                    reason: r.get(3)?,
                    source: r.get(4)?,
                    at: parse_ts("opt_outs.at", &at).map_err(|e| bad_column(5, e))?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}
