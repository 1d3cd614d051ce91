//! The "recognising the best customers" section: tonight's VIPs (grade A or the top CLV
//! share, active), the thank-you campaigns' funnels, and whether the thanked lapse less
//! than their holdout (`vip_results`).

use crate::report::charts::{self, GREEN, GREY};
use crate::report::data::{CampaignResult, ReportData, Vip, VipRow};
use crate::report::html::{self, int, n, pct, pp, t};
use crate::report::sections::fig;

/// Why the section has nothing to show although its tables were read, if it has not.
pub fn nothing_to_show(d: &ReportData) -> Option<String> {
    let v = d.vip.as_ref()?;
    (v.vips == 0 && v.rows.is_empty() && v.funnels.is_empty()).then(|| {
        format!(
            "No VIP as of {}: no active customer is in grade A or the top CLV share, and no \
             thank-you has gone out yet.",
            d.as_of
        )
    })
}

pub fn vip(d: &ReportData) -> Option<String> {
    let v = d.vip.as_ref()?;
    if let Some(why) = nothing_to_show(d) {
        return Some(html::empty(&why));
    }
    let mut s = html::note(&format!(
        "{} active customers are VIPs as of {} ({} in grade A, {} in the top CLV share, some \
         in both). {} have been thanked at least once; {} are in their cool-down after a \
         thank-you or a holdout turn, and the others get one when their turn comes. The \
         thank-you carries no discount: it recognises, it does not sell.",
        int(v.vips),
        d.as_of,
        int(v.grade_a),
        int(v.top_clv),
        int(v.recognised_ever),
        int(v.in_cooldown)
    ));
    if !v.rows.is_empty() {
        s.push_str(&rates_chart(&v.rows));
        s.push_str(&html::note(
            "Recognised customers are compared with the VIPs held out of the thank-you who \
             would have got it (the same rules checked): the share of each who lapsed (went \
             quiet for longer than their own rhythm) within the measuring window after their \
             turn. Fewer lapses among the recognised is what the thank-you is for; a \
             difference whose interval crosses zero could be luck. Turns whose window is still \
             running are shown as so far (in progress).",
        ));
        s.push_str(&results_table(&v.rows));
    }
    for c in &v.funnels {
        s.push_str(&funnel(c));
    }
    if v.rows.is_empty() && v.funnels.is_empty() {
        s.push_str(&counts_table(v));
    }
    Some(s)
}

fn window(r: &VipRow) -> String {
    if r.complete {
        "finished".into()
    } else {
        "so far (in progress)".into()
    }
}

/// The share who lapsed, recognised against holdout, per campaign and window.
fn rates_chart(rows: &[VipRow]) -> String {
    let cats: Vec<String> = rows
        .iter()
        .map(|r| format!("{}, {}", r.campaign, window(r)))
        .collect();
    let rate = |f: fn(&VipRow) -> Option<f64>| -> Vec<f64> {
        rows.iter().map(|r| 100.0 * f(r).unwrap_or(0.0)).collect()
    };
    fig(
        "Share who lapsed after their turn: recognised against holdout",
        charts::grouped(
            "Percent of recognised and held-out VIPs who lapsed after their turn",
            &cats,
            &[
                ("recognised", rate(|r| r.lapse_rate), GREEN),
                ("holdout", rate(|r| r.holdout_lapse_rate), GREY),
            ],
        ),
    )
}

fn results_table(rows: &[VipRow]) -> String {
    let table: Vec<_> = rows
        .iter()
        .map(|r| {
            let difference = match (r.difference, r.ci, &r.note) {
                (Some(x), Some((l, h)), _) => format!("{} ({} to {})", pp(x), pp(l), pp(h)),
                (Some(x), None, Some(note)) => format!("{} ({note})", pp(x)),
                (_, _, note) => note.clone().unwrap_or_else(|| "–".into()),
            };
            let rate = |k: u64, r: Option<f64>| match r {
                Some(r) => format!("{} ({})", int(k), pct(r)),
                None => int(k),
            };
            (
                r.ci.is_some_and(|(_, h)| h < 0.0),
                vec![
                    t(r.campaign.clone()),
                    t(window(r)),
                    t(match (r.first_turn, r.last_turn) {
                        (Some(a), Some(b)) => format!("{a} to {b}"),
                        _ => "–".into(),
                    }),
                    n(int(r.recognised)),
                    n(rate(r.lapsed, r.lapse_rate)),
                    n(int(r.holdout)),
                    n(rate(r.holdout_lapsed, r.holdout_lapse_rate)),
                    n(difference),
                ],
            )
        })
        .collect();
    html::table(
        "Do recognised customers lapse less? (highlighted: clearly fewer lapses than the holdout)",
        &[
            "campaign",
            "window",
            "turns",
            "recognised",
            "lapsed",
            "holdout",
            "holdout lapsed",
            "difference (95% interval)",
        ],
        &table,
    )
}

/// A recognition campaign's funnel tonight: picked, not sent, held out, sent, accepted
/// (nothing without tonight's plan).
fn funnel(c: &CampaignResult) -> String {
    let Some(t) = &c.tonight else {
        return String::new();
    };
    let bars = super::funnel::tonight_bars(
        t,
        ["VIPs whose turn came", "holdout (kept back)", "thanked"],
    );
    fig(
        &format!("Tonight's thank-yous of campaign {}", c.campaign),
        charts::hbars(
            &format!("Funnel of campaign {}", c.campaign),
            charts::WIDTH,
            &bars,
            &|v| int(v as u64),
        ),
    )
}

/// Before any thank-you: tonight's VIPs by why they are VIPs.
fn counts_table(v: &Vip) -> String {
    html::table(
        "Tonight's VIPs",
        &[
            "VIPs",
            "grade A",
            "top CLV share",
            "thanked before",
            "in cool-down",
        ],
        &[(
            false,
            vec![
                n(int(v.vips)),
                n(int(v.grade_a)),
                n(int(v.top_clv)),
                n(int(v.recognised_ever)),
                n(int(v.in_cooldown)),
            ],
        )],
    )
}
