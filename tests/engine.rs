//! Whole runs on a local folder: outputs, manifest, reruns.

use crate::support::*;
use winback::demo::{DemoOptions, generate};

fn demo_data(dir: &std::path::Path, rows: u64, end: &str) {
    generate(&DemoOptions {
        dir: dir.to_path_buf(),
        rows,
        end: date(end),
        seed: 7,
    })
    .unwrap();
}

fn demo_inputs(data: &std::path::Path) -> Vec<(&'static str, std::path::PathBuf)> {
    ["purchases", "customers", "complaints"]
        .iter()
        .map(|s| (*s, data.join(s)))
        .collect()
}

#[tokio::test]
async fn full_run_on_a_local_folder_writes_every_table_and_a_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo_data(&data, 20_000, "2026-06-01");
    let out = tmp.path().join("out");
    let inputs = demo_inputs(&data);
    let inputs: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let m = winback::pipeline::run(&run_options("2026-06-01", &inputs, &out, &[]))
        .await
        .unwrap();

    let expected = [
        "purchases_clean",
        "customer_summary",
        "rfm",
        "value_grade",
        "lapse_alerts",
        "segment_alerts",
        "lapse_reasons",
        "ltv",
        "sltv",
        "winback_treatment",
        "quarantine",
    ];
    for table in expected {
        let rows = read_output(&out, table, "2026-06-01").await;
        assert!(rows.len() > 1, "{table} has rows");
        assert!(out.join(table).join("as_of=2026-06-01/_SUCCESS").exists());
    }
    assert!(
        !out.join("purchase_days").exists(),
        "only the listed tables are written"
    );
    assert!(!out.join("_staging").exists(), "staging is cleaned up");

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("_runs/as_of=2026-06-01/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["status"], "succeeded");
    assert_eq!(manifest["pipeline"], "reactivation");
    assert_eq!(manifest["as_of"], "2026-06-01");
    assert_eq!(manifest["pipeline_hash"].as_str().unwrap().len(), 64);
    // The sources by name (call_outcomes, complaints, customers, purchases, ...).
    let purchases = manifest["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "purchases")
        .unwrap()
        .clone();
    assert!(purchases["rows_read"].as_u64().unwrap() > 19_000);
    let per_file: u64 = purchases["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(
        per_file,
        purchases["rows_read"].as_u64().unwrap(),
        "row counts per file"
    );
    assert!(
        manifest["quarantine"]["purchases/missing_customer_id"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        manifest["quarantine"]["purchases/duplicate_order_id"]
            .as_u64()
            .unwrap()
            > 0
    );
    let share = manifest["metrics"]["top20_revenue_share"].as_f64().unwrap();
    assert!((0.4..0.95).contains(&share), "80/20 figure {share}");
    assert_eq!(
        m.stages.len(),
        39,
        "every SQL and model stage of the shipped pipeline (customer_history too), the economics (treatment_matrix, treatment_campaigns, winback_odds, sltv), campaign_funnel, recent_purchase_days, call_results, issue 26's reasons and CPR before the silence (reason_codes, at_risk_customers, winback_at_risk), winback_opportunistic, vip_customers, vip_recognition and vip_results included"
    );
    assert_eq!(manifest["models"]["ltv"]["bgnbd"]["converged"], true);

    // Every customer is in exactly one segment and one grade.
    let summary = read_output(&out, "customer_summary", "2026-06-01")
        .await
        .len();
    let rfm = read_output(&out, "rfm", "2026-06-01").await;
    let grades = read_output(&out, "value_grade", "2026-06-01").await;
    assert_eq!(rfm.len(), summary);
    assert_eq!(grades.len(), summary);
    assert!(
        rfm.iter().skip(1).all(|r| !r.ends_with(',')),
        "every customer has a segment"
    );
}

#[tokio::test]
async fn rerunning_the_same_as_of_replaces_the_tables_with_identical_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo_data(&data, 8_000, "2026-03-01");
    let out = tmp.path().join("out");
    let inputs = demo_inputs(&data);
    let inputs: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let opts = run_options("2026-03-01", &inputs, &out, &[]);
    winback::pipeline::run(&opts).await.unwrap();
    let mut first = Vec::new();
    for t in [
        "purchases_clean",
        "rfm",
        "value_grade",
        "lapse_alerts",
        "quarantine",
    ] {
        first.push(read_output(&out, t, "2026-03-01").await);
    }
    let files_before = std::fs::read_dir(out.join("rfm/as_of=2026-03-01"))
        .unwrap()
        .count();
    winback::pipeline::run(&opts).await.unwrap();
    for (i, t) in [
        "purchases_clean",
        "rfm",
        "value_grade",
        "lapse_alerts",
        "quarantine",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            read_output(&out, t, "2026-03-01").await,
            first[i],
            "{t} changed on rerun"
        );
    }
    let files_after = std::fs::read_dir(out.join("rfm/as_of=2026-03-01"))
        .unwrap()
        .count();
    assert_eq!(
        files_before, files_after,
        "a rerun replaces files, it does not add to them"
    );
}

#[tokio::test]
async fn a_later_as_of_leaves_earlier_partitions_alone_and_sees_more_history() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo_data(&data, 5_000, "2026-03-01");
    let out = tmp.path().join("out");
    let inputs = demo_inputs(&data);
    let inputs: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    winback::pipeline::run(&run_options("2026-02-01", &inputs, &out, &[]))
        .await
        .unwrap();
    winback::pipeline::run(&run_options("2026-03-01", &inputs, &out, &[]))
        .await
        .unwrap();
    let early = read_output(&out, "purchases_clean", "2026-02-01").await;
    let late = read_output(&out, "purchases_clean", "2026-03-01").await;
    assert!(
        early.len() < late.len(),
        "purchases on or after as_of are outside the run"
    );
    assert!(
        early
            .iter()
            .skip(1)
            .all(|r| r.split(',').nth(2).unwrap() < "2026-02-01"),
        "no order at or after as_of"
    );
}

/// Regression: a model stage once read each input column with its own query; with several
/// partitions the row orders differed, pairing customers with other customers' numbers.
#[tokio::test]
async fn model_stage_rows_stay_aligned_with_their_customer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo_data(&data, 30_000, "2026-03-01");
    let inputs = demo_inputs(&data);
    let inputs: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut opts = run_options("2026-03-01", &inputs, &tmp.path().join("out"), &[]);
    opts.select = vec!["ltv".into()];
    let (p, _) = winback::pipeline::run_in_session(&opts).await.unwrap();
    let mismatched = query(
        &p.ctx,
        "select count(*) as n from ltv l join customer_summary s on s.customer_id = l.customer_id \
         where l.historical_value <> s.monetary_total",
    )
    .await;
    assert_eq!(mismatched, ["n", "0"]);
    let rows = query(&p.ctx, "select count(*) as n from ltv").await;
    let customers = query(&p.ctx, "select count(*) as n from customer_summary").await;
    assert_eq!(rows, customers);
}

/// Above `fit_customers` a model is fitted on a sample, the same every run, and still
/// scores every customer: memory for the fit is bounded, no customer is left out.
#[tokio::test]
async fn a_model_fitted_on_a_sample_scores_every_customer_the_same_every_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo_data(&data, 20_000, "2026-06-01");
    let inputs = demo_inputs(&data);
    let inputs: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let set = [("models.ltv.fit_customers", "500")];
    let mut runs = Vec::new();
    for (i, partitions) in [1, 2].into_iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let mut opts = run_options("2026-06-01", &inputs, &out, &set);
        opts.engine.target_partitions = Some(partitions);
        let m = winback::pipeline::run(&opts).await.unwrap();
        let ltv = &m.models["ltv"];
        let (fitted, scored) = (
            ltv["fit_customers"].as_u64().unwrap(),
            ltv["customers"].as_u64().unwrap(),
        );
        let stride = scored.div_ceil(500);
        assert!(stride >= 2, "{scored} customers, more than the cap");
        // A 1-in-stride sample by id hash: about scored / stride customers, at most the cap.
        let expected = scored as f64 / stride as f64;
        assert!(
            (fitted as f64 - expected).abs() < expected * 0.25 && fitted < scored,
            "fitted on {fitted} of {scored}"
        );
        let table = read_output(&out, "ltv", "2026-06-01").await;
        let summary = read_output(&out, "customer_summary", "2026-06-01").await;
        assert_eq!(table.len(), summary.len(), "every customer is scored");
        let mut sorted = table.clone();
        sorted.sort();
        runs.push((ltv["bgnbd"].clone(), sorted));
    }
    assert_eq!(runs[0], runs[1], "the same sample, fit and table every run");
    // The full fit differs from the sample's: the cap did take a sample.
    let out = tmp.path().join("full");
    let m = winback::pipeline::run(&run_options("2026-06-01", &inputs, &out, &[]))
        .await
        .unwrap();
    assert_eq!(
        m.models["ltv"]["fit_customers"],
        m.models["ltv"]["customers"]
    );
    assert_ne!(m.models["ltv"]["bgnbd"]["r"], runs[0].0["r"]);
}
