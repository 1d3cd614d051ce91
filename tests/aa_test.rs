//! The A/A test of `campaign_results`: the messages do nothing, so the uplift must be zero.
//!
//! Demo-like data where every other customer lacks e-mail consent and nobody accepts
//! SMS. After the first night, customers come back with a chance that depends on their
//! consent only (50% with, 10% without), never on whether they were messaged. The rules
//! never message a customer without consent, so comparing the *delivered* customers with
//! the *whole* holdout (the comparison before issue 25) shows about +20 points of
//! "uplift" the messages did not cause. Comparing like with like (the holdout customers
//! the same rules would have messaged) must show an interval containing 0 and a point
//! estimate within a few points of 0.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use chrono::{Days, NaiveDate, NaiveTime};
use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use winback::message::SendState;
use winback::state::State;

use crate::campaigns::{text, winback};
use crate::support::*;

/// Chance of coming back between the nights: with e-mail consent, without.
const WITH_CONSENT: f64 = 0.5;
const WITHOUT_CONSENT: f64 = 0.1;

/// A draw in [0, 1) from the customer id alone: independent of the holdout's SHA-256.
fn draw(customer: &str) -> f64 {
    let mut h = DefaultHasher::new();
    ("aa-comeback", customer).hash(&mut h);
    (h.finish() % 1_000_000) as f64 / 1_000_000.0
}

/// Every other customer (in id order) keeps e-mail consent; nobody accepts SMS. Returns
/// the customers with consent.
async fn half_without_consent(data: &Path) -> BTreeSet<String> {
    let folder = data.join("customers");
    let ctx = SessionContext::new();
    ctx.register_parquet("c", folder.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let batches = ctx
        .sql("select * from c order by customer_id")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let batch = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let ids = datafusion::arrow::compute::cast(
        batch.column_by_name("customer_id").unwrap(),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let ids = ids.as_string::<i32>();
    let n = batch.num_rows();
    let email: BooleanArray = (0..n).map(|i| Some(i % 2 == 0)).collect();
    let sms: BooleanArray = (0..n).map(|_| Some(false)).collect();
    let schema = batch.schema();
    let mut cols = batch.columns().to_vec();
    cols[schema.index_of("consent_email").unwrap()] = std::sync::Arc::new(email);
    cols[schema.index_of("consent_sms").unwrap()] = std::sync::Arc::new(sms);
    let batch = RecordBatch::try_new(schema, cols).unwrap();
    for f in std::fs::read_dir(&folder).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    winback::demo::generate::write_parquet(&folder.join("part-0000.parquet"), batch).unwrap();
    (0..n)
        .filter(|i| i % 2 == 0)
        .map(|i| ids.value(i).to_string())
        .collect()
}

/// Purchases on days 1 to 6 after `first` by the customers the first night decided
/// about, with a chance that depends on consent only. Returns the customers who bought.
fn comebacks(
    data: &Path,
    state: &State,
    first: NaiveDate,
    consent: &BTreeSet<String>,
) -> BTreeSet<String> {
    let customers: BTreeSet<String> = state
        .all_rows()
        .unwrap()
        .into_iter()
        .filter(|r| r.as_of == first)
        .map(|r| r.customer_id)
        .collect();
    let mut rows = Vec::new();
    let mut back = BTreeSet::new();
    for c in customers {
        let d = draw(&c);
        let p = if consent.contains(&c) {
            WITH_CONSENT
        } else {
            WITHOUT_CONSENT
        };
        if d >= p {
            continue;
        }
        // The day and hour from the draw too: 1..=6 days after, 10:00-18:59.
        let day = first + Days::new(1 + (d * 1e6) as u64 % 6);
        let time = NaiveTime::from_hms_opt(10 + (d * 1e7) as u32 % 9, 0, 0).unwrap();
        rows.push((
            format!("AA-{}", rows.len() + 1),
            c.clone(),
            day.and_time(time),
            50.0,
            "web",
        ));
        back.insert(c);
    }
    let batch = winback::demo::generate::purchase_rows(rows);
    winback::demo::generate::write_parquet(&data.join("purchases/aa-comebacks.parquet"), batch)
        .unwrap();
    back
}

fn run(dir: &Path, as_of: NaiveDate) {
    let as_of = as_of.to_string();
    let mut args = vec![
        "run",
        "--as-of",
        &as_of,
        "--set",
        "variables.attribution_days=7",
    ];
    let shares: Vec<String> = ["winback_quick", "winback_amends", "winback_long_term"]
        .iter()
        .map(|c| format!("campaigns.{c}.holdout_share=0.5"))
        .collect();
    for s in &shares {
        args.extend(["--set", s]);
    }
    let out = winback(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_a_a_test_shows_no_uplift_when_the_message_does_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    std::fs::create_dir_all(dir.join("sql/results")).unwrap();
    std::fs::copy(
        repo().join("sql/results/campaign_results.sql"),
        dir.join("sql/results/campaign_results.sql"),
    )
    .unwrap();
    // The first night is tonight (the wall clock): its contacts are dated by the real
    // send time, and the comebacks come on the days after it.
    let first = chrono::Utc::now().date_naive();
    let data = dir.join("demo-data");
    std::fs::remove_dir_all(&data).unwrap();
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: data.clone(),
        rows: 30_000,
        end: first,
        seed: 25,
    })
    .unwrap();
    let consent = half_without_consent(&data).await;
    run(dir, first);

    let state = State::open(&dir.join(".winback")).unwrap();
    let rows = state.all_rows().unwrap();
    let back = comebacks(&data, &state, first, &consent);
    // Today's comparison (before issue 25): delivered customers against the whole holdout.
    let (mut delivered, mut held) = (BTreeSet::new(), BTreeSet::new());
    for r in rows.iter().filter(|r| r.as_of == first) {
        match r.state {
            SendState::Delivered => delivered.insert((r.campaign.clone(), r.customer_id.clone())),
            SendState::Holdout => held.insert((r.campaign.clone(), r.customer_id.clone())),
            _ => false,
        };
    }
    let rate = |s: &BTreeSet<(String, String)>| {
        s.iter().filter(|(_, c)| back.contains(c)).count() as f64 / s.len().max(1) as f64
    };
    let naive = rate(&delivered) - rate(&held);
    eprintln!(
        "A/A: {} delivered, {} held out; delivered against the whole holdout: {:+.1} points",
        delivered.len(),
        held.len(),
        naive * 100.0
    );
    assert!(
        naive > 0.12,
        "the data must fool the naive comparison: {naive}"
    );

    let second = first + Days::new(8);
    run(dir, second);
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "r",
        dir.join(format!("out/campaign_results/as_of={second}"))
            .to_str()
            .unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    // The headline of each campaign: whole campaign, all groups, an interval (so its
    // window has ended and the groups are big enough).
    let got = query(
        &ctx,
        "select campaign, contacted, holdout, reactivated, holdout_reactivated, \
         incremental_rate, ci_low, ci_high from r \
         where step = 0 and treatment = 'all' and segment = 'all' and ci_low is not null \
         order by campaign",
    )
    .await;
    eprintln!("A/A headline:\n{}", got.join("\n"));
    assert!(got.len() > 1, "no campaign has an interval");
    let (mut treated, mut holdout, mut t_back, mut h_back) = (0.0, 0.0, 0.0, 0.0);
    for line in got.iter().skip(1) {
        let v: Vec<&str> = line.split(',').collect();
        let f = |i: usize| v[i].parse::<f64>().unwrap();
        assert!(f(6) <= 0.0 && 0.0 <= f(7), "interval excludes 0: {line}");
        assert!(f(5).abs() <= 0.08, "point estimate far from 0: {line}");
        (treated, holdout, t_back, h_back) =
            (treated + f(1), holdout + f(2), t_back + f(3), h_back + f(4));
    }
    // All campaigns together: within a few points of zero.
    let pooled = t_back / treated - h_back / holdout;
    eprintln!("A/A pooled: {:+.1} points", pooled * 100.0);
    assert!(pooled.abs() <= 0.04, "pooled uplift {pooled}");
}
