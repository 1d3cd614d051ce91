//! Win-back economics (issue 25): SLTV = P(win back) x CLV if won back − the cost of the
//! campaign the customer would get, with P(win back) the prior without history and learned
//! from past campaign results with it. The expected figures are worked by hand from the
//! pipeline file's costs and the documented prior; the CLV if won back comes from the model
//! (tested in ltv.rs and the model's unit tests).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveTime;

use crate::support::*;

const AS_OF: &str = "2026-06-01";

/// The default pipeline's campaign costs per customer who gets every step, by hand
/// (pipelines/reactivation.toml: e-mail 0.002 and SMS 0.045 per message; a step listing
/// several channels is costed at its first):
///   winback_quick:     e-mail 0.002 + offer 1.5, SMS 0.045, e-mail 0.002      = 1.549
///   winback_amends:    e-mail 0.002, e-mail 0.002 + offer 3.0, e-mail 0.002   = 3.006
///   winback_long_term: e-mail 0.002 + offer 1.0, e-mail 0.002, e-mail 0.002 + offer 0.5
///                                                                             = 1.506
///   (its repeats every 90 days after the last step are not priced)
///   winback_opportunistic: e-mail 0.002 + offer 0.3                           = 0.302
fn sequence_cost(campaign: &str) -> f64 {
    match campaign {
        "winback_quick" => 1.549,
        "winback_amends" => 3.006,
        "winback_long_term" => 1.506,
        "winback_opportunistic" => 0.302,
        "" => 0.0,
        other => panic!("unexpected campaign {other}"),
    }
}

#[derive(Debug)]
struct Row {
    treatment: String,
    segment: String,
    campaign: String,
    p_win_back: f64,
    p_basis: String,
    clv_if_won_back: f64,
    sequence_cost: f64,
    sltv: f64,
    chase: bool,
}

fn demo(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: data.clone(),
        rows: 40_000,
        end: date(AS_OF),
        seed: 11,
    })
    .unwrap();
    data
}

async fn sltv(data: &Path, out: &Path, state: Option<PathBuf>, set: &[(&str, &str)]) -> Vec<Row> {
    let inputs: Vec<(&str, PathBuf)> = ["purchases", "customers", "complaints"]
        .iter()
        .map(|s| (*s, data.join(s)))
        .collect();
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut opts = run_options(AS_OF, &inputs, out, set);
    opts.select = vec!["sltv".into()];
    opts.state_dir = state;
    let (prepared, _) = winback::pipeline::run_in_session(&opts).await.unwrap();
    let sql = "select treatment, segment, campaign, p_win_back, p_basis, clv_if_won_back, \
               sequence_cost, sltv, chase from sltv";
    let lines = query(&prepared.ctx, sql).await;
    lines[1..]
        .iter()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let f = |i: usize| c[i].parse::<f64>().unwrap();
            Row {
                treatment: c[0].into(),
                segment: c[1].into(),
                campaign: c[2].into(),
                p_win_back: f(3),
                p_basis: c[4].into(),
                clv_if_won_back: f(5),
                sequence_cost: f(6),
                sltv: f(7),
                chase: c[8] == "true",
            }
        })
        .collect()
}

/// SLTV is p x CLV if won back − cost (to the 6 decimals the rows are printed with).
fn check_formula(rows: &[Row]) {
    for r in rows {
        let want = r.p_win_back * r.clv_if_won_back - r.sequence_cost;
        assert!(
            (r.sltv - want).abs() <= 2e-6 * (1.0 + r.clv_if_won_back),
            "sltv {} != {} x {} - {}",
            r.sltv,
            r.p_win_back,
            r.clv_if_won_back,
            r.sequence_cost
        );
        assert_eq!(r.chase, r.sltv > 0.0, "chase is sltv > 0: {r:?}");
        assert_eq!(r.sequence_cost, sequence_cost(&r.campaign), "{r:?}");
    }
}

#[tokio::test]
async fn without_history_sltv_uses_the_prior_and_the_campaigns_costs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let rows = sltv(&data, &tmp.path().join("out"), None, &[]).await;
    assert!(
        rows.len() > 100,
        "lapsed customers are valued: {}",
        rows.len()
    );
    check_formula(&rows);
    for r in &rows {
        assert_eq!((r.p_win_back, r.p_basis.as_str()), (0.05, "prior"), "{r:?}");
    }
    // A pessimistic prior (1 in 100 won back) leaves out the customers whose CLV if won back
    // is below 100 x their campaign's cost.
    let set = [("variables.winback_prior_uplift", "0.01")];
    let pessimistic = sltv(&data, &tmp.path().join("pessimistic"), None, &set).await;
    check_formula(&pessimistic);
    for r in pessimistic.iter().filter(|r| !r.campaign.is_empty()) {
        assert_eq!(r.p_win_back, 0.01);
        assert_eq!(
            r.chase,
            r.clv_if_won_back > 100.0 * r.sequence_cost,
            "{r:?}"
        );
    }
    let left_out = |rows: &[Row]| {
        rows.iter()
            .filter(|r| !r.chase && !r.campaign.is_empty())
            .count()
    };
    assert!(
        left_out(&pessimistic) > left_out(&rows),
        "a lower P(win back) leaves more out: {} vs {}",
        left_out(&pessimistic),
        left_out(&rows)
    );
    // The treatment matrix decides the campaign whose cost is weighed.
    let campaigns: BTreeMap<(&str, &str), usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry((r.treatment.as_str(), r.campaign.as_str()))
            .or_default() += 1;
        m
    });
    for (treatment, campaign) in campaigns.keys() {
        let ok = match *treatment {
            "win_back" => ["winback_quick", "winback_long_term"].contains(campaign),
            "make_amends" => ["winback_amends", "winback_long_term"].contains(campaign),
            "opportunistic" => *campaign == "winback_opportunistic",
            _ => campaign.is_empty(),
        };
        assert!(ok, "{treatment} priced as {campaign:?}: {campaigns:?}");
    }
    assert!(
        campaigns.keys().any(|(_, c)| *c == "winback_quick"),
        "{campaigns:?}"
    );
}

/// 50 customers messaged and 50 held out by `winback_quick` on 2026-04-01 (treatment
/// win_back, RFM segment `segment`), windows complete by as_of; 10 of the messaged and 3 of
/// the held out bought within 30 days. By hand, with the prior pi = 0.05, rho = 0.10,
/// k = 50:
///   treated_rate = (10 + 50 x 0.15) / (50 + 50) = 0.175
///   holdout_rate = (3 + 50 x 0.10) / (50 + 50) = 0.08
///   P(win back)  = 0.095
fn history(data: &Path, state: &Path, segment: &str) {
    let mut csv = String::from(
        "idempotency_key,campaign,step,customer_id,channel,medium,as_of,entry_date,state,cost,created_at,sent_at,segment,treatment,value\n",
    );
    let mut comebacks = Vec::new();
    for i in 0..100 {
        let customer = format!("HIST-{i:03}");
        let held = i >= 50;
        let (state, sent, cost) = if held {
            ("holdout", "", 0.0)
        } else {
            ("delivered", "2026-04-01T10:00:00.000Z", 1.502)
        };
        csv.push_str(&format!(
            "h{i},winback_quick,1,{customer},email,email,2026-04-01,2026-03-31,{state},{cost},2026-04-01T02:30:00.000Z,{sent},{segment},win_back,50\n"
        ));
        if (!held && i < 10) || (held && i < 53) {
            let day = date("2026-04-05").and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap());
            comebacks.push((format!("HIST-O{i}"), customer, day, 40.0, "web"));
        }
    }
    crate::golden::ledger_from_csv(state, &csv);
    let batch = winback::demo::generate::purchase_rows(comebacks);
    winback::demo::generate::write_parquet(&data.join("purchases/history.parquet"), batch).unwrap();
}

#[tokio::test]
async fn with_history_sltv_learns_p_win_back_for_that_treatment_and_segment_only() {
    let tmp = tempfile::tempdir().unwrap();
    let data = demo(tmp.path());
    let before = sltv(&data, &tmp.path().join("before"), None, &[]).await;
    // The segment of most win_back customers: the one the history will speak for.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in before.iter().filter(|r| r.treatment == "win_back") {
        *counts.entry(r.segment.as_str()).or_default() += 1;
    }
    let segment = counts
        .iter()
        .max_by_key(|(s, n)| (**n, *s))
        .unwrap()
        .0
        .to_string();

    let state = tmp.path().join("state");
    history(&data, &state, &segment);
    let rows = sltv(&data, &tmp.path().join("after"), Some(state), &[]).await;
    check_formula(&rows);
    let learned: Vec<&Row> = rows
        .iter()
        .filter(|r| r.treatment == "win_back" && r.segment == segment)
        .collect();
    assert!(!learned.is_empty(), "win_back customers in {segment}");
    for r in &learned {
        assert_eq!(
            (r.p_basis.as_str(), r.p_win_back),
            ("learned", 0.095),
            "{r:?}"
        );
    }
    for r in rows
        .iter()
        .filter(|r| !(r.treatment == "win_back" && r.segment == segment))
    {
        assert_eq!((r.p_basis.as_str(), r.p_win_back), ("prior", 0.05), "{r:?}");
    }
}
