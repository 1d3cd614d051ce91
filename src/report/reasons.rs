//! The "why they left" section: tonight's lapsed customers by grade and reason, and the size
//! of each cell of the value x reason treatment matrix (`winback_treatment`).

use std::collections::{BTreeMap, BTreeSet};

use crate::report::charts::{self, BLUE, GREEN, GREY, ORANGE, RED, SKY};
use crate::report::data::{Reasons, ReportData};
use crate::report::html::{self, int, n, t};
use crate::report::sections::fig;

/// Most reasons the chart of reasons by grade draws (the others are summed as "other").
const MAX_REASONS: usize = 6;

/// Why the section has nothing to show although `winback_treatment` was read, if it has not.
pub fn nothing_to_show(d: &ReportData) -> Option<String> {
    let r = d.reasons.as_ref()?;
    (r.customers == 0).then(|| {
        format!(
            "No customer is lapsed as of {}: there is nothing to explain tonight.",
            d.as_of
        )
    })
}

pub fn reasons(d: &ReportData) -> Option<String> {
    let r = d.reasons.as_ref()?;
    let (Some(first), Some(last), None) = (r.first_alert, r.last_alert, nothing_to_show(d)) else {
        return nothing_to_show(d).map(|why| html::empty(&why));
    };
    let mut s = html::note(&format!(
        "Covers the {} customers lapsed as of {}, whose alerts rang from {} to {}.",
        int(r.customers),
        d.as_of,
        first,
        last
    ));
    s.push_str(&reasons_chart(r));
    s.push_str(&html::note(
        "A reason the customer stated (a survey answer or a reply, the feedback source) comes \
         first. Otherwise a lapse is put down to the company when a complaint, service ticket, \
         bad review, refund request or refund came shortly before it (the newest is shown), \
         and else presumed the customer's own (no_company_signal). Value x reason decides the \
         treatment: high value and our fault, make amends; high value and their reason or a \
         competitor's lure, win back; low value and our fault or a competitor, \
         opportunistic (one cheap apology e-mail with a small code, on its own small \
         budget); low value and their reason, let go; an objective reason (moved away, \
         no longer needed) or bad faith, let go whatever the value. Unprofitable customers, and \
         those whose second lifetime value does not cover the cost of winning them back, \
         are let go whatever the cell.",
    ));
    s.push_str(&reasons_table(r));
    s.push_str(&matrix_table(r));
    if r.sltv_left_out + r.sltv_kept > 0 {
        s.push_str(&html::note(&format!(
            "Second lifetime value (SLTV = the learned chance of a win-back x the CLV if won \
             back - the cost of the campaign's messages and offers) left out {} customers whose \
             win-back is not expected to pay, and kept {} whose SLTV adds up to {}.",
            int(r.sltv_left_out),
            int(r.sltv_kept),
            html::num(r.sltv_expected, 2)
        )));
    }
    Some(s)
}

/// Lapsed customers per grade, one bar per reason (the most common ones).
fn reasons_chart(r: &Reasons) -> String {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, reason, k) in &r.by_grade {
        *totals.entry(reason).or_default() += k;
    }
    let mut order: Vec<(&str, u64)> = totals.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<&str> = order.iter().take(MAX_REASONS).map(|o| o.0).collect();
    let grades: Vec<String> = r
        .by_grade
        .iter()
        .map(|g| g.0.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let count = |grade: &str, reason: Option<&str>| -> f64 {
        r.by_grade
            .iter()
            .filter(|(g, why, _)| {
                g == grade && reason.map_or(!shown.contains(&why.as_str()), |x| why == x)
            })
            .map(|x| x.2 as f64)
            .sum()
    };
    let colors = [GREY, RED, ORANGE, BLUE, SKY, GREEN];
    let mut series: Vec<(&str, Vec<f64>, _)> = shown
        .iter()
        .enumerate()
        .map(|(i, why)| {
            let values = grades.iter().map(|g| count(g, Some(why))).collect();
            (*why, values, colors[i % colors.len()])
        })
        .collect();
    if order.len() > MAX_REASONS {
        let values = grades.iter().map(|g| count(g, None)).collect();
        series.push(("other", values, GREY));
    }
    let cats: Vec<String> = grades.iter().map(|g| format!("grade {g}")).collect();
    fig(
        "Lapsed customers by grade and reason",
        charts::grouped(
            "Lapsed customers per value grade, one bar per reason",
            &cats,
            &series,
        ),
    )
}

fn reasons_table(r: &Reasons) -> String {
    let rows: Vec<_> = r
        .by_grade
        .iter()
        .map(|(g, why, k)| {
            (
                r.company_reasons.contains(why) && (g == "A" || g == "B"),
                vec![t(g.clone()), t(why.clone()), n(int(*k))],
            )
        })
        .collect();
    html::table(
        "Lapse reasons by grade (highlighted: valuable customers with a sign it was our fault)",
        &["grade", "reason", "customers"],
        &rows,
    )
}

/// The cells of value x reason, with what was decided in each.
fn matrix_table(r: &Reasons) -> String {
    let owner = |o: &str| match o {
        "company" => "company's fault".to_string(),
        "customer" => "customer's reason".to_string(),
        "competitor" => "a competitor".to_string(),
        "objective" => "objective reason".to_string(),
        "abusive" => "bad faith".to_string(),
        other => other.to_string(),
    };
    let rows: Vec<_> = r
        .matrix
        .iter()
        .map(|(value, who, treatment, k)| {
            (
                false,
                vec![
                    t(format!("{value} value")),
                    t(owner(who)),
                    t(treatment.clone()),
                    n(int(*k)),
                ],
            )
        })
        .collect();
    html::table(
        "The treatment matrix: customers in each cell and what was decided for them",
        &["value", "reason", "treatment", "customers"],
        &rows,
    )
}
