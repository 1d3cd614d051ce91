//! The churn sections' part of the example `ReportData` (`example_data.rs`): 26 weeks of
//! churn, tonight's lapse reasons and the win-backs, shaped like the demo's output.

use chrono::{Days, NaiveDate};

use super::data::{Churn, ChurnGrade, ChurnWeek, Reasons, Stay, StayRow, Vip, VipRow};

/// 26 weeks ending on `as_of`, churn drifting up, the holdout windows of the newest five
/// weeks still open.
pub fn churn(as_of: NaiveDate) -> Churn {
    let weeks = (0..26u64)
        .rev()
        .map(|k| {
            let week_end = as_of - Days::new(7 * k);
            let active = 12_000 + 40 * (26 - k);
            let new_lapses = 300 + 6 * (26 - k);
            ChurnWeek {
                week_start: week_end - Days::new(6),
                week_end,
                active,
                new_lapses,
                churn_rate: Some(new_lapses as f64 / active as f64),
                revenue_at_risk: new_lapses as f64 * 61.5,
                clv_at_risk: Some(new_lapses as f64 * 48.25),
                won_back: 20 + k % 5,
                holdout: 35,
                natural_returns: 4 + k % 3,
                complete: k >= 5,
            }
        })
        .collect();
    let grades = [
        ("A", 1_400, 0.041),
        ("B", 2_700, 0.029),
        ("C", 4_100, 0.024),
    ]
    .into_iter()
    .map(|(grade, active, rate)| ChurnGrade {
        grade: grade.into(),
        active,
        new_lapses: (active as f64 * rate * 26.0) as u64,
        churn_rate: Some(rate),
        revenue_at_risk: active as f64 * rate * 26.0 * 90.0,
        clv_at_risk: Some(active as f64 * rate * 26.0 * 70.0),
        won_back: active / 20,
    })
    .collect();
    Churn { weeks, grades }
}

pub fn reasons(as_of: NaiveDate) -> Reasons {
    let mut by_grade = Vec::new();
    for (g, scale) in [("A", 1), ("B", 2), ("C", 4), ("D", 6)] {
        for (why, k) in [
            ("complaint", 12),
            ("no_company_signal", 90),
            ("refund", 9),
            ("service_ticket", 7),
        ] {
            by_grade.push((g.to_string(), why.to_string(), k * scale));
        }
    }
    let cell = |v: &str, o: &str, t: &str, k| (v.to_string(), o.to_string(), t.to_string(), k);
    Reasons {
        first_alert: Some(as_of - Days::new(400)),
        last_alert: Some(as_of),
        customers: by_grade.iter().map(|g| g.2).sum(),
        by_grade,
        company_reasons: ["complaint", "refund", "service_ticket"]
            .map(String::from)
            .to_vec(),
        matrix: vec![
            cell("high", "company", "make_amends", 80),
            cell("high", "company", "let_go", 4),
            cell("high", "customer", "win_back", 270),
            cell("high", "customer", "let_go", 11),
            cell("low", "company", "opportunistic", 280),
            cell("low", "customer", "let_go", 900),
        ],
        sltv_left_out: 15,
        sltv_kept: 480,
        sltv_expected: 6_420.5,
    }
}

pub fn stay(as_of: NaiveDate) -> Stay {
    let row = |kind: &str, customers, r90, relapsed| StayRow {
        kind: kind.into(),
        customers,
        complete_90: customers * 2 / 3,
        revenue_90: Some(r90),
        complete_180: customers / 3,
        revenue_180: Some(r90 * 1.6),
        purchases_since: 1.7,
        relapsed,
        relapse_rate: Some(relapsed as f64 / customers as f64),
        first_contact: Some(as_of - Days::new(300)),
        last_contact: Some(as_of - Days::new(1)),
        first_return: Some(as_of - Days::new(298)),
    };
    Stay {
        rows: vec![
            row("won_back", 1_240, 84.2, 410),
            row("natural", 310, 91.0, 88),
        ],
    }
}

/// The VIPs and one thank-you campaign: a finished window (the recognised lapse clearly
/// less) and one still running, with tonight's funnel.
pub fn vip(as_of: NaiveDate) -> Vip {
    let row = |complete: bool, recognised: u64, lapsed: u64, holdout: u64, held: u64| {
        let (a, b) = (
            lapsed as f64 / recognised as f64,
            held as f64 / holdout as f64,
        );
        VipRow {
            campaign: "vip_recognition".into(),
            complete,
            first_turn: Some(as_of - Days::new(if complete { 400 } else { 170 })),
            last_turn: Some(as_of - Days::new(if complete { 181 } else { 1 })),
            recognised,
            holdout,
            lapsed,
            holdout_lapsed: held,
            lapse_rate: Some(a),
            holdout_lapse_rate: Some(b),
            difference: Some(a - b),
            ci: complete.then_some((a - b - 0.04, a - b + 0.035)),
            note: (!complete).then(|| "in progress".into()),
        }
    };
    Vip {
        vips: 2_480,
        grade_a: 2_100,
        top_clv: 1_900,
        in_cooldown: 2_010,
        recognised_ever: 1_650,
        rows: vec![row(true, 1_500, 180, 170, 34), row(false, 420, 21, 47, 4)],
        // The thank-you's funnel: example_data.rs adds it (it makes the campaigns).
        funnels: Vec::new(),
    }
}
