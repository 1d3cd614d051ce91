//! Gathering the outcome sections' numbers (kept apart as `results.rs` is from
//! `sections.rs`): the model backtest, the campaigns' results against the holdout (their
//! funnels: `gather_funnel.rs`), and the run manifest.

use std::path::Path;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use super::data::*;
use super::query::{int, num, rows};
use crate::error::PipelineError;
use crate::storage::Location;

/// The glance's messages and incremental revenue over the campaigns, or why there are none.
pub(super) fn campaign_totals(d: &mut ReportData) {
    if d.campaigns.is_empty() {
        d.empty.insert(
            "campaigns".into(),
            "no campaign results in this output folder: runs with campaigns write `campaign_results` once messages have gone out".into(),
        );
    }
    d.glance.messages_sent = d
        .campaigns
        .iter()
        .filter_map(|c| c.tonight.as_ref())
        .map(|t| t.delivered)
        .sum();
    let incremental: f64 = d.campaigns.iter().map(|c| c.incremental_revenue).sum();
    d.glance.incremental_revenue = (!d.campaigns.is_empty()).then_some(incremental);
}

/// The rows of `ltv_backtest`.
pub(super) async fn backtest(ctx: &SessionContext) -> Result<Vec<BacktestRow>, PipelineError> {
    // The table holds averages per customer for each frequency, and sums on its `total`
    // row (`models::backtest::backtest_table`); the report shows averages throughout.
    let sql = "select frequency, customers, \
               case when frequency = 'total' then predicted / nullif(customers, 0) else predicted end, \
               case when frequency = 'total' then actual / nullif(customers, 0) else actual end \
               from ltv_backtest";
    Ok(rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| BacktestRow {
            frequency: r[0].clone(),
            customers: int(&r[1]),
            predicted: num(&r[2]),
            actual: num(&r[3]),
        })
        .collect())
}

/// The run manifest of `as_of` in the output folder, if there is one that parses.
pub(super) async fn read_manifest(root: &Location, as_of: NaiveDate) -> Option<serde_json::Value> {
    let dir = root.child("_runs").child(&format!("as_of={as_of}"));
    let bytes = dir.get("manifest.json").await.ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// What the report shows of the run manifest: run, status, inputs, stages, quarantine
/// and a line per model.
pub(super) fn manifest_view(m: &serde_json::Value) -> ManifestView {
    let list = |k: &str| m[k].as_array().cloned().unwrap_or_default();
    ManifestView {
        budget: m["campaigns"]["plan"]["budget"]
            .as_object()
            .map(|b| {
                b.iter()
                    .map(|(campaign, u)| {
                        let f = |k: &str| u[k].as_f64().unwrap_or(0.0);
                        let share = u["share"].as_f64();
                        (
                            campaign.clone(),
                            share,
                            f("limit"),
                            f("spent"),
                            f("reallocated"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        run_id: m["run_id"].as_str().unwrap_or_default().to_string(),
        status: m["status"].as_str().unwrap_or_default().to_string(),
        seconds: m["seconds"].as_f64().unwrap_or(0.0),
        inputs: list("sources")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default().to_string(),
                    s["url"].as_str().unwrap_or_default().to_string(),
                    s["rows_read"].as_u64().unwrap_or(0),
                )
            })
            .collect(),
        stages: list("stages")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default().to_string(),
                    s["rows"].as_u64().unwrap_or(0),
                    s["seconds"].as_f64().unwrap_or(0.0),
                )
            })
            .collect(),
        quarantine: m["quarantine"]
            .as_object()
            .map(|q| {
                q.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
        models: m["models"]
            .as_object()
            .map(|ms| {
                ms.iter()
                    .map(|(k, v)| {
                        let converged = v["bgnbd"]["converged"].as_bool();
                        let summary = match (v["error"].as_str(), converged) {
                            (Some(e), _) => format!("not fitted: {e}"),
                            (None, Some(true)) => "fitted, converged".to_string(),
                            (None, Some(false)) => "fitted, NOT converged".to_string(),
                            (None, None) => "done".to_string(),
                        };
                        (k.clone(), summary)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Each campaign's funnel (`campaign_funnel`, the complete contact nights summed, and
/// tonight's plan apart) and its results against the holdout (`campaign_results`, whole
/// campaign).
pub(super) async fn campaigns(
    ctx: &SessionContext,
    have: (bool, bool),
    manifest: Option<&serde_json::Value>,
    as_of: NaiveDate,
    state_dir: Option<&Path>,
) -> Result<Vec<CampaignResult>, PipelineError> {
    let (have_funnel, have_results) = have;
    let mut out =
        super::gather_funnel::funnels(ctx, have_funnel, manifest, as_of, state_dir).await?;
    if have_results {
        // The headline: the finished windows, like with like; the running ones are counted
        // as in progress.
        let sql = "select campaign, reactivated, holdout_reactivated, rate, holdout_rate, incremental_rate, \
                   ci_low, ci_high, revenue, incremental_revenue, cost, roi, window_complete, \
                   contacted + holdout, note, holdout_needed, itt_incremental_rate, itt_ci_low, \
                   itt_ci_high \
                   from campaign_results where step = 0 and treatment = 'all' and segment = 'all' \
                   order by campaign, window_complete";
        for r in rows(ctx, sql).await? {
            let c = out.entry(r[0].clone()).or_default();
            c.campaign = r[0].clone();
            if r[12] != "true" {
                c.in_progress = int(&r[13]);
                c.note = Some("in progress".into());
                continue;
            }
            let opt = |s: &str| s.parse::<f64>().ok();
            c.ci_low = opt(&r[6]);
            c.ci_high = opt(&r[7]);
            c.note = (!r[14].is_empty()).then(|| r[14].clone());
            c.holdout_needed = opt(&r[15]).map(|v| v as u64);
            c.itt_uplift = opt(&r[16]);
            c.itt_ci = opt(&r[17]).zip(opt(&r[18]));
            c.reactivated = int(&r[1]);
            c.holdout_reactivated = int(&r[2]);
            c.rate = num(&r[3]);
            c.holdout_rate = num(&r[4]);
            c.uplift = num(&r[5]);
            c.revenue = num(&r[8]);
            c.incremental_revenue = num(&r[9]);
            c.cost = num(&r[10]);
            c.roi = r[11].parse().ok();
        }
    }
    // A campaign without any finished window (only tonight's plan, say) has nothing to judge.
    for c in out.values_mut() {
        if c.note.is_none() && c.ci_low.is_none() && c.nights.is_none() {
            c.note = Some("in progress".into());
        }
    }
    Ok(out.into_values().collect())
}
