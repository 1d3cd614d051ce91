//! The "how churn is going" section: the weekly churn rate and value at risk over the last
//! 26 weeks, a table per grade and the newest weeks (`churn_kpis`).

use crate::report::charts::{BLUE, ORANGE, RED};
use crate::report::curves;
use crate::report::data::{Churn, ChurnWeek, ReportData};
use crate::report::html::{self, esc, int, money, n, pct, t};
use crate::report::sections::fig;

/// The newest weeks the weekly table lists.
const TABLE_WEEKS: usize = 8;

fn rate(r: Option<f64>) -> String {
    r.map(pct).unwrap_or_else(|| "–".into())
}

/// Why the section has nothing to show although `churn_kpis` was read, if it has not.
pub fn nothing_to_show(d: &ReportData) -> Option<String> {
    let c = d.churn.as_ref()?;
    c.weeks
        .iter()
        .all(|w| w.active == 0 && w.new_lapses == 0)
        .then(|| {
            format!(
                "No customer with a buying rhythm was active in the {} weeks up to {}, so \
                 there is no churn to measure yet.",
                c.weeks.len(),
                d.as_of
            )
        })
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
    if let Some(why) = nothing_to_show(d) {
        s.push_str(&html::empty(&why));
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
