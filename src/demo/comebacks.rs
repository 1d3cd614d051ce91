//! The demo's second night: some customers come back after the first night's messages, the
//! messaged ones more often than the holdout, so `campaign_results` and the report show a
//! real, positive uplift. Written as one more purchases file beside the generated ones.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::message::SendState;
use crate::state::State;

/// Chance that a customer buys again between the two nights: messaged, held out.
const TREATED: f64 = 0.30;
const HOLDOUT: f64 = 0.12;

/// The last day after the first night a comeback may fall on: within the default pipeline's
/// 30-day attribution window whatever the hour the night's messages went out.
const WITHIN_DAYS: i64 = 29;

/// Write `<dir>/purchases/comebacks.parquet`: purchases between `from` (exclusive) and
/// `to` (exclusive), at most `WITHIN_DAYS` after `from`, by customers the ledger shows as
/// messaged or held out on `from`.
/// Returns how many purchases were written.
pub fn simulate(
    state: &State,
    dir: &Path,
    from: NaiveDate,
    to: NaiveDate,
    seed: u64,
) -> std::io::Result<usize> {
    let rows = state.all_rows().map_err(std::io::Error::other)?;
    // A customer once: messaged if any of their rows was delivered.
    let mut customers: BTreeMap<String, bool> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.as_of == from) {
        let treated = r.state == SendState::Delivered;
        if treated || r.state == SendState::Holdout {
            *customers.entry(r.customer_id.clone()).or_default() |= treated;
        }
    }
    let days = ((to - from).num_days() - 1).min(WITHIN_DAYS);
    if days < 1 {
        return Ok(0);
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00c0_ffee);
    let mut out = Vec::new();
    for (customer, treated) in customers {
        let p = if treated { TREATED } else { HOLDOUT };
        if !rng.random_bool(p) {
            continue;
        }
        let day = from + chrono::Days::new(rng.random_range(1..=days) as u64);
        let time = NaiveTime::from_hms_opt(rng.random_range(9..21), rng.random_range(0..60), 0)
            .unwrap_or_default();
        let amount = (rng.random_range(20.0..140.0_f64) * 100.0).round() / 100.0;
        let order = format!("CB-{}-{}", from.format("%Y%m%d"), out.len() + 1);
        out.push((order, customer, day.and_time(time), amount, "web"));
    }
    let n = out.len();
    let batch = super::generate::purchase_rows(out);
    super::generate::write_parquet(&dir.join("purchases").join("comebacks.parquet"), batch)?;
    Ok(n)
}
