//! The outcome sections: model backtest, campaign results and the run manifest.
//!
//! Kept apart from `sections.rs` because these answer "can we trust it and did it pay",
//! while the others describe the customers.

use std::fmt::Write;

use crate::report::charts::{self, BLUE, ORANGE, SKY};
use crate::report::curves;
use crate::report::data::{CampaignResult, ManifestView, ReportData};
use crate::report::funnel;
use crate::report::html::{self, esc, int, money, n, pct, pp, t};
use crate::report::sections::fig;

pub fn backtest(d: &ReportData) -> Option<String> {
    let rows = d.backtest.as_ref().filter(|r| !r.is_empty())?;
    let cats: Vec<String> = rows.iter().map(|r| r.frequency.clone()).collect();
    let series = [
        (
            "predicted",
            rows.iter().map(|r| r.predicted).collect(),
            BLUE,
        ),
        ("actual", rows.iter().map(|r| r.actual).collect(), ORANGE),
    ];
    let mut s = charts::grouped(
        "Predicted and actual repeat purchases by purchases in the calibration period",
        &cats,
        &series,
    );
    let pred: f64 = rows.iter().map(|r| r.predicted * r.customers as f64).sum();
    let act: f64 = rows.iter().map(|r| r.actual * r.customers as f64).sum();
    let off = if act > 0.0 { (pred - act) / act } else { 0.0 };
    s.push_str(&html::note(&format!(
        "The model was fitted on an earlier period and asked to predict the purchases that \
         followed; the bars compare its forecast with what customers really did, grouped \
         by how often they had bought before. Overall the forecast is {} {} than reality. \
         When the pairs of bars are close, the CLV and P(alive) figures above can be used \
         for budgeting; a large gap means treat them as rough rankings only.",
        pct(off.abs()),
        if off >= 0.0 { "higher" } else { "lower" }
    )));
    let table: Vec<_> = rows
        .iter()
        .map(|r| {
            let err = if r.actual != 0.0 {
                pct((r.predicted - r.actual) / r.actual)
            } else {
                "–".into()
            };
            (
                false,
                vec![
                    t(r.frequency.clone()),
                    n(int(r.customers)),
                    n(html::num(r.predicted, 2)),
                    n(html::num(r.actual, 2)),
                    n(err),
                ],
            )
        })
        .collect();
    s.push_str(&html::table(
        "Average repeat purchases per customer in the test period",
        &[
            "purchases before",
            "customers",
            "predicted",
            "actual",
            "forecast error",
        ],
        &table,
    ));
    Some(s)
}

/// What to do, from the interval; no verdict when there are too few customers or
/// comebacks to tell, or no attribution window has finished yet.
fn verdict(c: &CampaignResult) -> String {
    let (Some(low), Some(high)) = (c.ci_low, c.ci_high) else {
        if c.note.as_deref() == Some("in progress") {
            return "In progress: no customer's attribution window has finished yet, so there \
                    is nothing to judge."
                .into();
        }
        let needed = match c.holdout_needed {
            Some(n) => format!(
                " To tell an uplift this size from luck, the holdout needs about {} customers.",
                int(n)
            ),
            None => String::new(),
        };
        return format!(
            "Too few to tell: the groups are too small (or too few came back) for any \
             verdict. Keep the holdout and let it grow before deciding.{needed}"
        );
    };
    if low > 0.0 {
        "It works: more people came back than would have anyway. Keep it running.".into()
    } else if high < 0.0 {
        "It does harm: fewer people came back than in the holdout. Stop it or change the message."
            .into()
    } else {
        "Not clear yet: the interval includes zero. Keep the holdout and let it run longer \
         before deciding."
            .into()
    }
}

/// The interval in points, or why there is none.
fn interval(c: &CampaignResult) -> String {
    match (c.ci_low, c.ci_high) {
        (Some(l), Some(h)) => format!("{} to {}", html::num(l * 100.0, 1), html::num(h * 100.0, 1)),
        _ => c.note.clone().unwrap_or_else(|| "too few to tell".into()),
    }
}

pub fn campaigns(d: &ReportData) -> Option<String> {
    if d.campaigns.is_empty() {
        return None;
    }
    let rows: Vec<_> = d
        .campaigns
        .iter()
        .filter_map(|c| Some((c.campaign.clone(), c.uplift, c.ci_low?, c.ci_high?)))
        .collect();
    let mut s = String::new();
    if !rows.is_empty() {
        s.push_str(&fig(
            "Uplift against the holdout, with its 95% interval",
            curves::uplift(
                "Uplift of each campaign against its holdout with 95% interval",
                &rows,
            ),
        ));
    }
    s.push_str(&html::note(
        "Each campaign keeps a random holdout group that gets no message, and the same rules \
         (consent, address, unsubscribes, frequency cap) are checked on it: only customers \
         who would have been messaged are compared, in both groups. The dot is how many \
         more percentage points of the messaged customers came back than of the holdout; the \
         line is the 95% interval. Green: clearly better than doing nothing. Grey: the line \
         crosses zero, so it could be luck. Red: clearly worse. A campaign with too few \
         customers or comebacks to tell has no line, and customers whose 30-day window is \
         still running are counted once it ends (in progress).",
    ));
    s.push_str(&html::note(&esc(&coverage(d))));
    s.push_str(&results_table(d));
    for c in &d.campaigns {
        let _ = writeln!(s, "<h3>{}</h3>", esc(&c.campaign));
        s.push_str(&funnel::chart(c, d.as_of));
        s.push_str(&campaign_note(c, d.as_of));
        s.push_str(&funnel::running_table(c));
    }
    Some(s)
}

/// Which contact nights the section's funnels and results cover, and what they leave out.
fn coverage(d: &ReportData) -> String {
    let nights = match funnel::covered(d) {
        Some((first, last)) => format!(
            "The funnels and results below cover the {}: the nights whose attribution \
             windows have all ended, so every count is final and a campaign's funnel and its \
             results are the same customers.",
            funnel::nights_text(first, last)
        ),
        None => "No contact night's attribution window has ended yet: there is no final \
                 funnel or result."
            .to_string(),
    };
    format!(
        "{nights} The nights still in their window are listed under each campaign, and \
         tonight's decisions ({}) apart: their windows start tonight.",
        d.as_of
    )
}

/// The results of every campaign, one row each (highlighted: uplift clearly above zero).
fn results_table(d: &ReportData) -> String {
    let table: Vec<_> = d
        .campaigns
        .iter()
        .map(|c| {
            (
                c.ci_low.is_some_and(|l| l > 0.0),
                vec![
                    t(c.campaign.clone()),
                    t(c.nights
                        .map(|(a, b)| {
                            if a == b {
                                a.to_string()
                            } else {
                                format!("{a} to {b}")
                            }
                        })
                        .unwrap_or_else(|| "none ended yet".into())),
                    n(int(c.funnel.sent)),
                    n(format!("{} ({})", int(c.reactivated), pct(c.rate))),
                    n(format!(
                        "{} ({})",
                        int(c.holdout_reactivated),
                        pct(c.holdout_rate)
                    )),
                    n(format!("{} ({})", pp(c.uplift), interval(c))),
                    n(money(c.revenue)),
                    n(money(c.incremental_revenue)),
                    n(money(c.cost)),
                    n(c.roi.map(pct).unwrap_or_else(|| "–".into())),
                ],
            )
        })
        .collect();
    html::table(
        "Results per campaign (highlighted: uplift clearly above zero)",
        &[
            "campaign",
            "contact nights",
            "sent",
            "came back (last touch)",
            "holdout came back (like with like)",
            "uplift (95% interval)",
            "revenue",
            "extra revenue",
            "cost",
            "ROI",
        ],
        &table,
    )
}

/// One campaign's results in words: its funnel (the finished contact nights), who came
/// back against the holdout on those nights, whether that is clearly better than doing
/// nothing, what it earned for what it cost, the nights still running and tonight apart.
fn campaign_note(c: &CampaignResult, as_of: chrono::NaiveDate) -> String {
    let roi = match c.roi {
        Some(r) => format!(
            "For every 1.00 spent it brought back {} of extra revenue (ROI {}).",
            html::num(1.0 + r, 2),
            pct(r)
        ),
        None => "It cost nothing to send, so ROI is not defined.".into(),
    };
    let itt = match (c.itt_uplift, c.itt_ci) {
        (Some(u), Some((l, h))) => format!(
            " Counting everyone assigned, messaged or not (intention to treat): {} ({} to {}).",
            pp(u),
            pp(l),
            pp(h)
        ),
        _ => String::new(),
    };
    let running = match (c.in_progress_nights.first(), c.in_progress_nights.last()) {
        (Some(first), Some(last)) => format!(
            " The {} are still in their window: counted once it ends (below, so far).",
            funnel::nights_text(first.night, last.night)
        ),
        _ if c.in_progress > 0 => format!(
            " {} more customers are in progress: their window has not ended.",
            int(c.in_progress)
        ),
        _ => String::new(),
    };
    html::note(&format!(
        "{}Like with like (only the customers the rules would have messaged, in both groups, \
         a comeback credited to the latest message before it): {} came back ({}), against {} \
         of the holdout: {} (95% interval {}). {}{}{} Incremental revenue {}, cost {}. {}{}",
        esc(&funnel::funnel_sentence(c)),
        int(c.reactivated),
        pct(c.rate),
        pct(c.holdout_rate),
        pp(c.uplift),
        esc(&interval(c)),
        esc(&verdict(c)),
        esc(&itt),
        esc(&running),
        money(c.incremental_revenue),
        money(c.cost),
        esc(&roi),
        esc(&funnel::tonight_sentence(c, as_of))
    ))
}

pub fn manifest(d: &ReportData) -> Option<String> {
    let m = d.manifest.as_ref()?;
    let mut s = html::table(
        "The run",
        &["run", "status", "duration"],
        &[(
            m.status != "succeeded",
            vec![
                t(m.run_id.clone()),
                t(m.status.clone()),
                n(format!("{} s", html::num(m.seconds, 1))),
            ],
        )],
    );
    if !m.stages.is_empty() {
        s.push_str(&stage_seconds(m));
    }
    let quarantined: u64 = m.quarantine.iter().map(|q| q.1).sum();
    s.push_str(&html::note(&format!(
        "This is for whoever runs the pipeline. {} input rows broke a rule and were set \
         aside in the quarantine table instead of being used; if that number grows, fix \
         the data at its source.",
        int(quarantined)
    )));
    s.push_str(&run_tables(m));
    if !m.budget.is_empty() {
        s.push_str(&budget_table(m));
    }
    Some(s)
}

/// Tonight's spend per campaign against its budget and its share of `[budget]`.
fn budget_table(m: &ManifestView) -> String {
    let rows: Vec<_> = m
        .budget
        .iter()
        .map(|(campaign, share, limit, spent, moved)| {
            (
                *spent >= *limit - 1e-9 && *limit > 0.0,
                vec![
                    t(campaign.clone()),
                    n(share.map_or("-".into(), |s| format!("{}%", html::num(s * 100.0, 0)))),
                    n(html::num(*limit, 2)),
                    n(html::num(*spent, 2)),
                    n(html::num(*moved, 2)),
                ],
            )
        })
        .collect();
    html::table(
        "Tonight's budget: spend against each campaign's share (highlighted: the budget ran out)",
        &["campaign", "share", "limit", "spent", "reallocated in"],
        &rows,
    )
}

/// A bar chart of the seconds each stage of the run took.
fn stage_seconds(m: &ManifestView) -> String {
    let bars: Vec<_> = m
        .stages
        .iter()
        .map(|(name, _, secs)| charts::Bar {
            label: name.clone(),
            value: *secs,
            color: SKY,
        })
        .collect();
    fig(
        "Seconds per stage",
        charts::hbars(
            "Seconds spent in each stage of the run",
            charts::WIDTH,
            &bars,
            &|v| format!("{} s", html::num(v, 1)),
        ),
    )
}

/// The run's inputs, stages, quarantined rows by reason and model diagnostics.
fn run_tables(m: &ManifestView) -> String {
    let mut s = String::new();
    let inputs: Vec<_> = m
        .inputs
        .iter()
        .map(|(src, loc, rows)| (false, vec![t(src.clone()), t(loc.clone()), n(int(*rows))]))
        .collect();
    s.push_str(&html::table(
        "Inputs",
        &["source", "location", "rows"],
        &inputs,
    ));
    let stages: Vec<_> = m
        .stages
        .iter()
        .map(|(name, rows, secs)| {
            (
                false,
                vec![t(name.clone()), n(int(*rows)), n(html::num(*secs, 2))],
            )
        })
        .collect();
    s.push_str(&html::table(
        "Stages",
        &["stage", "rows", "seconds"],
        &stages,
    ));
    if !m.quarantine.is_empty() {
        let q: Vec<_> = m
            .quarantine
            .iter()
            .map(|(r, k)| (false, vec![t(r.clone()), n(int(*k))]))
            .collect();
        s.push_str(&html::table(
            "Quarantined rows by reason",
            &["reason", "rows"],
            &q,
        ));
    }
    if !m.models.is_empty() {
        let q: Vec<_> = m
            .models
            .iter()
            .map(|(a, b)| (false, vec![t(a.clone()), t(b.clone())]))
            .collect();
        s.push_str(&html::table("Model diagnostics", &["model", "summary"], &q));
    }
    s
}
