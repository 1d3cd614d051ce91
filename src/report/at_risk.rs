//! The "before they leave" section: CPR before the silence. Valuable customers (grade A or
//! B) who have not lapsed yet but show a warning (a recent complaint, a slowing rhythm, a
//! drop of their P(alive)), by grade and warning (`at_risk_customers`).

use crate::report::charts::{self, BLUE, ORANGE, RED};
use crate::report::data::{AtRisk, ReportData};
use crate::report::html::{self, int, n, t};
use crate::report::sections::fig;

pub fn at_risk(d: &ReportData) -> Option<String> {
    let a = d.at_risk.as_ref()?;
    let sum = |f: fn(&crate::report::data::AtRiskRow) -> u64| a.rows.iter().map(f).sum::<u64>();
    let total = sum(|r| r.customers);
    if total == 0 {
        return Some(html::empty(&format!(
            "No valuable customer shows a warning as of {}: no recent complaint or refund, no \
             slowing rhythm, no drop of P(alive) among grades A and B.",
            d.as_of
        )));
    }
    let mut s = chart(a);
    s.push_str(&html::note(&format!(
        "{} customers of grades A and B have not lapsed yet but show a warning as of {}: {} \
         a recent complaint, ticket, bad review or refund (their relationship is damaged: \
         stage value_damaged), {} a slowing rhythm (their last two gaps between purchases \
         longer than their own usual one), {} a drop of their chance of still being active \
         since the previous run. Each is counted under the first warning in that order; {} \
         show more than one. The campaign winback_at_risk asks them what is wrong before \
         they go quiet, ahead of every win-back campaign (its funnel is under \"Did win-back \
         work\").",
        int(total),
        d.as_of,
        int(sum(|r| r.complaint)),
        int(sum(|r| r.slowing)),
        int(sum(|r| r.p_alive_drop)),
        int(sum(|r| r.several)),
    )));
    s.push_str(&table(a));
    Some(s)
}

fn chart(a: &AtRisk) -> String {
    let cats: Vec<String> = a
        .rows
        .iter()
        .map(|r| format!("grade {}", r.grade))
        .collect();
    let series = |f: fn(&crate::report::data::AtRiskRow) -> u64| -> Vec<f64> {
        a.rows.iter().map(|r| f(r) as f64).collect()
    };
    fig(
        "Valuable customers at risk, by grade and warning",
        charts::grouped(
            "Customers of grades A and B not yet lapsed, by their first warning",
            &cats,
            &[
                ("complaint", series(|r| r.complaint), RED),
                ("slowing rhythm", series(|r| r.slowing), ORANGE),
                ("P(alive) drop", series(|r| r.p_alive_drop), BLUE),
            ],
        ),
    )
}

fn table(a: &AtRisk) -> String {
    let rows: Vec<_> = a
        .rows
        .iter()
        .map(|r| {
            (
                false,
                vec![
                    t(r.grade.clone()),
                    n(int(r.customers)),
                    n(int(r.complaint)),
                    n(int(r.slowing)),
                    n(int(r.p_alive_drop)),
                    n(int(r.several)),
                ],
            )
        })
        .collect();
    html::table(
        "Customers at risk by grade and first warning",
        &[
            "grade",
            "at risk",
            "complaint",
            "slowing rhythm",
            "P(alive) drop",
            "more than one warning",
        ],
        &rows,
    )
}
