//! Lifetime value end to end: the backtest command on demo data.

use std::process::Command;

#[test]
fn backtest_compares_predicted_and_actual_repeat_purchases_by_frequency() {
    let tmp = tempfile::tempdir().unwrap();
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: tmp.path().join("data"),
        rows: 40_000,
        end: crate::support::date("2026-07-01"),
        seed: 11,
    })
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args([
            "ltv",
            "backtest",
            "--calibration-end",
            "2026-01-01",
            "--holdout-end",
            "2026-07-01",
        ])
        .arg("--pipeline")
        .arg(crate::support::repo().join("pipelines/reactivation.toml"))
        .arg("--input")
        .arg(format!(
            "purchases={}",
            tmp.path().join("data/purchases").display()
        ))
        .arg("--output")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .expect("a total line");
    let nums: Vec<f64> = total
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|n| n.parse().unwrap())
        .collect();
    let (predicted, actual) = (nums[1], nums[2]);
    assert!(actual > 100.0, "{stdout}");
    assert!(
        (predicted / actual - 1.0).abs() < 0.25,
        "prediction within 25% of actual: {stdout}"
    );
    for f in ["0", "1", "2", "7+"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(f)),
            "row {f}: {stdout}"
        );
    }
    assert!(
        tmp.path()
            .join("out/ltv_backtest/as_of=2026-07-01/_SUCCESS")
            .exists()
    );
    // The report shows averages per customer on every row: as printed for each frequency,
    // and the printed sums divided by the customers on the total.
    let out_url = tmp.path().join("out").to_string_lossy().into_owned();
    let data = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(winback::report::gather::gather(
            &out_url,
            crate::support::date("2026-07-01"),
            None,
        ))
        .unwrap();
    let shown = data.backtest.expect("the report reads ltv_backtest");
    for line in stdout
        .lines()
        .filter(|l| l.contains("(per customer)") || l.contains("(sums)"))
    {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (customers, predicted, actual): (f64, f64, f64) = (
            w[1].parse().unwrap(),
            w[2].parse().unwrap(),
            w[3].parse().unwrap(),
        );
        let per = if w[0] == "total" { customers } else { 1.0 };
        let row = shown.iter().find(|r| r.frequency == w[0]).expect(w[0]);
        assert!(
            (row.predicted - predicted / per).abs() < 1e-3
                && (row.actual - actual / per).abs() < 1e-3,
            "report row {row:?} against printed {line}"
        );
    }
}
