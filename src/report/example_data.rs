//! A complete, realistic `ReportData` for the tests: every section filled, shaped like the
//! demo's output.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};

use super::data::{
    BacktestRow, CampaignResult, Funnel, FunnelNight, Glance, Histogram, LapsePoint, ManifestView,
    Pareto, ReportData, SegmentAlert, SegmentRow, Tonight,
};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// A complete report with every section filled, shaped like the demo's output.
pub fn example() -> ReportData {
    let as_of = date(2024, 6, 30);
    let segs: [(&str, u64, f64); 11] = [
        ("Champions", 2_100, 412_000.0),
        ("Loyal", 3_050, 301_500.0),
        ("Potential Loyalist", 2_600, 120_300.0),
        ("New", 1_900, 38_200.0),
        ("Promising", 1_700, 29_900.0),
        ("Need Attention", 2_250, 88_400.0),
        ("About to Sleep", 2_400, 51_700.0),
        ("At Risk", 2_800, 140_250.5),
        ("Can't Lose Them", 700, 96_800.0),
        ("Hibernating", 2_900, 33_100.0),
        ("Lost", 2_600, 12_900.0),
    ];
    let rfm: Vec<SegmentRow> = segs
        .iter()
        .map(|(s, c, r)| SegmentRow {
            segment: s.to_string(),
            customers: *c,
            revenue: *r,
        })
        .collect();
    let points = (0..=100)
        .map(|i| {
            let x = i as f64 / 100.0;
            (x, 1.0 - (1.0 - x).powf(4.5))
        })
        .collect();
    let grades = vec![
        ("A".into(), 0.2),
        ("B".into(), 0.5),
        ("C".into(), 0.8),
        ("D".into(), 1.0),
    ];
    let clv_bins = (0..30)
        .map(|i| {
            let from = i as f64 * 50.0;
            let count = (4000.0 * (-(i as f64) / 6.0).exp()) as u64;
            (from, from + 50.0, count)
        })
        .collect();
    let p_bins = (0..20)
        .map(|i| {
            let from = i as f64 / 20.0;
            let u = (i as f64 - 10.0).abs();
            (from, from + 0.05, 300 + (u * u * 25.0) as u64)
        })
        .collect();
    let lapse_history = (0..60)
        .map(|i| {
            let d = as_of - chrono::Duration::days(59 - i);
            let wave = if (40..46).contains(&i) { 180 } else { 0 };
            LapsePoint {
                as_of: d,
                alerts: 900 + (i as u64 * 7) % 120 + wave,
                first_alerts: 60 + (i as u64 * 13) % 40 + wave / 2,
            }
        })
        .collect();
    let lapse_by_segment = vec![
        ("At Risk".into(), 520),
        ("Can't Lose Them".into(), 210),
        ("About to Sleep".into(), 340),
        ("Need Attention".into(), 190),
        ("Hibernating".into(), 120),
    ];
    let mut segment_alerts = Vec::new();
    for (w, week) in [date(2024, 6, 10), date(2024, 6, 17), date(2024, 6, 24)]
        .into_iter()
        .enumerate()
    {
        for (g, base) in [("At Risk", 60.0), ("Can't Lose Them", 20.0), ("Lost", 30.0)] {
            let spike = g == "Can't Lose Them" && w == 2;
            let lapses = if spike { 58 } else { base as u64 + w as u64 };
            let z = (lapses as f64 - base) / base.sqrt();
            segment_alerts.push(SegmentAlert {
                group: g.into(),
                week,
                lapses,
                baseline: base,
                z,
                alert: z > 3.0,
            });
        }
    }
    let backtest = ["0", "1", "2", "3", "4", "5", "6", "7+"]
        .iter()
        .enumerate()
        .map(|(i, f)| BacktestRow {
            frequency: f.to_string(),
            customers: 6000 / (i as u64 + 1),
            predicted: 0.3 + i as f64 * 0.9,
            actual: 0.25 + i as f64 * 0.95,
        })
        .collect();
    let campaigns = vec![
        campaign("winback_quick", 4_200, 0.081, 0.042, 18.0, 0.6),
        campaign("winback_amends", 900, 0.12, 0.05, 40.0, 6.5),
        campaign("winback_long_term", 3_100, 0.031, 0.027, 12.0, 0.4),
    ];
    let manifest = ManifestView {
        budget: vec![
            ("winback_amends".into(), Some(0.3), 300.0, 212.4, 0.0),
            ("winback_quick".into(), Some(0.5), 500.0, 500.0, 0.0),
        ],
        run_id: "2024-06-30T02:00:04Z-7f3a".into(),
        status: "succeeded".into(),
        seconds: 41.7,
        inputs: vec![
            (
                "purchases".into(),
                "demo-data/purchases/*.parquet".into(),
                231_400,
            ),
            ("tickets".into(), "demo-data/tickets.csv".into(), 3_120),
        ],
        stages: [
            ("purchases_clean", 229_800, 3.1),
            ("customer_summary", 25_000, 1.4),
            ("rfm", 25_000, 0.9),
            ("value_grade", 25_000, 0.7),
            ("ltv", 25_000, 12.8),
            ("lapse_alerts", 1_950, 0.6),
            ("segment_alerts", 42, 0.2),
            ("winback_treatment", 1_950, 0.5),
            ("campaign_results", 24, 0.8),
        ]
        .iter()
        .map(|(n, r, s)| (n.to_string(), *r, *s))
        .collect(),
        quarantine: vec![
            ("negative amount".into(), 812),
            ("missing customer_id".into(), 410),
            ("date in the future".into(), 378),
        ],
        models: vec![
            (
                "BG/NBD".into(),
                "r=0.82 alpha=41.3 a=0.61 b=2.4, converged in 37 iterations".into(),
            ),
            (
                "Gamma-Gamma".into(),
                "p=6.1 q=3.9 v=15.2, spend-frequency correlation 0.04".into(),
            ),
        ],
    };
    ReportData {
        pipeline: "reactivation".into(),
        as_of,
        generated_at: "2024-06-30 02:00:46 UTC".into(),
        glance: Glance {
            customers: 25_000,
            revenue: 1_325_050.5,
            first_alerts: 96,
            segment_alerts: 1,
            messages_sent: 7_030,
            incremental_revenue: Some(31_870.0),
        },
        rfm,
        pareto: Some(Pareto { points, grades }),
        clv_hist: Some(Histogram {
            label: "predicted CLV".into(),
            bins: clv_bins,
        }),
        p_alive_hist: Some(Histogram {
            label: "P(alive)".into(),
            bins: p_bins,
        }),
        lapse_history,
        lapse_by_segment,
        segment_alerts,
        backtest: Some(backtest),
        campaigns,
        churn: Some(super::example_churn::churn(as_of)),
        reasons: Some(super::example_churn::reasons(as_of)),
        stay: Some(super::example_churn::stay(as_of)),
        vip: Some(super::data::Vip {
            funnels: vec![campaign("vip_recognition", 470, 0.0, 0.0, 0.0, 0.002)],
            ..super::example_churn::vip(as_of)
        }),
        at_risk: Some(super::data::AtRisk {
            rows: vec![
                super::data::AtRiskRow {
                    grade: "A".into(),
                    customers: 41,
                    complaint: 12,
                    slowing: 25,
                    p_alive_drop: 4,
                    several: 6,
                },
                super::data::AtRiskRow {
                    grade: "B".into(),
                    customers: 88,
                    complaint: 19,
                    slowing: 60,
                    p_alive_drop: 9,
                    several: 11,
                },
            ],
        }),
        calls: Some(super::data::Calls {
            rows: vec![super::data::CallRow {
                campaign: "winback_amends".into(),
                listed: 60,
                tonight: 10,
                recorded: 44,
                reached: 29,
                came_back: 17,
                revenue: 2_310.4,
            }],
        }),
        manifest: Some(manifest),
        empty: BTreeMap::new(),
    }
}

/// A plausible campaign from its audience, the two rates, revenue per return and cost per
/// message; the interval is the normal approximation of a difference of proportions. Its
/// funnel covers three finished contact nights; two more are in progress, and tonight's plan
/// is a tenth of the audience.
pub fn campaign(
    name: &str,
    audience: u64,
    rate: f64,
    holdout_rate: f64,
    revenue_each: f64,
    cost_each: f64,
) -> CampaignResult {
    let suppressed = audience / 20 + audience / 40;
    let deferred = audience / 50;
    let kept = audience - suppressed - deferred;
    let holdout = kept / 10;
    let sent = kept - holdout;
    let delivered = sent * 97 / 100;
    let reactivated = (sent as f64 * rate).round() as u64;
    let holdout_reactivated = (holdout as f64 * holdout_rate).round() as u64;
    let uplift = rate - holdout_rate;
    let se = (rate * (1.0 - rate) / sent.max(1) as f64
        + holdout_rate * (1.0 - holdout_rate) / holdout.max(1) as f64)
        .sqrt();
    let revenue = reactivated as f64 * revenue_each * 4.0;
    let incremental_revenue = uplift * sent as f64 * revenue_each * 4.0;
    let cost = sent as f64 * cost_each;
    let as_of = date(2024, 6, 30);
    let funnel = Funnel {
        picked: audience,
        held_out: holdout,
        suppressed,
        sent,
        delivered,
        bounced: delivered / 50,
        window_complete: sent + holdout,
        came_back: reactivated + reactivated / 20,
        holdout_came_back: holdout_reactivated + holdout_reactivated / 10,
    };
    let running = |days: u64| FunnelNight {
        night: as_of - Days::new(days),
        funnel: Funnel {
            picked: audience / 10,
            held_out: holdout / 10,
            suppressed: suppressed / 10,
            sent: sent / 10,
            delivered: delivered / 10,
            bounced: 0,
            window_complete: 0,
            came_back: reactivated / 30,
            holdout_came_back: holdout_reactivated / 40,
        },
    };
    CampaignResult {
        campaign: name.into(),
        funnel,
        nights: Some((as_of - Days::new(45), as_of - Days::new(31))),
        in_progress_nights: vec![running(14), running(7)],
        tonight: Some(Tonight {
            picked: audience / 10,
            held_out: holdout / 10,
            sent: sent / 10,
            delivered: delivered / 10,
            not_sent: vec![
                ("no consent".to_string(), audience / 200),
                ("unsubscribed".to_string(), audience / 400),
                ("frequency cap".to_string(), audience / 500),
            ],
        }),
        reactivated,
        holdout_reactivated,
        rate,
        holdout_rate,
        uplift,
        ci_low: Some(uplift - 1.96 * se),
        ci_high: Some(uplift + 1.96 * se),
        note: None,
        holdout_needed: None,
        in_progress: sent / 10,
        itt_uplift: Some(uplift * 0.8),
        itt_ci: Some((uplift * 0.8 - 2.2 * se, uplift * 0.8 + 2.2 * se)),
        revenue,
        incremental_revenue,
        cost,
        roi: (cost > 0.0).then(|| (incremental_revenue - cost) / cost),
    }
}
