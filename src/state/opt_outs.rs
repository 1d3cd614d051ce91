//! Opt-outs winback learns itself (table `opt_outs`): a provider that refuses a recipient
//! because they opted out (Twilio 21610, a STOP reply) is recorded here, in the same
//! transaction as the ledger row it settles, and every later run's suppression reads it,
//! whatever `as_of` that run is for.

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};

use super::{State, StateError, parse_ts};

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
    /// Every opt-out recorded, oldest first.
    pub fn opt_outs(&self) -> Result<Vec<OptOut>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT customer_id, medium, address, reason, source, at FROM opt_outs ORDER BY at",
        )?;
        type Raw = (String, String, Option<String>, String, String, String);
        let raw: Vec<Raw> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(|r| {
                Ok(OptOut {
                    customer_id: r.0,
                    medium: r.1,
                    address: r.2,
                    reason: r.3,
                    source: r.4,
                    at: parse_ts("opt_outs.at", &r.5)?,
                })
            })
            .collect()
    }
}
