//! Inputs as users have them: a source is one file, a glob or a folder; files delivered
//! twice are read once; no legitimate purchase is lost (repeated rows without an order id,
//! $0 orders, local times at a daylight-saving change); bad files and bad values are named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use winback::demo::generate::write_parquet;
use winback::error::Blame;
use winback::manifest::Manifest;

use crate::support::*;

const AS_OF: &str = "2026-04-01";

/// Small demo data in `<dir>/data`.
fn demo(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: data.clone(),
        rows: 4_000,
        end: date(AS_OF),
        seed: 11,
    })
    .unwrap();
    data
}

async fn run_with_purchases(
    dir: &Path,
    data: &Path,
    purchases: &str,
    set: &[(&str, &str)],
) -> Result<Manifest, winback::error::PipelineError> {
    let mut opts = run_options(
        AS_OF,
        &[
            ("customers", &data.join("customers")),
            ("complaints", &data.join("complaints")),
        ],
        &dir.join("out"),
        set,
    );
    opts.load
        .inputs
        .push(("purchases".into(), purchases.to_string()));
    opts.state_dir = Some(dir.join("state"));
    winback::pipeline::run(&opts).await
}

fn purchases_report(m: &Manifest) -> &winback::source::SourceReport {
    m.sources.iter().find(|s| s.name == "purchases").unwrap()
}

const COMPARED: [&str; 4] = ["purchases_clean", "customer_summary", "rfm", "lapse_alerts"];

#[tokio::test]
async fn a_source_may_be_one_parquet_file_one_csv_file_a_glob_or_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    // The same rows as one Parquet file, one CSV file, and two halves for a glob (which
    // must not match all.parquet in the same folder: its rows would be counted twice).
    let shapes = tmp.path().join("shapes");
    let rows = reshaped_purchases(&data, &shapes).await;

    // (name, source url, --set overrides, the selection the manifest reports)
    type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            "folder",
            data.join("purchases").display().to_string(),
            &[],
            "folder",
        ),
        (
            "parquet-file",
            shapes.join("all.parquet").display().to_string(),
            &[],
            "file",
        ),
        (
            "csv-file",
            shapes.join("all.csv").display().to_string(),
            &[("sources.purchases.format", "csv")],
            "file",
        ),
        (
            "glob",
            format!("{}/part-*.parquet", shapes.display()),
            &[],
            "glob 'part-*.parquet'",
        ),
    ];
    let mut first: Option<Vec<Vec<String>>> = None;
    for (name, url, set, selection) in cases {
        let dir = tmp.path().join(name);
        let m = run_with_purchases(&dir, &data, &url, set)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = purchases_report(&m);
        assert_eq!(report.selection, selection, "{name}");
        assert_eq!(report.rows_read, rows as u64, "{name}");
        let mut tables = Vec::new();
        for t in COMPARED {
            tables.push(read_output(&dir.join("out"), t, AS_OF).await);
        }
        assert!(
            tables[1].len() > 100,
            "{name}: {} customers",
            tables[1].len()
        );
        match &first {
            None => first = Some(tables),
            Some(expected) => {
                for (i, t) in COMPARED.iter().enumerate() {
                    assert!(
                        expected[i] == tables[i],
                        "{name}: table {t} differs from the folder's"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_file_delivered_twice_under_two_names_is_read_once_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "\
order_id,customer_id,order_ts,amount
o1,c1,2026-01-05 10:00:00,10
o2,c2,2026-01-06 10:00:00,20
";
    let folder = csv_source(tmp.path(), "purchases", csv);
    std::fs::write(folder.join("data (copy).csv"), csv).unwrap();
    // Same size, other bytes: a different file, read.
    std::fs::write(
        folder.join("more.csv"),
        csv.replace("o1,c1", "o3,c3").replace("o2,c2", "o4,c4"),
    )
    .unwrap();
    let data = tmp.path();
    std::fs::create_dir_all(data.join("customers")).unwrap();
    std::fs::create_dir_all(data.join("complaints")).unwrap();
    let m = run_with_purchases(
        &tmp.path().join("run"),
        data,
        &folder.display().to_string(),
        &[("sources.purchases.format", "csv")],
    )
    .await
    .unwrap();
    let report = purchases_report(&m);
    assert_eq!(report.files.len(), 2, "{:?}", report.files);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    // Sorted by path: "data (copy).csv" comes before "data.csv", so it is the one read.
    assert!(
        report.skipped[0].path.ends_with("/data.csv"),
        "{:?}",
        report.skipped
    );
    assert!(report.skipped[0].same_as.ends_with("/data (copy).csv"));
    assert_eq!(report.rows_read, 4);
    assert!(m.quarantine.values().all(|n| *n == 0), "{:?}", m.quarantine);
    let summary = read_output(&tmp.path().join("run/out"), "customer_summary", AS_OF).await;
    assert_eq!(summary.len(), 5, "four customers, each once: {summary:?}");
    let manifest = std::fs::read_to_string(
        tmp.path()
            .join("run/out/_runs")
            .join(format!("as_of={AS_OF}"))
            .join("manifest.json"),
    )
    .unwrap();
    assert!(manifest.contains("\"skipped\""), "{manifest}");
}

#[tokio::test]
async fn unreadable_files_are_each_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let folder = tmp.path().join("purchases");
    std::fs::create_dir_all(&folder).unwrap();
    let demo_file = std::fs::read_dir(data.join("purchases"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(demo_file, folder.join("good.parquet")).unwrap();
    let good = std::fs::read(folder.join("good.parquet")).unwrap();
    std::fs::write(folder.join("truncated.parquet"), &good[..good.len() / 2]).unwrap();
    std::fs::write(folder.join("empty.parquet"), b"").unwrap();
    std::fs::write(folder.join("notes.parquet"), b"customer_id,amount\nc1,10\n").unwrap();
    let out = tmp.path().join("run/out");
    let err = run_with_purchases(
        &tmp.path().join("run"),
        &data,
        &folder.display().to_string(),
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(err.blame(), Blame::User, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("truncated.parquet: cannot be read as parquet"),
        "{msg}"
    );
    assert!(
        msg.contains("notes.parquet: cannot be read as parquet"),
        "{msg}"
    );
    assert!(
        msg.contains("empty.parquet: the file is empty (0 bytes)"),
        "{msg}"
    );
    assert!(!msg.contains("good.parquet"), "{msg}");
    for table in COMPARED {
        assert!(!out.join(table).exists(), "{table} was written");
    }
}

fn amounts_file(path: &Path, customer: &str, amount: Arc<dyn datafusion::arrow::array::Array>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("order_ts", DataType::Utf8, true),
        Field::new("amount", amount.data_type().clone(), true),
    ]));
    let n = amount.len();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![customer; n])),
            Arc::new(StringArray::from(vec!["2026-01-05 10:00:00"; n])),
            amount,
        ],
    )
    .unwrap();
    write_parquet(path, batch).unwrap();
}

#[tokio::test]
async fn column_types_that_differ_across_files_are_cast_when_lossless_else_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    std::fs::create_dir_all(data.join("customers")).unwrap();
    std::fs::create_dir_all(data.join("complaints")).unwrap();
    let folder = data.join("purchases");
    std::fs::create_dir_all(&folder).unwrap();
    amounts_file(
        &folder.join("a.parquet"),
        "c1",
        Arc::new(Int64Array::from(vec![7, 3])),
    );
    amounts_file(
        &folder.join("b.parquet"),
        "c2",
        Arc::new(Float64Array::from(vec![2.25])),
    );
    let m = run_with_purchases(&data.join("ok"), data, &folder.display().to_string(), &[])
        .await
        .unwrap();
    assert_eq!(purchases_report(&m).rows_read, 3);
    let summary = read_output(&data.join("ok/out"), "customer_summary", AS_OF).await;
    assert!(
        summary[1].starts_with("c1,") && summary[1].contains(",10,"),
        "{summary:?}"
    );
    assert!(
        summary[2].starts_with("c2,") && summary[2].contains(",2.25,"),
        "{summary:?}"
    );

    amounts_file(
        &folder.join("c.parquet"),
        "c3",
        Arc::new(BooleanArray::from(vec![true])),
    );
    let err = run_with_purchases(&data.join("bad"), data, &folder.display().to_string(), &[])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.blame(), Blame::User, "{msg}");
    // The boolean file is refused by the column check, and named against the others' type.
    assert!(msg.contains("c.parquet"), "{msg}");
    assert!(
        msg.contains("column 'amount'") && msg.contains("Boolean"),
        "{msg}"
    );
}

#[tokio::test]
async fn text_times_with_an_offset_are_instants_and_local_times_are_kept_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    // Europe/Berlin: 2026-03-29 02:30 does not exist (clocks jump 02:00 -> 03:00);
    // 2026-10-25 02:30 happens twice (03:00 -> 02:00). Both are still purchases on that day.
    let csv = "\
order_id,customer_id,order_ts,amount
o1,c1,2026-03-29 02:30:00,10
o2,c1,2026-10-25 02:30:00,10
o3,c2,2026-01-10T23:30:00Z,5
o4,c2,2026-01-12T23:30:00-05:00,5
o5,c3,2026-01-12 08:00:00+0530,5
";
    let folder = csv_source(tmp.path(), "purchases", csv);
    std::fs::create_dir_all(tmp.path().join("customers")).unwrap();
    std::fs::create_dir_all(tmp.path().join("complaints")).unwrap();
    let mut opts = run_options(
        "2026-11-01",
        &[
            ("purchases", &folder),
            ("customers", &tmp.path().join("customers")),
            ("complaints", &tmp.path().join("complaints")),
        ],
        &tmp.path().join("out"),
        &[
            ("sources.purchases.format", "csv"),
            ("timezone", "Europe/Berlin"),
        ],
    );
    opts.select = vec!["purchases_clean".into()];
    let (p, _) = winback::pipeline::run_in_session(&opts).await.unwrap();
    assert_eq!(
        query(&p.ctx, "select count(*) as n from quarantine").await,
        ["n", "0"]
    );
    let got = query(
        &p.ctx,
        "select order_id, cast(order_ts as varchar), cast(order_date as varchar) from purchases_clean",
    )
    .await;
    assert_eq!(
        got[1..],
        [
            "o1,2026-03-29T02:30:00,2026-03-29",
            "o2,2026-10-25T02:30:00,2026-10-25",
            // 23:30 UTC in January is 00:30 the next day in Berlin (UTC+1).
            "o3,2026-01-11T00:30:00,2026-01-11",
            // 23:30 at UTC-5 is 04:30 UTC on the 13th, 05:30 in Berlin.
            "o4,2026-01-13T05:30:00,2026-01-13",
            // 08:00 at UTC+05:30 is 02:30 UTC, 03:30 in Berlin.
            "o5,2026-01-12T03:30:00,2026-01-12",
        ]
    );
}

#[tokio::test]
async fn customers_twice_and_consent_values_other_than_true_or_false() {
    let tmp = tempfile::tempdir().unwrap();
    let purchases = csv_source(
        tmp.path(),
        "purchases",
        "order_id,customer_id,order_ts,amount\no1,c1,2026-01-05 10:00:00,10\n",
    );
    let customers = csv_source(
        tmp.path(),
        "customers",
        "\
customer_id,email,consent_email,consent_sms
c1,a@example.com,yes,0
c2,b@example.com,maybe,true
c3,c@example.com,TRUE,
c3,c@example.com,TRUE,
",
    );
    let complaints = empty_source(tmp.path(), "complaints");
    let mut opts = run_options(
        AS_OF,
        &[
            ("purchases", &purchases),
            ("customers", &customers),
            ("complaints", &complaints),
        ],
        &tmp.path().join("out"),
        &[
            ("sources.purchases.format", "csv"),
            ("sources.customers.format", "csv"),
        ],
    );
    opts.select = vec!["customer_summary".into()];
    let (p, _) = winback::pipeline::run_in_session(&opts).await.unwrap();
    // Common spellings of yes and no are read; anything else is not consent: the row is
    // quarantined (the customer is never contacted) with the value as read. Only the
    // personal columns (e-mail, phone) are masked in the record.
    assert_eq!(
        query(
            &p.ctx,
            "select customer_id, consent_email, consent_sms from customers"
        )
        .await,
        [
            "customer_id,consent_email,consent_sms",
            "c1,true,false",
            "c3,true,"
        ]
    );
    let rejected = query(
        &p.ctx,
        "select reason, record from quarantine where source = 'customers'",
    )
    .await;
    assert_eq!(
        rejected.len(),
        3,
        "a header, one bad consent, one duplicate: {rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|r| r.starts_with("duplicate_customer_id,customer_id=c3")),
        "{rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|r| r.starts_with("bad_consent_email,") && r.contains("consent_email=maybe")),
        "{rejected:?}"
    );
    assert!(
        !rejected.iter().any(|r| r.contains("example.com")),
        "{rejected:?}"
    );
}

#[tokio::test]
async fn a_file_of_only_bad_rows_is_an_empty_run_with_everything_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let purchases = csv_source(
        tmp.path(),
        "purchases",
        "\
order_id,customer_id,order_ts,amount
o1,,2026-01-05 10:00:00,10
o2,c2,yesterday,10
o3,c3,2026-01-05 10:00:00,ten
",
    );
    let customers = empty_source(tmp.path(), "customers");
    let complaints = empty_source(tmp.path(), "complaints");
    let out = tmp.path().join("out");
    let opts = run_options(
        AS_OF,
        &[
            ("purchases", &purchases),
            ("customers", &customers),
            ("complaints", &complaints),
        ],
        &out,
        &[("sources.purchases.format", "csv")],
    );
    let m = winback::pipeline::run(&opts).await.unwrap();
    assert_eq!(m.quarantine.values().sum::<u64>(), 3, "{:?}", m.quarantine);
    assert_eq!(read_output(&out, "quarantine", AS_OF).await.len(), 4);
    // Tables with no rows (the reader shows no header for a file without rows).
    for table in [
        "purchases_clean",
        "customer_summary",
        "rfm",
        "ltv",
        "lapse_alerts",
    ] {
        assert!(
            out.join(table).join(format!("as_of={AS_OF}")).is_dir(),
            "{table}"
        );
        assert!(
            read_output(&out, table, AS_OF).await.len() <= 1,
            "{table} has rows"
        );
    }
}

/// CDNOW's shape: customer, date, amount, quantity; no order id; the same CD bought twice
/// on one day is two identical rows; some orders are free.
#[tokio::test]
async fn cdnow_like_data_keeps_every_customer_and_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("customer_id,order_ts,amount,quantity\n");
    let mut rows = 0;
    let mut spent = std::collections::BTreeMap::new();
    let mut state: u64 = 42;
    let mut next = |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    for c in 0..300 {
        let visits = 1 + next(4);
        for _ in 0..visits {
            let day = 1 + next(28);
            let month = 1 + next(12);
            // Every 7th customer only ever gets free orders; others sometimes.
            let amount = if c % 7 == 0 || next(10) == 0 {
                0.0
            } else {
                5.0 + next(3000) as f64 / 100.0
            };
            let copies = if next(5) == 0 { 2 } else { 1 };
            for _ in 0..copies {
                csv.push_str(&format!("{c},2025-{month:02}-{day:02},{amount},1\n"));
                rows += 1;
            }
            *spent.entry(c).or_insert(0.0) += amount;
        }
    }
    let purchases = csv_source(tmp.path(), "purchases", &csv);
    let empty_customers = empty_source(tmp.path(), "customers");
    let complaints = empty_source(tmp.path(), "complaints");
    let out = tmp.path().join("out");
    let opts = run_options(
        "2026-01-01",
        &[
            ("purchases", &purchases),
            ("customers", &empty_customers),
            ("complaints", &complaints),
        ],
        &out,
        &[("sources.purchases.format", "csv")],
    );
    let m = winback::pipeline::run(&opts).await.unwrap();
    assert!(m.quarantine.values().all(|n| *n == 0), "{:?}", m.quarantine);
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "s",
        format!(
            "{}/",
            out.join("customer_summary/as_of=2026-01-01").display()
        ),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let got = query(
        &ctx,
        "select count(*) as customers, sum(orders) as orders, \
         count(*) filter (where monetary_total = 0) as free_only from s",
    )
    .await;
    let free_only = spent.values().filter(|s| **s == 0.0).count();
    assert!(free_only >= 300 / 7, "{free_only}");
    assert_eq!(
        got[1],
        format!("{},{rows},{free_only}", spent.len()),
        "every customer once, every row an order"
    );
}

#[test]
fn the_run_summary_names_a_skipped_copy_and_what_each_source_was() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = "order_id,customer_id,order_ts,amount\no1,c1,2026-01-05 10:00:00,10\n";
    let folder = csv_source(tmp.path(), "purchases", csv);
    std::fs::write(folder.join("again.csv"), csv).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_winback"))
        .args([
            "run",
            "--pipeline",
            &default_pipeline(),
            "--as-of",
            AS_OF,
            "--input",
            &format!("purchases={}", folder.display()),
            "--input",
            &format!("customers={}/none-*.parquet", tmp.path().display()),
            "--set",
            "sources.purchases.format=csv",
            "--set",
            "sources.complaints.optional=true",
            "--input",
            &format!("complaints={}", tmp.path().join("complaints").display()),
            "--output",
            &tmp.path().join("out").display().to_string(),
            "--state-dir",
            &tmp.path().join("state").display().to_string(),
            "--no-send",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rows from 1 file(s) (folder)"), "{stdout}");
    assert!(
        stdout.contains("/data.csv: the same bytes as ") && stdout.contains("/again.csv"),
        "{stdout}"
    );
    // An optional source whose glob matches nothing is an empty table, not an error.
    assert!(
        stdout.contains("rows from 0 file(s) (glob 'none-*.parquet')"),
        "{stdout}"
    );
}
