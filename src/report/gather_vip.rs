//! Gathering the "vip" section's numbers: tonight's best customers (`vip_customers`) and
//! whether the thanked ones lapse less than the holdout (`vip_results`), aggregated in SQL.
//! The recognition campaigns' funnels move here from the win-back campaigns' section.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use super::data::{ReportData, Vip, VipRow};
use super::query::{int, rows};
use crate::error::PipelineError;

fn opt(s: &str) -> Option<f64> {
    s.parse().ok()
}

fn date(s: &str) -> Option<NaiveDate> {
    s.parse().ok()
}

/// The "vip" section (after the campaigns were gathered), or why it is empty.
pub(super) async fn section(
    ctx: &SessionContext,
    have: &BTreeMap<&str, bool>,
    d: &mut ReportData,
) -> Result<(), PipelineError> {
    if !have["vip_customers"] && !have["vip_results"] {
        d.empty.insert(
            "vip".into(),
            format!(
                "the tables `vip_customers` and `vip_results` are not in this output folder for as_of {}",
                d.as_of
            ),
        );
        return Ok(());
    }
    let mut vip = Vip::default();
    if have["vip_customers"] {
        let sql = "select count(*), count(*) filter (where grade = 'A'), \
                   count(*) filter (where top_clv), count(*) filter (where in_cooldown), \
                   count(*) filter (where recognitions > 0) from vip_customers";
        let r = rows(ctx, sql).await?;
        (
            vip.vips,
            vip.grade_a,
            vip.top_clv,
            vip.in_cooldown,
            vip.recognised_ever,
        ) = (
            int(&r[0][0]),
            int(&r[0][1]),
            int(&r[0][2]),
            int(&r[0][3]),
            int(&r[0][4]),
        );
    }
    if have["vip_results"] {
        vip.rows = results(ctx).await?;
    }
    // A campaign with turns in vip_results is a recognition, not a win-back: its funnel is
    // shown here. (Before its first turn is in the ledger it is listed with the others.)
    let recognition: Vec<&str> = vip.rows.iter().map(|r| r.campaign.as_str()).collect();
    let (funnels, winback): (Vec<_>, Vec<_>) = std::mem::take(&mut d.campaigns)
        .into_iter()
        .partition(|c| recognition.contains(&c.campaign.as_str()));
    vip.funnels = funnels;
    d.campaigns = winback;
    d.vip = Some(vip);
    if let Some(why) = super::vip::nothing_to_show(d) {
        d.empty.insert("vip".into(), why);
    }
    Ok(())
}

/// The rows of `vip_results`, by campaign, finished windows first.
async fn results(ctx: &SessionContext) -> Result<Vec<VipRow>, PipelineError> {
    let sql = "select campaign, window_complete, first_turn, last_turn, recognised, holdout, \
               lapsed, holdout_lapsed, lapse_rate, holdout_lapse_rate, difference, ci_low, \
               ci_high, note from vip_results order by campaign, window_complete desc";
    Ok(rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| VipRow {
            campaign: r[0].clone(),
            complete: r[1] == "true",
            first_turn: date(&r[2]),
            last_turn: date(&r[3]),
            recognised: int(&r[4]),
            holdout: int(&r[5]),
            lapsed: int(&r[6]),
            holdout_lapsed: int(&r[7]),
            lapse_rate: opt(&r[8]),
            holdout_lapse_rate: opt(&r[9]),
            difference: opt(&r[10]),
            ci: opt(&r[11]).zip(opt(&r[12])),
            note: (!r[13].is_empty()).then(|| r[13].clone()),
        })
        .collect())
}
