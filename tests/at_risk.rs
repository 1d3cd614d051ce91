//! CPR before the silence over two runs: a P(alive) drop needs the previous run's `ltv`
//! output (`previous_ltv`), so it is checked here rather than as a golden stage case.

use std::path::Path;

use chrono::Duration;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use winback::demo::generate::{purchase_rows, write_parquet};
use winback::demo::{DemoOptions, generate};

use crate::support::*;

/// `at_risk_customers` of the run of `as_of` in `out`, queried with `sql` (the table is
/// `t`).
async fn at_risk(out: &Path, as_of: &str, sql: &str) -> Vec<String> {
    let ctx = SessionContext::new();
    let dir = out.join("at_risk_customers").join(format!("as_of={as_of}"));
    ctx.register_parquet(
        "t",
        format!("{}/", dir.display()),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    query(&ctx, sql).await
}

#[tokio::test]
async fn a_p_alive_drop_since_the_previous_run_is_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A realistic population for the model (some customers churn, most do not) ...
    generate(&DemoOptions {
        dir: data.clone(),
        rows: 8_000,
        end: date("2026-06-01"),
        seed: 11,
    })
    .unwrap();
    // ... and two big weekly buyers for a year: "dropper" stops on the eve of the first run
    // (2026-04-20), "keeper" goes on buying.
    let first = date("2026-04-20");
    let mut rows = Vec::new();
    for week in 1..=52i64 {
        let day = first - Duration::days(7 * week - 6);
        let at = day.and_hms_opt(12, 0, 0).unwrap();
        rows.push((format!("D{week}"), "dropper".into(), at, 400.0, "web"));
        rows.push((format!("K{week}"), "keeper".into(), at, 400.0, "web"));
    }
    for week in 1..=6i64 {
        let at = (first + Duration::days(7 * week - 6))
            .and_hms_opt(12, 0, 0)
            .unwrap();
        rows.push((format!("KA{week}"), "keeper".into(), at, 400.0, "web"));
    }
    write_parquet(&data.join("purchases/weekly.parquet"), purchase_rows(rows)).unwrap();
    let inputs: Vec<(&str, std::path::PathBuf)> =
        ["purchases", "customers", "complaints", "feedback"]
            .iter()
            .map(|s| (*s, data.join(s)))
            .collect();
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let out = tmp.path().join("out");
    // A silence of 5 weeks is not yet a lapse for anyone here: the drop is a warning before
    // the silence, not the lapse itself.
    let set = [("variables.lapse_factor", "10.0")];
    for as_of in ["2026-04-20", "2026-05-25"] {
        winback::pipeline::run(&run_options(as_of, &inputs, &out, &set))
            .await
            .unwrap_or_else(|e| panic!("{as_of}: {e}"));
    }

    // The first run has no previous run: nobody's P(alive) dropped.
    let drops = "select count(*) as n from t where p_alive_drop";
    assert_eq!(at_risk(&out, "2026-04-20", drops).await, ["n", "0"]);

    // The second reads the first's ltv. The dropper, silent for five weeks after buying
    // every week, fell far; the keeper did not.
    let dropper = at_risk(
        &out,
        "2026-05-25",
        "select warning, stage, entry_date, p_alive_drop, previous_as_of, \
         previous_p_alive - p_alive > 0.2 as fell from t where customer_id = 'dropper'",
    )
    .await;
    assert_eq!(
        dropper,
        [
            "warning,stage,entry_date,p_alive_drop,previous_as_of,fell",
            "p_alive_drop,at_risk,2026-05-25,true,2026-04-20,true"
        ]
    );
    let keeper = "select count(*) as n from t where customer_id = 'keeper' and p_alive_drop";
    assert_eq!(at_risk(&out, "2026-05-25", keeper).await, ["n", "0"]);
    // Every drop the table reports is one of more than at_risk_p_alive_drop (0.2).
    let wrong = "select count(*) as n from t where p_alive_drop \
                 and not (previous_p_alive - p_alive > 0.2 and previous_as_of = date '2026-04-20')";
    assert_eq!(at_risk(&out, "2026-05-25", wrong).await, ["n", "0"]);
}
