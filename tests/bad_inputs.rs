//! Bad input never disappears silently: schema problems stop the run before any stage,
//! row problems go to the quarantine table with a reason.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use crate::support::*;
use winback::error::EXIT_CONFIG;

const AS_OF: &str = "2026-03-01";

async fn run_csv_purchases(
    dir: &Path,
    csv: &str,
    set: &[(&str, &str)],
) -> Result<winback::manifest::Manifest, winback::error::PipelineError> {
    let purchases = csv_source(dir, "purchases", csv);
    let customers = empty_source(dir, "customers");
    let complaints = empty_source(dir, "complaints");
    let mut set: Vec<(&str, &str)> = set.to_vec();
    set.push(("sources.purchases.format", "csv"));
    let opts = run_options(
        AS_OF,
        &[
            ("purchases", &purchases),
            ("customers", &customers),
            ("complaints", &complaints),
        ],
        &dir.join("out"),
        &set,
    );
    winback::pipeline::run(&opts).await
}

#[tokio::test]
async fn row_problems_go_to_quarantine_with_a_reason_and_refunds_net() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "\
order_id,customer_id,order_ts,amount
o1,c1,2026-01-05 10:00:00,10.50
o2,,2026-01-06 10:00:00,5
o3,   ,2026-01-06 10:00:00,5
o4,c2,not-a-date,5
o5,c2,,5
o6,c2,2026-01-07 09:00:00,abc
o1,c1,2026-01-05 10:00:00,10.50
o7,c3,2026-01-08 12:00:00,20
o7,c3,2026-01-10 12:00:00,-5
o8,c3,2026-03-01 00:00:00,99
";
    let m = run_csv_purchases(tmp.path(), csv, &[]).await.unwrap();
    let q = &m.quarantine;
    assert_eq!(q.get("purchases/missing_customer_id"), Some(&2), "{q:?}");
    assert_eq!(q.get("purchases/bad_order_ts"), Some(&1), "{q:?}");
    assert_eq!(q.get("purchases/missing_order_ts"), Some(&1), "{q:?}");
    assert_eq!(q.get("purchases/bad_amount"), Some(&1), "{q:?}");
    assert_eq!(q.get("purchases/duplicate_order_id"), Some(&1), "{q:?}");
    assert_eq!(q.values().sum::<u64>(), 6);

    let out = tmp.path().join("out");
    let quarantine = read_output(&out, "quarantine", AS_OF).await;
    assert!(
        quarantine.contains(&"purchases,bad_amount,order_id=o6, customer_id=c2, order_ts=2026-01-07 09:00:00, amount=abc".to_string()),
        "the raw values are kept: {quarantine:#?}"
    );
    let clean = read_output(&out, "purchases_clean", AS_OF).await;
    assert_eq!(
        clean,
        [
            "order_id,customer_id,order_ts,order_date,gross_amount,refund_amount,net_amount,refund_ts,quantity,channel,line_rows",
            "o1,c1,2026-01-05T10:00:00,2026-01-05,10.5,0,10.5,,,,1",
            "o7,c3,2026-01-08T12:00:00,2026-01-08,20,5,15,2026-01-10T12:00:00,,,2",
        ]
    );
}

#[tokio::test]
async fn a_missing_column_fails_before_any_stage_naming_source_file_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let err = run_csv_purchases(
        tmp.path(),
        "order_id,customer_id,order_ts\no1,c1,2026-01-05\n",
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_CONFIG);
    let msg = err.to_string();
    assert!(msg.contains("source 'purchases'"), "{msg}");
    assert!(msg.contains("purchases/data.csv"), "{msg}");
    assert!(msg.contains("column 'amount' is missing"), "{msg}");
    assert!(
        msg.contains("found columns: order_id, customer_id, order_ts"),
        "{msg}"
    );
    assert!(
        !tmp.path().join("out/purchases_clean").exists(),
        "no stage ran"
    );
}

#[tokio::test]
async fn a_column_of_the_wrong_type_names_expected_and_found_types() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("purchases");
    std::fs::create_dir_all(&dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new(
            "order_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("amount", DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["c1"])),
            Arc::new(TimestampMicrosecondArray::from(vec![1_767_607_200_000_000])),
            Arc::new(BooleanArray::from(vec![true])),
        ],
    )
    .unwrap();
    winback::demo::generate::write_parquet(&dir.join("p.parquet"), batch).unwrap();
    let customers = empty_source(tmp.path(), "customers");
    let complaints = empty_source(tmp.path(), "complaints");
    let opts = run_options(
        AS_OF,
        &[
            ("purchases", &dir),
            ("customers", &customers),
            ("complaints", &complaints),
        ],
        &tmp.path().join("out"),
        &[],
    );
    let err = winback::pipeline::run(&opts).await.unwrap_err();
    assert_eq!(err.exit_code(), EXIT_CONFIG);
    let msg = err.to_string();
    assert!(msg.contains("p.parquet"), "{msg}");
    assert!(
        msg.contains("column 'amount' has type Boolean, expected a number"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_empty_input_is_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let err = run_csv_purchases(tmp.path(), "order_id,customer_id,order_ts,amount\n", &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("hold no rows: there is nothing to compute"),
        "{err}"
    );

    let none = tmp.path().join("nothing");
    std::fs::create_dir_all(&none).unwrap();
    let opts = run_options(
        AS_OF,
        &[("purchases", &none)],
        &tmp.path().join("out2"),
        &[],
    );
    let err = winback::pipeline::run(&opts).await.unwrap_err();
    assert!(err.to_string().contains("no .parquet files found"), "{err}");
}

#[tokio::test]
async fn renamed_columns_are_mapped_to_their_canonical_names() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "cust_no,order_ts,amount\nc1,2026-01-05,10\nc1,2026-02-05,30\n";
    let m = run_csv_purchases(
        tmp.path(),
        csv,
        &[("sources.purchases.rename.customer_id", "cust_no")],
    )
    .await
    .unwrap();
    assert_eq!(m.quarantine.values().sum::<u64>(), 0);
    let summary = read_output(&tmp.path().join("out"), "customer_summary", AS_OF).await;
    assert_eq!(summary.len(), 2);
    assert!(
        summary[1].starts_with("c1,2026-01-05,2026-02-05,2,2,1,24,55,31,40,20,30,31,0"),
        "{}",
        summary[1]
    );
}

#[tokio::test]
async fn nan_and_infinite_amounts_in_text_are_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "customer_id,order_ts,amount\nc1,2026-01-05,NaN\nc1,2026-01-06,inf\nc1,2026-01-07,-Infinity\nc1,2026-01-08,12\n";
    let m = run_csv_purchases(tmp.path(), csv, &[]).await.unwrap();
    assert_eq!(
        m.quarantine.get("purchases/bad_amount"),
        Some(&3),
        "{:?}",
        m.quarantine
    );
    let summary = read_output(&tmp.path().join("out"), "customer_summary", AS_OF).await;
    assert!(
        summary[1].starts_with("c1,2026-01-08,2026-01-08,1,1,0,"),
        "{summary:?}"
    );
}

#[tokio::test]
async fn a_timestamp_out_of_range_is_a_bad_row_not_a_failed_run() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "customer_id,order_ts,amount\nc1,1500-01-01,5\nc1,2026-01-08,12\n";
    let m = run_csv_purchases(tmp.path(), csv, &[]).await.unwrap();
    assert_eq!(
        m.quarantine.get("purchases/bad_order_ts"),
        Some(&1),
        "{:?}",
        m.quarantine
    );
}

/// Regression: orders were grouped by order_id alone, so two customers sharing an order
/// number were merged into one and the second customer vanished.
#[tokio::test]
async fn customers_sharing_an_order_id_keep_their_own_orders() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "order_id,customer_id,order_ts,amount\nA1,c1,2026-01-05,10\nA1,c2,2026-02-10,20\n";
    run_csv_purchases(tmp.path(), csv, &[]).await.unwrap();
    let summary = read_output(&tmp.path().join("out"), "customer_summary", AS_OF).await;
    assert_eq!(summary.len(), 3, "both customers: {summary:?}");
}

#[tokio::test]
async fn csv_files_of_one_source_must_share_their_header_order() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = csv_source(
        tmp.path(),
        "purchases",
        "order_id,customer_id,order_ts,amount\nA1,c1,2026-01-05,10\n",
    );
    std::fs::write(
        folder.join("later.csv"),
        "customer_id,order_id,order_ts,amount\nc2,B1,2026-01-06,10\n",
    )
    .unwrap();
    let err = run_csv_purchases(
        tmp.path(),
        "order_id,customer_id,order_ts,amount\nA1,c1,2026-01-05,10\n",
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), EXIT_CONFIG);
    assert!(
        err.to_string()
            .contains("later.csv: header (customer_id,order_id,order_ts,amount) differs"),
        "{err}"
    );
}

#[tokio::test]
async fn timestamps_are_counted_in_the_pipeline_timezone() {
    // 2026-03-01 20:30Z and 2026-03-02 01:00Z are both 2026-03-02 in Shanghai (UTC+8):
    // one purchase day. 2026-05-31 17:00Z is 2026-06-01 01:00 there: on as_of, outside.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("purchases");
    std::fs::create_dir_all(&dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new(
            "order_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("amount", DataType::Float64, true),
    ]));
    let ts = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    };
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["c1", "c1", "c2"])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    ts("2026-03-01T20:30:00Z"),
                    ts("2026-03-02T01:00:00Z"),
                    ts("2026-05-31T17:00:00Z"),
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(datafusion::arrow::array::Float64Array::from(vec![
                10.0, 5.0, 7.0,
            ])),
        ],
    )
    .unwrap();
    winback::demo::generate::write_parquet(&dir.join("p.parquet"), batch).unwrap();
    let customers = empty_source(tmp.path(), "customers");
    let complaints = empty_source(tmp.path(), "complaints");
    let out = tmp.path().join("out");
    let opts = run_options(
        "2026-06-01",
        &[
            ("purchases", &dir),
            ("customers", &customers),
            ("complaints", &complaints),
        ],
        &out,
        &[("timezone", "Asia/Shanghai")],
    );
    winback::pipeline::run(&opts).await.unwrap();
    let summary = read_output(&out, "customer_summary", "2026-06-01").await;
    assert_eq!(
        summary.len(),
        2,
        "c2's purchase is on as_of in Shanghai: {summary:?}"
    );
    assert!(
        summary[1].starts_with("c1,2026-03-02,2026-03-02,2,1,0,"),
        "{summary:?}"
    );
    let clean = read_output(&out, "purchases_clean", "2026-06-01").await;
    assert!(
        clean.iter().any(|r| r.contains("2026-03-02T04:30:00")),
        "local wall time: {clean:?}"
    );
}

#[tokio::test]
async fn duplicate_customers_keep_one_whole_row_and_reject_the_other_as_read() {
    let tmp = tempfile::tempdir().unwrap();
    let purchases = csv_source(
        tmp.path(),
        "purchases",
        "customer_id,order_ts,amount\nL,2026-01-05,10\n",
    );
    let customers = csv_source(
        tmp.path(),
        "customers",
        "customer_id,email,country,consent_email,consent_sms\nL,a@example.com,DE,true,false\nL,b@example.com,FR,false,true\n",
    );
    let complaints = empty_source(tmp.path(), "complaints");
    let out = tmp.path().join("out");
    let mut opts = run_options(
        AS_OF,
        &[
            ("purchases", &purchases),
            ("customers", &customers),
            ("complaints", &complaints),
        ],
        &out,
        &[
            ("sources.purchases.format", "csv"),
            ("sources.customers.format", "csv"),
        ],
    );
    opts.select = vec!["customer_summary".into()];
    let (p, _) = winback::pipeline::run_in_session(&opts).await.unwrap();
    let kept = query(
        &p.ctx,
        "select email, country, consent_email, consent_sms from customers",
    )
    .await;
    // The first row ordered by every column (consent_email false sorts first) is kept whole.
    assert_eq!(
        kept,
        [
            "email,country,consent_email,consent_sms",
            "b@example.com,FR,false,true"
        ]
    );
    let rejected = query(&p.ctx, "select reason, record from quarantine").await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    // Personal data is masked in the quarantine record: enough to find the row, no address.
    assert!(
        rejected[1].starts_with("duplicate_customer_id,customer_id=L, email=***om, country=DE"),
        "{rejected:?}"
    );
    assert!(!rejected[1].contains("example"), "{rejected:?}");
}

/// Exact copies of a line within one order id collapse into one row (the extra copies are
/// quarantined); rows differing in any value are not duplicates, even within one order; and
/// identical rows without an order id are each their own order (the same item bought twice).
#[tokio::test]
async fn exact_copies_collapse_and_near_copies_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "\
order_id,customer_id,order_ts,amount
o1,c1,2026-01-05 10:00:00,10
o1,c1,2026-01-05 10:00:00,10
o1,c1,2026-01-05 10:00:00,10
o2,c1,2026-01-06 10:00:00,7
o2,c1,2026-01-06 10:00:00,8
,c2,2026-01-07 10:00:00,3
,c2,2026-01-07 10:00:00,3
";
    let m = run_csv_purchases(tmp.path(), csv, &[]).await.unwrap();
    assert_eq!(
        m.quarantine.get("purchases/duplicate_order_id"),
        Some(&2),
        "the two extra copies of o1, and not the rows without an order id: {:?}",
        m.quarantine
    );
    let clean = read_output(&tmp.path().join("out"), "purchases_clean", AS_OF).await;
    let orders: Vec<String> = clean[1..]
        .iter()
        .map(|r| {
            let c: Vec<&str> = r.split(',').collect();
            format!("{} {} net={} lines={}", c[0], c[1], c[6], c[10])
        })
        .collect();
    assert_eq!(
        orders,
        [
            " c2 net=3 lines=1",
            " c2 net=3 lines=1",
            "o1 c1 net=10 lines=1",
            "o2 c1 net=15 lines=2"
        ]
    );
}

/// A stage whose result breaks its `unique` test fails the run, naming the test.
#[tokio::test]
async fn a_stage_breaking_its_unique_test_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "\
order_id,customer_id,order_ts,amount
o1,c1,2026-01-05 10:00:00,10
o2,c1,2026-01-06 10:00:00,7
o3,c2,2026-01-06 10:00:00,7
";
    let err = run_csv_purchases(
        tmp.path(),
        csv,
        &[("stages.purchases_clean.unique", "[\"customer_id\"]")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("purchases_clean"), "{err}");
    assert!(
        err.contains("unique (customer_id): 1 offending row(s)"),
        "{err}"
    );
}
