//! The send ledger's hot path: the statements `reserve`, `record`, retry counting and
//! planning decisions run inside a caller's transaction, shaped for batches of 1000: state
//! look-ups and updates go by key lists (`IN (...)`) and new rows go in multi-row INSERTs,
//! so a recipient costs a few microseconds, not a statement round trip each.

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value as Sql;
use rusqlite::{Transaction, params, params_from_iter};

use super::StateError;
use super::ledger_rows::{FINAL_SQL, LedgerDecision, LedgerOutcome, RunOwner, parse_state};
use super::suppressions::insert_suppression;
use crate::message::{Message, SendState};

/// Keys per `IN (...)` list and rows per multi-row INSERT (SQLite allows 32766 parameters).
const KEYS_PER_STATEMENT: usize = 500;
const ROWS_PER_INSERT: usize = 100;
const INSERT_COLUMNS: usize = 15;

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The current states of `keys`.
fn states_of(
    tx: &Transaction<'_>,
    keys: &[&str],
) -> Result<HashMap<String, SendState>, StateError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT idempotency_key, state FROM sends WHERE idempotency_key IN ({})",
            placeholders(chunk.len())
        ))?;
        let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (k, s) = row?;
            out.insert(k, parse_state(&s)?);
        }
    }
    Ok(out)
}

/// Marks sendable messages `in_flight` (new rows inserted with attempts 1, existing ones
/// attempts + 1); `true` for each message to send. A key twice in `batch` is sent once.
pub(crate) fn reserve_tx(
    tx: &Transaction<'_>,
    batch: &[Message],
    resend_unknown: bool,
    owner: Option<&RunOwner>,
    now: &str,
) -> Result<Vec<bool>, StateError> {
    let text = |v: Option<&str>| v.map_or(Sql::Null, |t| Sql::Text(t.into()));
    let (lock, holder) = (
        text(owner.map(|o| o.lock.as_str())),
        text(owner.map(|o| o.holder.as_str())),
    );
    let keys: Vec<&str> = batch.iter().map(|m| m.idempotency_key.as_str()).collect();
    let existing = states_of(tx, &keys)?;
    let mut seen: HashSet<&str> = HashSet::with_capacity(batch.len());
    let (mut keep, mut fresh, mut again) =
        (Vec::with_capacity(batch.len()), Vec::new(), Vec::new());
    for m in batch {
        let key = m.idempotency_key.as_str();
        let ok = seen.insert(key)
            && match existing.get(key) {
                None => {
                    fresh.push(m);
                    true
                }
                Some(SendState::Unknown) if resend_unknown => {
                    again.push(m);
                    true
                }
                Some(s) if s.is_final() || *s == SendState::InFlight => false,
                Some(_) => {
                    again.push(m);
                    true
                }
            };
        keep.push(ok);
    }
    insert_in_flight(tx, &fresh, &lock, &holder, now)?;
    reserve_again(tx, &again, &lock, &holder, now)?;
    Ok(keep)
}

/// Inserts `fresh` messages as new `in_flight` rows (attempts 1), `ROWS_PER_INSERT` a
/// statement.
fn insert_in_flight(
    tx: &Transaction<'_>,
    fresh: &[&Message],
    lock: &Sql,
    holder: &Sql,
    now: &str,
) -> Result<(), StateError> {
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let rows = vec![format!("({}, 'in_flight', 1)", placeholders(INSERT_COLUMNS)); chunk.len()];
        let mut stmt = tx.prepare_cached(&format!(
            "INSERT INTO sends (idempotency_key, campaign, step, customer_id, channel, medium, \
             address, as_of, entry_date, cost, created_at, updated_at, run_lock, run_holder, \
             attempted_at, state, attempts) VALUES {}",
            rows.join(", ")
        ))?;
        let mut values: Vec<Sql> = Vec::with_capacity(chunk.len() * INSERT_COLUMNS);
        for m in chunk {
            let as_of = m.as_of.to_string();
            values.extend([
                Sql::Text(m.idempotency_key.clone()),
                Sql::Text(m.campaign.clone()),
                Sql::Integer(m.step.into()),
                Sql::Text(m.customer_id.clone()),
                Sql::Text(m.channel.clone()),
                Sql::Text(m.medium.as_str().into()),
                Sql::Text(m.to.clone()),
                Sql::Text(as_of.clone()),
                Sql::Text(as_of),
                Sql::Real(m.cost),
                Sql::Text(now.into()),
                Sql::Text(now.into()),
                lock.clone(),
                holder.clone(),
                Sql::Text(now.into()),
            ]);
        }
        stmt.execute(params_from_iter(values))?;
    }
    Ok(())
}

/// Marks messages already in the ledger `in_flight` again, attempts + 1, with this run's
/// address, cost and lock.
fn reserve_again(
    tx: &Transaction<'_>,
    again: &[&Message],
    lock: &Sql,
    holder: &Sql,
    now: &str,
) -> Result<(), StateError> {
    let mut update = tx.prepare_cached(
        "UPDATE sends SET state = 'in_flight', attempts = attempts + 1, address = ?2, \
         cost = ?3, reason = NULL, updated_at = ?4, attempted_at = ?4, run_lock = ?5, \
         run_holder = ?6 WHERE idempotency_key = ?1",
    )?;
    for m in again {
        update.execute(params![
            m.idempotency_key,
            m.to,
            m.cost,
            now,
            lock.clone(),
            holder.clone()
        ])?;
    }
    Ok(())
}

/// (state, provider message id, reason): records alike are written by one statement.
type RecordGroup<'a> = (SendState, Option<&'a str>, Option<&'a str>);

/// Settles outcomes; records sharing (state, provider id, reason), as a whole SendGrid
/// batch does, go in one `UPDATE ... WHERE idempotency_key IN (...)`.
pub(crate) fn record_tx(
    tx: &Transaction<'_>,
    records: &[LedgerOutcome],
    now: &str,
) -> Result<(), StateError> {
    let mut groups: HashMap<RecordGroup<'_>, Vec<&str>> = HashMap::new();
    for s in records.iter().filter_map(|r| r.suppression.as_ref()) {
        insert_suppression(tx, s, now)?;
    }
    for r in records {
        groups
            .entry((
                r.state,
                r.provider_message_id.as_deref(),
                r.reason.as_deref(),
            ))
            .or_default()
            .push(&r.idempotency_key);
    }
    for ((state, id, reason), keys) in groups {
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE sends SET state = ?1, reason = ?2, \
                 provider_message_id = COALESCE(?3, provider_message_id), updated_at = ?4, \
                 sent_at = CASE WHEN ?1 = 'delivered' THEN ?4 ELSE sent_at END \
                 WHERE idempotency_key IN ({})",
                placeholders(chunk.len())
            ))?;
            let mut values: Vec<Sql> = vec![
                Sql::Text(state.as_str().into()),
                reason.map_or(Sql::Null, |r| Sql::Text(r.into())),
                id.map_or(Sql::Null, |r| Sql::Text(r.into())),
                Sql::Text(now.into()),
            ];
            values.extend(chunk.iter().map(|k| Sql::Text((*k).into())));
            stmt.execute(params_from_iter(values))?;
        }
    }
    Ok(())
}

/// One more attempt for rows still in flight (a retry within the run).
pub(crate) fn attempt_tx(tx: &Transaction<'_>, keys: &[&str], now: &str) -> Result<(), StateError> {
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        let mut stmt = tx.prepare_cached(&format!(
            "UPDATE sends SET attempts = attempts + 1, updated_at = ?1 \
             WHERE state = 'in_flight' AND idempotency_key IN ({})",
            placeholders(chunk.len())
        ))?;
        let mut values: Vec<Sql> = vec![Sql::Text(now.into())];
        values.extend(chunk.iter().map(|k| Sql::Text((*k).into())));
        stmt.execute(params_from_iter(values))?;
    }
    Ok(())
}

pub(crate) fn decide_tx(
    tx: &Transaction<'_>,
    decisions: &[LedgerDecision],
    now: &str,
) -> Result<(), StateError> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO sends (idempotency_key, campaign, step, customer_id, channel, medium, \
             address, as_of, entry_date, state, reason, attempts, cost, created_at, updated_at, \
             sent_at, segment, treatment, value, would_be_suppressed) VALUES (?1, ?2, ?3, ?4, ?5, \
             ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?13, CASE WHEN ?10 = 'holdout' THEN ?13 END, \
             ?14, ?15, ?16, ?17) \
             ON CONFLICT (idempotency_key) DO UPDATE SET state = excluded.state, \
             reason = excluded.reason, as_of = excluded.as_of, address = excluded.address, \
             cost = excluded.cost, updated_at = excluded.updated_at, \
             sent_at = COALESCE(sends.sent_at, excluded.sent_at), \
             segment = COALESCE(excluded.segment, sends.segment), \
             treatment = COALESCE(excluded.treatment, sends.treatment), \
             value = COALESCE(excluded.value, sends.value), \
             would_be_suppressed = excluded.would_be_suppressed \
             WHERE sends.state NOT IN {FINAL_SQL} AND sends.state <> 'unknown'"
    ))?;
    for d in decisions {
        let m = &d.message;
        stmt.execute(params![
            m.idempotency_key,
            m.campaign,
            m.step,
            m.customer_id,
            m.channel,
            m.medium.as_str(),
            m.to,
            m.as_of.to_string(),
            d.entry_date.to_string(),
            d.state.as_str(),
            d.reason,
            m.cost,
            now,
            d.tags.segment,
            d.tags.treatment,
            d.tags.value,
            d.tags.would_be_suppressed,
        ])?;
    }
    Ok(())
}
