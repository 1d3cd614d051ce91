//! Gathering the report's numbers from a run's output folder: each table of the `as_of`
//! is read where it is, aggregated in SQL (never one row per customer leaves the query),
//! and a missing table leaves its section empty with the reason.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use super::data::*;
use super::gather_churn;
use super::gather_playbook;
use super::gather_results::{backtest, campaign_totals, campaigns, manifest_view, read_manifest};
use super::gather_vip;
use super::query::{err, int, num, register, rows};
use crate::engine::{self, EngineOptions};
use crate::error::PipelineError;
use crate::storage::{self, Location};

/// The output tables the report reads.
const TABLES: [&str; 16] = [
    "customer_summary",
    "rfm",
    "value_grade",
    "ltv",
    "lapse_alerts",
    "segment_alerts",
    "ltv_backtest",
    "campaign_results",
    "campaign_funnel",
    "churn_kpis",
    "winback_treatment",
    "reactivated_customers",
    "vip_customers",
    "vip_results",
    "at_risk_customers",
    "call_results",
];

/// Everything the report shows for `as_of`, from the outputs under `output` (and the send
/// ledger in `state_dir`, for deliveries per campaign).
pub async fn gather(
    output: &str,
    as_of: NaiveDate,
    state_dir: Option<&Path>,
) -> Result<ReportData, PipelineError> {
    let ctx = engine::new_session(&EngineOptions::default()).await?;
    let root = storage::register(&ctx, output)?;
    let mut d = ReportData {
        as_of,
        generated_at: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        ..ReportData::default()
    };
    let mut have = BTreeMap::new();
    for t in TABLES {
        have.insert(t, register(&ctx, &root, t, as_of).await);
    }
    let manifest = read_manifest(&root, as_of).await;
    if let Some(m) = &manifest {
        d.pipeline = m["pipeline"].as_str().unwrap_or_default().to_string();
        d.manifest = Some(manifest_view(m));
    } else {
        d.empty.insert(
            "manifest".into(),
            format!("no manifest for as_of {as_of} in this output folder"),
        );
    }
    let missing = |t: &str| super::query::missing_table(t, as_of);
    if have["customer_summary"] {
        (d.glance.customers, d.glance.revenue) = customer_totals(&ctx).await?;
    } else {
        d.empty.insert("glance".into(), missing("customer_summary"));
    }
    if have["rfm"] {
        d.rfm = rfm_segments(&ctx).await?;
    } else {
        d.empty.insert("rfm".into(), missing("rfm"));
    }
    if have["value_grade"] {
        d.pareto = Some(pareto(&ctx).await?);
    } else {
        d.empty.insert("pareto".into(), missing("value_grade"));
    }
    if have["ltv"] {
        d.clv_hist = histogram(&ctx, "ltv", "clv", "Predicted customer lifetime value").await?;
        d.p_alive_hist = histogram(
            &ctx,
            "ltv",
            "p_alive",
            "Probability the customer is still active",
        )
        .await?;
    } else {
        d.empty.insert("value".into(), missing("ltv"));
    }
    if have["lapse_alerts"] {
        lapses(&ctx, &root, &mut d).await?;
    } else {
        d.empty.insert("lapses".into(), missing("lapse_alerts"));
    }
    if have["segment_alerts"] {
        d.segment_alerts = segment_alerts(&ctx, as_of).await?;
        d.glance.segment_alerts = d.segment_alerts.iter().filter(|a| a.alert).count() as u64;
    }
    gather_churn::sections(&ctx, &have, &mut d).await?;
    if have["ltv_backtest"] {
        d.backtest = Some(backtest(&ctx).await?);
    } else {
        d.empty.insert(
            "backtest".into(),
            "no model backtest for this date: `winback ltv backtest --output` writes one".into(),
        );
    }
    d.campaigns = campaigns(
        &ctx,
        (have["campaign_funnel"], have["campaign_results"]),
        manifest.as_ref(),
        as_of,
        state_dir,
    )
    .await?;
    campaign_totals(&mut d);
    gather_vip::section(&ctx, &have, &mut d).await?;
    gather_playbook::sections(&ctx, &have, &mut d).await?;
    Ok(d)
}

/// The number of customers and their revenue, from `customer_summary`.
async fn customer_totals(ctx: &SessionContext) -> Result<(u64, f64), PipelineError> {
    let r = rows(
        ctx,
        "select count(*), coalesce(sum(monetary_total), 0) from customer_summary",
    )
    .await?;
    Ok((int(&r[0][0]), num(&r[0][1])))
}

/// Customers and revenue per RFM segment, the largest first.
async fn rfm_segments(ctx: &SessionContext) -> Result<Vec<SegmentRow>, PipelineError> {
    let sql = "select segment, count(*), coalesce(sum(monetary_total), 0) from rfm group by segment order by 2 desc, 1";
    Ok(rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| SegmentRow {
            segment: r[0].clone(),
            customers: int(&r[1]),
            revenue: num(&r[2]),
        })
        .collect())
}

/// From `lapse_alerts`: tonight's first alerts, the alerts per segment, and the alerts of
/// the recent runs (none when they cannot be read).
async fn lapses(
    ctx: &SessionContext,
    root: &Location,
    d: &mut ReportData,
) -> Result<(), PipelineError> {
    let r = rows(
        ctx,
        "select count(*) filter (where is_first_alert) from lapse_alerts",
    )
    .await?;
    d.glance.first_alerts = int(&r[0][0]);
    let sql = "select coalesce(segment, 'unknown'), count(*) from lapse_alerts group by 1 order by 2 desc, 1";
    d.lapse_by_segment = rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), int(&r[1])))
        .collect();
    d.lapse_history = lapse_history(ctx, root, d.as_of).await.unwrap_or_default();
    Ok(())
}

/// Tonight's segment checks, alerts first then by z-score, at most 200.
async fn segment_alerts(
    ctx: &SessionContext,
    as_of: NaiveDate,
) -> Result<Vec<SegmentAlert>, PipelineError> {
    let sql = "select dimension || ': ' || segment, new_lapses_7d, baseline_mean, z_score, alert \
               from segment_alerts order by alert desc, z_score desc nulls last limit 200";
    Ok(rows(ctx, sql)
        .await?
        .into_iter()
        .map(|r| SegmentAlert {
            group: r[0].clone(),
            week: as_of,
            lapses: int(&r[1]),
            baseline: num(&r[2]),
            z: num(&r[3]),
            alert: r[4] == "true",
        })
        .collect())
}

/// The 80/20 curve: customers by revenue, at most about 200 points, and where each
/// grade's band ends.
async fn pareto(ctx: &SessionContext) -> Result<Pareto, PipelineError> {
    let ranked = "select grade, cumulative_share, \
        row_number() over (order by monetary_total desc, customer_id) as rn, count(*) over () as n \
        from value_grade";
    let points = rows(
        ctx,
        &format!(
            "select cast(rn as double) / n, cumulative_share from ({ranked}) \
             where rn % greatest(n / 200, 1) = 0 or rn = n or rn = 1 order by rn"
        ),
    )
    .await?
    .into_iter()
    .map(|r| (num(&r[0]), num(&r[1])))
    .collect();
    let grades = rows(
        ctx,
        &format!("select grade, cast(max(rn) as double) / max(n) from ({ranked}) group by grade order by grade"),
    )
    .await?
    .into_iter()
    .map(|r| (r[0].clone(), num(&r[1])))
    .collect();
    Ok(Pareto { points, grades })
}

/// 30 equal bins of `column` between its minimum and maximum.
async fn histogram(
    ctx: &SessionContext,
    table: &str,
    column: &str,
    label: &str,
) -> Result<Option<Histogram>, PipelineError> {
    let r = rows(
        ctx,
        &format!("select min({column}), max({column}) from {table}"),
    )
    .await?;
    let (Some(lo), Some(hi)) = (r[0][0].parse::<f64>().ok(), r[0][1].parse::<f64>().ok()) else {
        return Ok(None);
    };
    let width = ((hi - lo) / 30.0).max(f64::MIN_POSITIVE);
    let sql = format!(
        "select least(cast(floor(({column} - ({lo})) / ({width})) as bigint), 29) as b, count(*) \
         from {table} where {column} is not null group by 1 order by 1"
    );
    let mut bins: Vec<(f64, f64, u64)> = (0..30)
        .map(|i| (lo + i as f64 * width, lo + (i + 1) as f64 * width, 0))
        .collect();
    for r in rows(ctx, &sql).await? {
        if let Some(bin) = bins.get_mut(int(&r[0]) as usize) {
            bin.2 = int(&r[1]);
        }
    }
    Ok(Some(Histogram {
        label: label.to_string(),
        bins,
    }))
}

/// Alerts of the last 90 runs at or before `as_of`, from the `lapse_alerts` partitions.
async fn lapse_history(
    ctx: &SessionContext,
    root: &Location,
    as_of: NaiveDate,
) -> Result<Vec<LapsePoint>, PipelineError> {
    let dir = root.child("lapse_alerts");
    let opts =
        ParquetReadOptions::default().table_partition_cols(vec![("as_of".into(), DataType::Utf8)]);
    ctx.register_parquet("lapse_history", dir.url.as_str(), opts)
        .await
        .map_err(err)?;
    let sql = format!(
        "select as_of, count(*), count(*) filter (where is_first_alert) from lapse_history \
         where as_of <= '{as_of}' group by as_of order by as_of desc limit 90"
    );
    let mut points: Vec<LapsePoint> = rows(ctx, &sql)
        .await?
        .into_iter()
        .filter_map(|r| {
            Some(LapsePoint {
                as_of: r[0].parse().ok()?,
                alerts: int(&r[1]),
                first_alerts: int(&r[2]),
            })
        })
        .collect();
    points.reverse();
    Ok(points)
}
