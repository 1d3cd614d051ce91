//! Lapse alerts across consecutive nights, lapse reasons and the school of fish, on
//! purchase histories built here with their expected values worked out by hand.

use std::fmt::Write;
use std::path::Path;

use chrono::{Duration, NaiveDate};

use crate::support::*;

/// `rows` of (order_id, customer_id, date, amount) as a purchases CSV.
fn purchases_csv(rows: &[(String, String, NaiveDate, f64)]) -> String {
    let mut s = String::from("order_id,customer_id,order_ts,amount\n");
    for (o, c, d, a) in rows {
        writeln!(s, "{o},{c},{d} 12:00:00,{a}").unwrap();
    }
    s
}

/// Run the default pipeline on CSV sources and return the session.
async fn session(
    dir: &Path,
    as_of: &str,
    purchases: &str,
    complaints: Option<&str>,
    customers: Option<&str>,
) -> datafusion::prelude::SessionContext {
    let p = csv_source(dir, &format!("purchases-{as_of}"), purchases);
    let c = match complaints {
        Some(t) => csv_source(dir, &format!("complaints-{as_of}"), t),
        None => empty_source(dir, "none-complaints"),
    };
    let cu = match customers {
        Some(t) => csv_source(dir, &format!("customers-{as_of}"), t),
        None => empty_source(dir, "none-customers"),
    };
    let set = [
        ("sources.purchases.format", "csv"),
        ("sources.complaints.format", "csv"),
        ("sources.customers.format", "csv"),
    ];
    let opts = run_options(
        as_of,
        &[("purchases", &p), ("complaints", &c), ("customers", &cu)],
        &dir.join("out"),
        &set,
    );
    winback::pipeline::run_in_session(&opts)
        .await
        .unwrap()
        .0
        .ctx
}

fn every_61_days() -> Vec<(String, String, NaiveDate, f64)> {
    let start = date("2025-01-01");
    let mut rows: Vec<_> = (0..8)
        .map(|k| {
            (
                format!("r{k}"),
                "rhythm".to_string(),
                start + Duration::days(61 * k),
                40.0,
            )
        })
        .collect();
    // A one-time buyer, and a repeat buyer whose gap (30 days) is the population's.
    rows.push(("once".into(), "one_timer".into(), date("2026-05-01"), 25.0));
    rows.push(("p1".into(), "steady".into(), date("2026-04-01"), 10.0));
    rows.push(("p2".into(), "steady".into(), date("2026-05-01"), 10.0));
    rows
}

const ALERT_COLUMNS: &str = "select customer_id, typical_gap_days, gap_source, threshold_days, recency_days, stage, alert_date, is_first_alert from lapse_alerts";

#[tokio::test]
async fn a_customer_who_misses_their_rhythm_is_alerted_once_on_the_first_night() {
    // Eight purchases 61 days apart: the last on 2026-03-04. Threshold 1.5 x 61 = 91.5 days,
    // so the alarm rings on the first night with 92 days of silence: 2026-06-04.
    let tmp = tempfile::tempdir().unwrap();
    let csv = purchases_csv(&every_61_days());
    let night = |d: &'static str| {
        let csv = csv.clone();
        let dir = tmp.path().to_path_buf();
        async move {
            let ctx = session(&dir, d, &csv, None, None).await;
            query(
                &ctx,
                &format!("{ALERT_COLUMNS} where customer_id = 'rhythm'"),
            )
            .await
        }
    };
    assert!(
        night("2026-06-03").await.len() <= 1,
        "91 days of silence: no alert yet (header only)"
    );
    assert_eq!(
        night("2026-06-04").await[1],
        "rhythm,61,own,91.5,92,value_damaged,2026-06-04,true"
    );
    assert_eq!(
        night("2026-06-05").await[1],
        "rhythm,61,own,91.5,93,value_damaged,2026-06-04,false"
    );
    // 2 x 1.5 x 61 = 183 days of silence: discontent; 4 x 1.5 x 61 = 366: ended.
    assert_eq!(
        night("2026-09-03").await[1],
        "rhythm,61,own,91.5,183,discontent,2026-06-04,false"
    );
    assert_eq!(
        night("2027-03-06").await[1],
        "rhythm,61,own,91.5,367,ended,2026-06-04,false"
    );

    // Buying again takes the customer out of the table.
    let mut back = every_61_days();
    back.push(("r8".into(), "rhythm".into(), date("2026-06-10"), 40.0));
    let ctx = session(tmp.path(), "2026-06-11", &purchases_csv(&back), None, None).await;
    let rows = query(
        &ctx,
        &format!("{ALERT_COLUMNS} where customer_id = 'rhythm'"),
    )
    .await;
    assert!(rows.len() <= 1, "no data rows: {rows:?}");
}

#[tokio::test]
async fn a_customer_without_a_rhythm_borrows_the_population_gap() {
    // one_timer bought once on 2026-05-01. Repeat customers' typical gaps are 61 and 30;
    // one_timer shares no segment with them, so the overall median (45.5) applies:
    // threshold 68.25, alarm after ceil(68.25) = 69 days: 2026-07-09.
    let tmp = tempfile::tempdir().unwrap();
    let ctx = session(
        tmp.path(),
        "2026-07-09",
        &purchases_csv(&every_61_days()),
        None,
        None,
    )
    .await;
    let rows = query(
        &ctx,
        &format!("{ALERT_COLUMNS} where customer_id = 'one_timer'"),
    )
    .await;
    assert_eq!(
        rows[1],
        "one_timer,45.5,population,68.25,69,value_damaged,2026-07-09,true"
    );
}

#[tokio::test]
async fn a_complaint_before_the_lapse_points_at_the_company() {
    let tmp = tempfile::tempdir().unwrap();
    let complaints = "customer_id,ts,kind\nrhythm,2026-03-14 09:00:00,complaint\nsteady,2025-01-01 09:00:00,bad_review\n";
    let ctx = session(
        tmp.path(),
        "2026-06-04",
        &purchases_csv(&every_61_days()),
        Some(complaints),
        None,
    )
    .await;
    let rows = query(
        &ctx,
        "select customer_id, reason_owner, reason, evidence_date, evidence_count from lapse_reasons",
    )
    .await;
    assert!(
        rows.contains(&"rhythm,company,complaint,2026-03-14,1".to_string()),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn many_customers_stopping_together_raise_a_segment_alert_and_a_stable_group_does_not() {
    // Country XX: ten customers buying every 10 days from 2026-01-02 to 2026-05-12, then
    // silent: threshold 15 days, all alarms on 2026-05-27, 5 days before as_of 2026-06-01.
    // Never a lapse before: baseline 0, no spread, Poisson sigma 1, z = 10.
    // Country YY: ten customers still buying every 10 days (last 2026-05-22): no lapse.
    let mut rows = Vec::new();
    let mut customers = String::from("customer_id,country\n");
    for (country, last) in [("XX", date("2026-05-12")), ("YY", date("2026-05-22"))] {
        for i in 0..10 {
            let c = format!("{country}{i}");
            writeln!(customers, "{c},{country}").unwrap();
            let mut d = date("2026-01-02");
            while d <= last {
                rows.push((format!("{c}-{d}"), c.clone(), d, 20.0));
                d += Duration::days(10);
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let ctx = session(
        tmp.path(),
        "2026-06-01",
        &purchases_csv(&rows),
        None,
        Some(&customers),
    )
    .await;
    let got = query(
        &ctx,
        "select segment, customers, new_lapses_7d, baseline_mean, baseline_std, z_score, alert \
         from segment_alerts where dimension = 'country'",
    )
    .await;
    assert_eq!(got[1..], ["XX,10,10,0,0,10,true", "YY,10,0,0,0,0,false"]);
}

/// Regression: a refund was dated by its sale, so a refund made after the lapse was taken
/// for its cause. The refund's own date counts, up to the alert date (2026-06-04).
#[tokio::test]
async fn a_refund_counts_as_evidence_on_the_day_it_was_made() {
    let tmp = tempfile::tempdir().unwrap();
    let reason = |refund_day: &'static str, as_of: &'static str| {
        let dir = tmp.path().join(refund_day);
        async move {
            let mut rows = every_61_days();
            rows.push(("r7".into(), "rhythm".into(), date(refund_day), -15.0));
            let ctx = session(&dir, as_of, &purchases_csv(&rows), None, None).await;
            query(&ctx, "select reason_owner, reason, evidence_date from lapse_reasons where customer_id = 'rhythm'").await
        }
    };
    assert_eq!(
        reason("2026-03-20", "2026-06-04").await[1],
        "company,refund,2026-03-20"
    );
    assert_eq!(
        reason("2026-06-03", "2026-06-10").await[1],
        "company,refund,2026-06-03"
    );
    assert_eq!(
        reason("2026-06-07", "2026-06-10").await[1],
        "customer,no_company_signal,",
        "after the alert"
    );
}

#[tokio::test]
async fn silence_of_exactly_lapse_factor_times_the_gap_is_a_lapse() {
    // Purchases 60 days apart: the threshold is 1.5 x 60 = 90 days, a whole number. The
    // rule is "at least": 89 days of silence is no lapse, 90 days is.
    let start = date("2025-01-01");
    let rows: Vec<_> = (0..8)
        .map(|k| {
            let day = start + Duration::days(60 * k);
            (format!("e{k}"), "even".to_string(), day, 20.0)
        })
        .collect();
    let last = start + Duration::days(60 * 7);
    let csv = purchases_csv(&rows);
    let tmp = tempfile::tempdir().unwrap();
    let night = |days_after_last: i64| {
        let as_of = (last + Duration::days(days_after_last)).to_string();
        let (csv, dir) = (csv.clone(), tmp.path().to_path_buf());
        async move {
            let ctx = session(&dir, &as_of, &csv, None, None).await;
            let sql = format!("{ALERT_COLUMNS} where customer_id = 'even'");
            query(&ctx, &sql).await
        }
    };
    assert!(night(89).await.len() <= 1, "89 days: no lapse yet");
    let alerted = night(90).await;
    assert!(
        alerted[1].starts_with("even,60,own,90,90,value_damaged,"),
        "{alerted:?}"
    );
    assert!(alerted[1].ends_with(",true"), "{alerted:?}");
}
