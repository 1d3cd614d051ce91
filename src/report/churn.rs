//! The "how churn is going" and "why they left" sections: the weekly churn rate and value
//! at risk over the last 26 weeks with a table per grade (`churn_kpis`), and tonight's
//! lapsed customers by grade and reason with the size of each cell of the treatment matrix
//! (`winback_treatment`).

use std::collections::{BTreeMap, BTreeSet};

use crate::report::charts::{self, BLUE, GREEN, GREY, ORANGE, RED, SKY};
use crate::report::curves;
use crate::report::data::{Churn, ChurnWeek, Reasons, ReportData};
use crate::report::html::{self, esc, int, money, n, pct, t};
use crate::report::sections::fig;

/// The newest weeks the weekly table lists.
const TABLE_WEEKS: usize = 8;
/// Most reasons the chart of reasons by grade draws (the others are summed as "other").
const MAX_REASONS: usize = 6;

fn rate(r: Option<f64>) -> String {
    r.map(pct).unwrap_or_else(|| "–".into())
}

pub fn churn(d: &ReportData) -> Option<String> {
    let c = d.churn.as_ref()?;
    let (first, last) = (c.weeks.first()?, c.weeks.last()?);
    let mut s = html::note(&format!(
        "Covers the {} weeks from {} to {} (a week ends on a run date; the newest ends on \
         {}).",
        c.weeks.len(),
        first.week_start,
        last.week_end,
        d.as_of
    ));
    if c.weeks.iter().all(|w| w.active == 0 && w.new_lapses == 0) {
        s.push_str(&html::empty(
            "No customer with a buying rhythm was active in these weeks, so there is no churn \
             to measure yet.",
        ));
        return Some(s);
    }
    s.push_str(&trend_charts(c));
    s.push_str(&html::note(&trend_note(c, last)));
    s.push_str(&grade_table(c));
    s.push_str(&weeks_table(c));
    Some(s)
}

fn trend_charts(c: &Churn) -> String {
    let dates: Vec<_> = c.weeks.iter().map(|w| w.week_end).collect();
    let rate_series = [(
        "churn rate, % of the customers active at the week's start",
        c.weeks
            .iter()
            .map(|w| w.churn_rate.unwrap_or(0.0) * 100.0)
            .collect(),
        RED,
    )];
    let mut s = fig(
        "Churn rate per week (%)",
        curves::lines(
            "Weekly churn rate over the last 26 weeks, in percent",
            &dates,
            &rate_series,
            &[],
        ),
    );
    let mut value = vec![(
        "revenue of the newly lapsed (last 12 months)",
        c.weeks.iter().map(|w| w.revenue_at_risk).collect(),
        ORANGE,
    )];
    if c.weeks.iter().any(|w| w.clv_at_risk.is_some()) {
        value.push((
            "their predicted CLV",
            c.weeks
                .iter()
                .map(|w| w.clv_at_risk.unwrap_or(0.0))
                .collect(),
            BLUE,
        ));
    }
    s.push_str(&fig(
        "Value at risk per week",
        curves::lines(
            "Revenue and predicted lifetime value of the customers who lapsed each week",
            &dates,
            &value,
            &[],
        ),
    ));
    s
}

/// The latest week against the 26-week mean, in words.
fn trend_note(c: &Churn, last: &ChurnWeek) -> String {
    let lapses: u64 = c.weeks.iter().map(|w| w.new_lapses).sum();
    let active: u64 = c.weeks.iter().map(|w| w.active).sum();
    let won: u64 = c.weeks.iter().map(|w| w.won_back).sum();
    let mean = (active > 0).then(|| lapses as f64 / active as f64);
    let clv = last
        .clv_at_risk
        .map(|v| format!(" and a predicted lifetime value of {}", money(v)))
        .unwrap_or_default();
    format!(
        "A customer churns in a week when their silence first grows past 1.5 times their own \
         usual gap between purchases; the churn rate is those customers divided by the \
         customers still active when the week began. In the week to {}, {} of {} active \
         customers lapsed ({}; the 26-week mean is {}). They had spent {} in their last 12 \
         months{}. Over the 26 weeks {} customers lapsed and {} were won back by a message. \
         A rising line means more customers are slipping away than usual: look at the grades \
         below and at why they left.",
        last.week_end,
        int(last.new_lapses),
        int(last.active),
        rate(last.churn_rate),
        rate(mean),
        money(last.revenue_at_risk),
        esc(&clv),
        int(lapses),
        int(won)
    )
}

/// Each value grade over the 26 weeks (highlighted: churning faster than everyone).
fn grade_table(c: &Churn) -> String {
    let lapses: u64 = c.weeks.iter().map(|w| w.new_lapses).sum();
    let active: u64 = c.weeks.iter().map(|w| w.active).sum();
    let mean = (active > 0).then(|| lapses as f64 / active as f64);
    let rows: Vec<_> = c
        .grades
        .iter()
        .map(|g| {
            let faster = matches!((g.churn_rate, mean), (Some(r), Some(m)) if r > m);
            (
                faster,
                vec![
                    t(g.grade.clone()),
                    n(int(g.active)),
                    n(int(g.new_lapses)),
                    n(rate(g.churn_rate)),
                    n(money(g.revenue_at_risk)),
                    n(g.clv_at_risk.map(money).unwrap_or_else(|| "–".into())),
                    n(int(g.won_back)),
                ],
            )
        })
        .collect();
    html::table(
        "By value grade over the 26 weeks (highlighted: churning faster than the average)",
        &[
            "grade",
            "active now",
            "lapsed",
            "churn per week",
            "revenue at risk",
            "CLV at risk",
            "won back",
        ],
        &rows,
    )
}

/// The newest weeks for everyone, newest first.
fn weeks_table(c: &Churn) -> String {
    let rows: Vec<_> = c
        .weeks
        .iter()
        .rev()
        .take(TABLE_WEEKS)
        .map(|w| {
            let natural = match (w.holdout, w.complete) {
                (0, _) => "no holdout".to_string(),
                (h, done) => format!(
                    "{} of {}{}",
                    int(w.natural_returns),
                    int(h),
                    if done { "" } else { " (in progress)" }
                ),
            };
            (
                false,
                vec![
                    t(format!("{} to {}", w.week_start, w.week_end)),
                    n(int(w.active)),
                    n(int(w.new_lapses)),
                    n(rate(w.churn_rate)),
                    n(money(w.revenue_at_risk)),
                    n(w.clv_at_risk.map(money).unwrap_or_else(|| "–".into())),
                    n(int(w.won_back)),
                    n(natural),
                ],
            )
        })
        .collect();
    html::table(
        "The newest weeks, everyone (natural returns: holdout customers of the week who came \
         back by themselves within the attribution window)",
        &[
            "week",
            "active",
            "lapsed",
            "churn rate",
            "revenue at risk",
            "CLV at risk",
            "won back",
            "natural returns",
        ],
        &rows,
    )
}

pub fn reasons(d: &ReportData) -> Option<String> {
    let r = d.reasons.as_ref()?;
    let (Some(first), Some(last)) = (r.first_alert, r.last_alert) else {
        return Some(html::empty(&format!(
            "No customer is lapsed as of {}: there is nothing to explain tonight.",
            d.as_of
        )));
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
        "A lapse is put down to the company when a complaint, service ticket, bad review, \
         refund request or refund came shortly before it (the newest is shown); otherwise \
         the reason is presumed the customer's own (no_company_signal: needs changed, moved, \
         a competitor). Value x reason decides the treatment: high value and our fault, make \
         amends; high value and their reason, win back; low value and our fault, \
         opportunistic; low value and their reason, let go. Unprofitable customers, and \
         those whose second lifetime value does not cover the cost of winning them back, \
         are let go whatever the cell.",
    ));
    s.push_str(&reasons_table(r));
    s.push_str(&matrix_table(r));
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
                why != "no_company_signal" && (g == "A" || g == "B"),
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
