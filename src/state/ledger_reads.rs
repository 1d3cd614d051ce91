//! The send ledger's reads for planning and reporting: the entries planning needs (frequency
//! caps, sequences, entry decisions), counts by campaign, step, channel and state, and
//! whole rows for operators and the `sends` table SQL stages read.

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, params};

use super::ledger::{
    LedgerRow, ROW_COLUMNS, RawRow, SendCount, parse_date, parse_medium, read_row,
};
use super::ledger_rows::parse_state;
use super::{State, StateError, parse_ts};
use crate::message::LedgerEntry;

impl State {
    /// Rows decided for `since` or later (which includes every row of a lapse entered since
    /// then, as a row's `as_of` is never before its `entry_date`), for frequency caps,
    /// sequences and entry decisions.
    pub fn ledger_entries(&self, since: NaiveDate) -> Result<Vec<LedgerEntry>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT campaign, step, customer_id, channel, medium, state, entry_date, as_of, \
             sent_at FROM sends WHERE as_of >= ?1 ORDER BY created_at, idempotency_key",
        )?;
        type Raw = (
            String,
            u32,
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
        );
        let raw: Vec<Raw> = stmt
            .query_map([since.to_string()], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(|r| {
                Ok(LedgerEntry {
                    campaign: r.0,
                    step: r.1,
                    customer_id: r.2,
                    channel: r.3,
                    medium: parse_medium(&r.4)?,
                    state: parse_state(&r.5)?,
                    entry_date: parse_date("sends.entry_date", &r.6)?,
                    as_of: parse_date("sends.as_of", &r.7)?,
                    sent_at: r
                        .8
                        .as_deref()
                        .map(|s| parse_ts("sends.sent_at", s))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Row counts by campaign, step, channel and state, optionally for one campaign / as_of.
    pub fn counts(
        &self,
        campaign: Option<&str>,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<SendCount>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT campaign, step, channel, state, COUNT(*) FROM sends \
             WHERE (?1 IS NULL OR campaign = ?1) AND (?2 IS NULL OR as_of = ?2) \
             GROUP BY campaign, step, channel, state ORDER BY campaign, step, channel, state",
        )?;
        let raw: Vec<(String, u32, String, String, i64)> = stmt
            .query_map(params![campaign, as_of.map(|d| d.to_string())], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter()
            .map(|r| {
                Ok(SendCount {
                    campaign: r.0,
                    step: r.1,
                    channel: r.2,
                    state: parse_state(&r.3)?,
                    n: r.4.max(0) as u64,
                })
            })
            .collect()
    }

    /// Rows whose fate is unknown (in flight at a crash), for an operator to check.
    pub fn unknown_rows(&self) -> Result<Vec<LedgerRow>, StateError> {
        self.rows_where("state = 'unknown'")
    }

    /// Every row (the `sends` table SQL stages read).
    pub fn all_rows(&self) -> Result<Vec<LedgerRow>, StateError> {
        self.rows_where("1 = 1")
    }

    /// The row of one idempotency key.
    pub fn send_row(&self, key: &str) -> Result<Option<LedgerRow>, StateError> {
        let conn = self.conn();
        let raw = conn
            .query_row(
                &format!("SELECT {ROW_COLUMNS} FROM sends WHERE idempotency_key = ?1"),
                [key],
                read_row,
            )
            .optional()?;
        raw.map(RawRow::into_row).transpose()
    }

    fn rows_where(&self, filter: &str) -> Result<Vec<LedgerRow>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM sends WHERE {filter} ORDER BY created_at, idempotency_key"
        ))?;
        let raw: Vec<RawRow> = stmt
            .query_map([], read_row)?
            .collect::<rusqlite::Result<_>>()?;
        raw.into_iter().map(RawRow::into_row).collect()
    }
}
