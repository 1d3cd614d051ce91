//! The "do the won-back stay?" section: customers won back by a message against those who
//! came back by themselves from the holdout (`reactivated_customers`): what they spent in
//! the 90 and 180 days after the return, how often they bought since, and how many lapsed
//! again.

use chrono::Days;

use crate::report::charts::{self, GREEN, GREY};
use crate::report::data::{ReportData, StayRow};
use crate::report::html::{self, int, money, n, pct, t};
use crate::report::sections::fig;

fn label(kind: &str) -> &str {
    match kind {
        "won_back" => "won back by a message",
        "natural" => "came back by themselves (holdout)",
        other => other,
    }
}

/// A mean over the customers whose window has elapsed, with how many they are.
fn mean(v: Option<f64>, complete: u64) -> String {
    match v {
        Some(v) if complete > 0 => format!("{} ({} customers)", money(v), int(complete)),
        _ => "not known yet".into(),
    }
}

/// Why the section has nothing to show although `reactivated_customers` was read, if it
/// has not.
pub fn nothing_to_show(d: &ReportData) -> Option<String> {
    d.stay.as_ref()?.rows.is_empty().then(|| {
        format!(
            "No win-back yet as of {}: no customer has bought within the attribution window \
             after a message or a holdout decision.",
            d.as_of
        )
    })
}

pub fn stay(d: &ReportData) -> Option<String> {
    let st = d.stay.as_ref()?;
    if let Some(why) = nothing_to_show(d) {
        return Some(html::empty(&why));
    }
    let first = st.rows.iter().filter_map(|r| r.first_contact).min();
    let last = st.rows.iter().filter_map(|r| r.last_contact).max();
    let mut s = html::note(&match (first, last) {
        (Some(a), Some(b)) => format!(
            "Covers the customers who came back after a contact night from {a} to {b}, \
             followed up to {}.",
            d.as_of
        ),
        _ => format!("Covers the returns up to {}.", d.as_of),
    });
    let bars: Vec<_> = st
        .rows
        .iter()
        .map(|r| charts::Bar {
            label: label(&r.kind).to_string(),
            value: r.relapse_rate.unwrap_or(0.0),
            color: if r.kind == "won_back" { GREEN } else { GREY },
        })
        .collect();
    s.push_str(&fig(
        "Share who lapsed again after coming back",
        charts::hbars(
            "Share of the returned customers who lapsed again, won back against natural returns",
            charts::WIDTH,
            &bars,
            &pct,
        ),
    ));
    s.push_str(&html::note(&stay_note(&st.rows)));
    let rows: Vec<_> = st
        .rows
        .iter()
        .map(|r| {
            (
                false,
                vec![
                    t(label(&r.kind)),
                    n(int(r.customers)),
                    n(mean(r.revenue_90, r.complete_90)),
                    n(mean(r.revenue_180, r.complete_180)),
                    n(html::num(r.purchases_since, 1)),
                    n(format!(
                        "{} ({})",
                        int(r.relapsed),
                        r.relapse_rate.map(pct).unwrap_or_else(|| "–".into())
                    )),
                ],
            )
        })
        .collect();
    s.push_str(&html::table(
        "After the return: mean revenue per customer (over those whose window has elapsed), \
         purchase days since, lapsed again",
        &[
            "customers who",
            "came back",
            "revenue in 90 days",
            "revenue in 180 days",
            "purchase days since",
            "lapsed again",
        ],
        &rows,
    ));
    Some(s)
}

/// Won back against natural returns, in words, and when the revenue figures will be known.
fn stay_note(rows: &[StayRow]) -> String {
    let mut msg = String::from(
        "A win-back is a lapse that ended with a purchase within the attribution window after \
         a message; a natural return is the same for a holdout customer who got none. Revenue \
         counts the return day and the 90 (180) days that follow it, once they have passed. \
         Lapsed again: silent for longer than their own rhythm allows since the return. ",
    );
    let won = rows.iter().find(|r| r.kind == "won_back");
    let natural = rows.iter().find(|r| r.kind == "natural");
    match (won, natural) {
        (Some(w), Some(n)) => {
            if let (Some(a), Some(b)) = (w.revenue_90, n.revenue_90)
                && w.complete_90 > 0
                && n.complete_90 > 0
            {
                msg.push_str(&format!(
                    "In their first 90 days back, won-back customers spent {} each against {} \
                     for natural returns. ",
                    money(a),
                    money(b)
                ));
            }
            if let (Some(a), Some(b)) = (w.relapse_rate, n.relapse_rate) {
                msg.push_str(&format!(
                    "{} of the won-back lapsed again, against {} of the natural returns{}",
                    pct(a),
                    pct(b),
                    if a > b + 0.05 {
                        ": a bought return that does not last; follow up after the first \
                         purchase, not only before it. "
                    } else {
                        ". "
                    }
                ));
            }
        }
        (Some(_), None) => msg.push_str(
            "No holdout customer has come back by themselves yet, so there is nothing to \
             compare with. ",
        ),
        _ => {}
    }
    if let Some(first) = rows
        .iter()
        .filter(|r| r.complete_90 == 0)
        .filter_map(|r| r.first_return)
        .min()
    {
        msg.push_str(&format!(
            "90-day revenue is not known yet: the earliest return was on {first}, its 90 days \
             end on {}.",
            first + Days::new(90)
        ));
    }
    msg
}
