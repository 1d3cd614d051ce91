//! Gathering the "at_risk" and "calls" sections' numbers, aggregated in SQL: the valuable
//! customers not yet lapsed who show a warning (`at_risk_customers`), and the call list's
//! calls with what came of them (`call_results`).

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;

use super::data::{AtRisk, AtRiskRow, CallRow, Calls, ReportData};
use super::query::{int, missing_table, num, rows};
use crate::error::PipelineError;

/// The "at_risk" and "calls" sections, or why each is empty.
pub(super) async fn sections(
    ctx: &SessionContext,
    have: &BTreeMap<&str, bool>,
    d: &mut ReportData,
) -> Result<(), PipelineError> {
    let as_of = d.as_of;
    if have["at_risk_customers"] {
        d.at_risk = Some(at_risk(ctx).await?);
    } else {
        let why = missing_table("at_risk_customers", as_of);
        d.empty.insert("at_risk".into(), why);
    }
    if have["call_results"] {
        d.calls = Some(calls(ctx, as_of).await?);
    } else {
        let why = missing_table("call_results", as_of);
        d.empty.insert("calls".into(), why);
    }
    Ok(())
}

async fn at_risk(ctx: &SessionContext) -> Result<AtRisk, PipelineError> {
    let sql = "select grade, count(*), \
               count(*) filter (where warning = 'complaint'), \
               count(*) filter (where warning = 'slowing'), \
               count(*) filter (where warning = 'p_alive_drop'), \
               count(*) filter (where cast(complaint as int) + cast(slowing as int) \
                   + cast(p_alive_drop as int) > 1) \
               from at_risk_customers group by grade order by grade";
    let rows = rows(ctx, sql).await?;
    Ok(AtRisk {
        rows: rows
            .into_iter()
            .map(|r| AtRiskRow {
                grade: r[0].clone(),
                customers: int(&r[1]),
                complaint: int(&r[2]),
                slowing: int(&r[3]),
                p_alive_drop: int(&r[4]),
                several: int(&r[5]),
            })
            .collect(),
    })
}

async fn calls(ctx: &SessionContext, as_of: chrono::NaiveDate) -> Result<Calls, PipelineError> {
    let sql = format!(
        "select campaign, count(*), count(*) filter (where called_on = date '{as_of}'), \
         count(*) filter (where attempts > 0), count(*) filter (where reached), \
         count(*) filter (where came_back), coalesce(sum(revenue), 0) \
         from call_results group by campaign order by campaign"
    );
    let rows = rows(ctx, &sql).await?;
    Ok(Calls {
        rows: rows
            .into_iter()
            .map(|r| CallRow {
                campaign: r[0].clone(),
                listed: int(&r[1]),
                tonight: int(&r[2]),
                recorded: int(&r[3]),
                reached: int(&r[4]),
                came_back: int(&r[5]),
                revenue: num(&r[6]),
            })
            .collect(),
    })
}
