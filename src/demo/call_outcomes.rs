//! The demo's call outcomes: between the two nights the team works through the first
//! night's call lists and records what came of each call, so `call_results` and the
//! report show reached calls, outcomes and remedies. Written as
//! `<dir>/call_outcomes/outcomes.parquet`.

use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::message::{Medium, SendState};
use crate::state::State;

/// Chance that a try reaches the customer; a call is tried at most this many times.
const REACHED: f64 = 0.55;
const TRIES: usize = 3;

/// What the callers wrote when they reached someone, and the remedy they gave (if any).
const REACHED_OUTCOMES: [(&str, Option<&str>); 4] = [
    (
        "a late delivery spoilt it; glad we called",
        Some("refund of the shipping"),
    ),
    (
        "moved to a competitor for price",
        Some("15% off the next order"),
    ),
    ("just busy; will order again soon", None),
    (
        "a damaged item was never replaced",
        Some("replacement sent"),
    ),
];
const MISSED_OUTCOMES: [&str; 2] = ["no answer", "voicemail left"];

/// Writes the outcomes of the calls the ledger shows listed on `from`, tried on the days
/// after it and before `to`; an empty folder when there were none. Returns how many
/// calls reached the customer.
pub fn simulate(
    state: &State,
    dir: &Path,
    from: NaiveDate,
    to: NaiveDate,
    seed: u64,
) -> std::io::Result<usize> {
    let folder = dir.join("call_outcomes");
    if folder.exists() {
        std::fs::remove_dir_all(&folder)?;
    }
    std::fs::create_dir_all(&folder)?;
    let days = (to - from).num_days() - 1;
    let rows = state.all_rows().map_err(std::io::Error::other)?;
    let mut calls: Vec<String> = rows
        .into_iter()
        .filter(|r| r.as_of == from && r.medium == Medium::Call && r.state == SendState::Delivered)
        .map(|r| r.customer_id)
        .collect();
    calls.sort();
    if calls.is_empty() || days < 1 {
        return Ok(0);
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0ca1_1ed0);
    let (mut ids, mut ts, mut reached, mut outcome, mut remedy) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut reached_calls = 0;
    for customer in calls {
        for attempt in 0..TRIES {
            let day = from + chrono::Days::new(1 + (attempt as u64).min(days as u64 - 1));
            let time = NaiveTime::from_hms_opt(rng.random_range(9..18), rng.random_range(0..60), 0)
                .unwrap_or_default();
            let ok = rng.random_bool(REACHED);
            ids.push(customer.clone());
            ts.push(day.and_time(time).and_utc().timestamp_micros());
            reached.push(ok);
            if ok {
                let (text, given) = REACHED_OUTCOMES[rng.random_range(0..REACHED_OUTCOMES.len())];
                outcome.push(text.to_string());
                remedy.push(given.map(str::to_string));
                reached_calls += 1;
                break;
            }
            outcome.push(MISSED_OUTCOMES[attempt % MISSED_OUTCOMES.len()].to_string());
            remedy.push(None);
        }
    }
    let schema = Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("reached", DataType::Boolean, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("remedy", DataType::Utf8, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(TimestampMicrosecondArray::from(ts)),
        Arc::new(BooleanArray::from(reached)),
        Arc::new(StringArray::from(outcome)),
        Arc::new(StringArray::from(remedy)),
    ];
    let batch = RecordBatch::try_new(Arc::new(schema), cols).map_err(std::io::Error::other)?;
    super::generate::write_parquet(&folder.join("outcomes.parquet"), batch)?;
    Ok(reached_calls)
}
