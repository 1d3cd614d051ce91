//! Gathering the churn sections' numbers: the weeks and grades of `churn_kpis`, the
//! reasons and treatment cells of `winback_treatment`, and the win-backs of
//! `reactivated_customers`, each aggregated in SQL (never one row per customer).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use super::data::{Churn, ChurnGrade, ChurnWeek, Reasons, ReportData, Stay, StayRow};
use super::query::{int, num, rows};
use crate::error::PipelineError;

fn opt(s: &str) -> Option<f64> {
    s.parse().ok()
}

fn date(s: &str) -> Option<NaiveDate> {
    s.parse().ok()
}

/// The churn sections (`churn`, `reasons`, `stay`), or why each is empty.
pub(super) async fn sections(
    ctx: &SessionContext,
    have: &BTreeMap<&str, bool>,
    d: &mut ReportData,
) -> Result<(), PipelineError> {
    let as_of = d.as_of;
    let missing = |t: &str| super::query::missing_table(t, as_of);
    if have["churn_kpis"] {
        d.churn = Some(churn(ctx).await?);
    } else {
        d.empty.insert("churn".into(), missing("churn_kpis"));
    }
    if have["winback_treatment"] {
        d.reasons = Some(reasons(ctx).await?);
    } else {
        d.empty
            .insert("reasons".into(), missing("winback_treatment"));
    }
    if have["reactivated_customers"] {
        d.stay = Some(stay(ctx).await?);
    } else {
        d.empty
            .insert("stay".into(), missing("reactivated_customers"));
    }
    note_empty(d);
    Ok(())
}

/// Records why a churn section read its table but has nothing to show (`winback report`
/// prints it), in the words the section shows.
pub(super) fn note_empty(d: &mut ReportData) {
    let found = [
        ("churn", super::churn::nothing_to_show(d)),
        ("reasons", super::reasons::nothing_to_show(d)),
        ("stay", super::stay::nothing_to_show(d)),
    ];
    for (id, why) in found {
        if let Some(why) = why {
            d.empty.insert(id.into(), why);
        }
    }
}

/// The weeks of `churn_kpis` for everyone, oldest first, and each value grade over them.
pub(super) async fn churn(ctx: &SessionContext) -> Result<Churn, PipelineError> {
    let sql = "select week_start, week_end, active_customers, new_lapses, churn_rate, \
               revenue_at_risk, clv_at_risk, won_back, holdout_customers, natural_returns, \
               holdout_window_complete \
               from churn_kpis where dimension = 'all' order by week_end";
    let weeks = rows(ctx, sql)
        .await?
        .into_iter()
        .filter_map(|r| {
            Some(ChurnWeek {
                week_start: date(&r[0])?,
                week_end: date(&r[1])?,
                active: int(&r[2]),
                new_lapses: int(&r[3]),
                churn_rate: opt(&r[4]),
                revenue_at_risk: num(&r[5]),
                clv_at_risk: opt(&r[6]),
                won_back: int(&r[7]),
                holdout: int(&r[8]),
                natural_returns: int(&r[9]),
                complete: r[10] == "true",
            })
        })
        .collect();
    let sql = "select k.segment, \
               sum(case when k.week_end = m.last_week then k.active_customers else 0 end), \
               sum(k.new_lapses), \
               cast(sum(k.new_lapses) as double) / nullif(sum(k.active_customers), 0), \
               sum(k.revenue_at_risk), sum(k.clv_at_risk), sum(k.won_back) \
               from churn_kpis k cross join (select max(week_end) as last_week from churn_kpis) m \
               where k.dimension = 'value_grade' group by k.segment order by k.segment";
    let grades = rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| ChurnGrade {
            grade: r[0].clone(),
            active: int(&r[1]),
            new_lapses: int(&r[2]),
            churn_rate: opt(&r[3]),
            revenue_at_risk: num(&r[4]),
            clv_at_risk: opt(&r[5]),
            won_back: int(&r[6]),
        })
        .collect();
    Ok(Churn { weeks, grades })
}

/// winback_treatment's `why` for a customer SLTV left out (sql/marts/winback_treatment.sql).
const SLTV_LEFT_OUT: &str = "second lifetime value does not cover the win-back cost";

/// Tonight's lapsed customers by grade and reason, and the cells of the treatment matrix.
pub(super) async fn reasons(ctx: &SessionContext) -> Result<Reasons, PipelineError> {
    let r = rows(
        ctx,
        "select min(alert_date), max(alert_date), count(*) from winback_treatment",
    )
    .await?;
    let mut out = Reasons {
        first_alert: date(&r[0][0]),
        last_alert: date(&r[0][1]),
        customers: int(&r[0][2]),
        ..Reasons::default()
    };
    let sql = "select coalesce(grade, 'unknown'), coalesce(reason, 'unknown'), count(*) \
               from winback_treatment group by 1, 2 order by 1, 2";
    out.by_grade = rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), int(&r[2])))
        .collect();
    let sql = "select distinct coalesce(reason, 'unknown') from winback_treatment \
               where reason_owner = 'company' order by 1";
    out.company_reasons = rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let sql = "select value_level, reason_owner, treatment, count(*) from winback_treatment \
               group by 1, 2, 3 order by 1, 2, 4 desc, 3";
    out.matrix = rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), int(&r[3])))
        .collect();
    let sql = format!(
        "select count(*) filter (where why = '{SLTV_LEFT_OUT}'), \
         count(*) filter (where treatment <> 'let_go' and sltv is not null), \
         coalesce(sum(sltv) filter (where treatment <> 'let_go'), 0) from winback_treatment"
    );
    let r = rows(ctx, &sql).await?;
    out.sltv_left_out = int(&r[0][0]);
    out.sltv_kept = int(&r[0][1]);
    out.sltv_expected = r[0][2].parse().unwrap_or(0.0);
    Ok(out)
}

/// The won-back and the naturally returning customers, side by side (won back first).
pub(super) async fn stay(ctx: &SessionContext) -> Result<Stay, PipelineError> {
    let sql = "select return_kind, count(*), count(revenue_90d), avg(revenue_90d), \
               count(revenue_180d), avg(revenue_180d), avg(cast(purchases_since as double)), \
               count(*) filter (where relapsed), \
               cast(count(*) filter (where relapsed) as double) / nullif(count(relapsed), 0), \
               min(contact_date), max(contact_date), min(return_date) \
               from reactivated_customers group by return_kind order by return_kind desc";
    let rows = rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| StayRow {
            kind: r[0].clone(),
            customers: int(&r[1]),
            complete_90: int(&r[2]),
            revenue_90: opt(&r[3]),
            complete_180: int(&r[4]),
            revenue_180: opt(&r[5]),
            purchases_since: num(&r[6]),
            relapsed: int(&r[7]),
            relapse_rate: opt(&r[8]),
            first_contact: date(&r[9]),
            last_contact: date(&r[10]),
            first_return: date(&r[11]),
        })
        .collect();
    Ok(Stay { rows })
}
