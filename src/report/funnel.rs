//! Each campaign's funnel in the campaigns section: the chart of the contact nights whose
//! attribution windows are complete (the same customers as its results), the nights still
//! in their window, and tonight's decisions apart, each saying which nights it covers.

use chrono::NaiveDate;

use crate::report::charts::{self, BLUE, GREEN, GREY, ORANGE, SKY};
use crate::report::data::{CampaignResult, Funnel, FunnelNight, ReportData, Tonight};
use crate::report::html::{self, int, n, pct, t};

/// "contact nights 2026-10-20 to 2026-11-03" (or "contact night 2026-10-20").
pub fn nights_text(first: NaiveDate, last: NaiveDate) -> String {
    if first == last {
        format!("contact night {first}")
    } else {
        format!("contact nights {first} to {last}")
    }
}

/// The nights covered by some campaign's finished funnel, over every campaign.
pub fn covered(d: &ReportData) -> Option<(NaiveDate, NaiveDate)> {
    let first = d
        .campaigns
        .iter()
        .filter_map(|c| c.nights)
        .map(|n| n.0)
        .min()?;
    let last = d
        .campaigns
        .iter()
        .filter_map(|c| c.nights)
        .map(|n| n.1)
        .max()?;
    Some((first, last))
}

/// The in-progress nights summed, with their first and last date.
fn running(c: &CampaignResult) -> Option<(Funnel, NaiveDate, NaiveDate)> {
    let first = c.in_progress_nights.first()?.night;
    let last = c.in_progress_nights.last()?.night;
    let mut f = Funnel::default();
    for n in &c.in_progress_nights {
        f.add(&n.funnel);
    }
    Some((f, first, last))
}

fn bars(f: &Funnel) -> Vec<charts::Bar> {
    let mut bars = Vec::new();
    for (label, v, color) in [
        ("picked", f.picked, GREY),
        ("held out (kept back)", f.held_out, GREY),
        ("not sent: the rules stopped it", f.suppressed, ORANGE),
        ("sent", f.sent, SKY),
        ("accepted by the provider", f.delivered, BLUE),
        ("bounced (provider report)", f.bounced, ORANGE),
        ("came back", f.came_back, GREEN),
        ("held out and came back", f.holdout_came_back, GREY),
    ] {
        if label.starts_with("bounced") && v == 0 {
            // Shown once a provider reported a bounce (it needs `winback listen`).
            continue;
        }
        bars.push(charts::Bar {
            label: label.into(),
            value: v as f64,
            color,
        });
    }
    bars
}

/// What a campaign's decisions tonight sum to, a bar each: the picked (labelled
/// `names[0]`), those not sent by reason, the held out (`names[1]`), the sent (`names[2]`)
/// and those the provider accepted.
pub(super) fn tonight_bars(tn: &Tonight, names: [&str; 3]) -> Vec<charts::Bar> {
    let mut bars = vec![charts::Bar {
        label: names[0].into(),
        value: tn.picked as f64,
        color: GREY,
    }];
    for (reason, k) in &tn.not_sent {
        bars.push(charts::Bar {
            label: format!("not sent: {reason}"),
            value: *k as f64,
            color: ORANGE,
        });
    }
    for (label, v, color) in [
        (names[1], tn.held_out, GREY),
        (names[2], tn.sent, SKY),
        ("accepted by the provider", tn.delivered, BLUE),
    ] {
        bars.push(charts::Bar {
            label: label.into(),
            value: v as f64,
            color,
        });
    }
    bars
}

/// The campaign's funnel chart: the finished nights; without any, the running ones; without
/// those, tonight's decisions.
pub fn chart(c: &CampaignResult, as_of: NaiveDate) -> String {
    let (title, bars) = if let Some((first, last)) = c.nights {
        (
            format!(
                "Funnel of campaign {}, {}",
                c.campaign,
                nights_text(first, last)
            ),
            bars(&c.funnel),
        )
    } else if let Some((f, first, last)) = running(c) {
        (
            format!(
                "Funnel of campaign {}, {} (in progress: windows still running)",
                c.campaign,
                nights_text(first, last)
            ),
            bars(&f),
        )
    } else {
        (
            format!("Funnel of campaign {}, tonight ({as_of})", c.campaign),
            c.tonight
                .as_ref()
                .map(|tn| tonight_bars(tn, ["picked", "held out (kept back)", "sent"]))
                .unwrap_or_default(),
        )
    };
    charts::hbars(&title, charts::WIDTH, &bars, &|v| int(v as u64))
}

/// The finished nights' funnel in words (plain text): the same customers from picked to
/// came back.
pub fn funnel_sentence(c: &CampaignResult) -> String {
    let Some((first, last)) = c.nights else {
        return "No contact night's attribution window has ended yet, so no funnel is final. "
            .into();
    };
    let f = &c.funnel;
    let share = |k: u64, of: u64| {
        if of > 0 {
            pct(k as f64 / of as f64)
        } else {
            "–".into()
        }
    };
    let bounced = if f.bounced > 0 {
        format!(", {} of them bounced", int(f.bounced))
    } else {
        String::new()
    };
    format!(
        "On the {} (every attribution window ended), {} customers were picked: {} held out, \
         {} stopped by the rules and {} sent a message ({} accepted by the provider{}). Of \
         those sent, {} came back within the window ({}), against {} of the held out ({}). ",
        nights_text(first, last),
        int(f.picked),
        int(f.held_out),
        int(f.suppressed),
        int(f.sent),
        int(f.delivered),
        bounced,
        int(f.came_back),
        share(f.came_back, f.sent),
        int(f.holdout_came_back),
        share(f.holdout_came_back, f.held_out),
    )
}

/// The nights still in their window, one row each, so far.
pub fn running_table(c: &CampaignResult) -> String {
    if c.in_progress_nights.is_empty() {
        return String::new();
    }
    let rows: Vec<_> = c
        .in_progress_nights
        .iter()
        .map(|FunnelNight { night, funnel: f }| {
            (
                false,
                vec![
                    t(night.to_string()),
                    n(int(f.picked)),
                    n(int(f.held_out)),
                    n(int(f.sent)),
                    n(int(f.came_back)),
                    n(int(f.holdout_came_back)),
                ],
            )
        })
        .collect();
    html::table(
        &format!(
            "Campaign {}: contact nights still in their attribution window (counted once it ends)",
            c.campaign
        ),
        &[
            "contact night",
            "picked",
            "held out",
            "sent",
            "came back so far",
            "held out, came back so far",
        ],
        &rows,
    )
}

/// Tonight's decisions, labelled as such: their windows start tonight (plain text).
pub fn tonight_sentence(c: &CampaignResult, as_of: NaiveDate) -> String {
    let Some(tn) = &c.tonight else {
        return String::new();
    };
    let not_sent: Vec<String> = tn
        .not_sent
        .iter()
        .map(|(r, k)| format!("{r} {}", int(*k)))
        .collect();
    let not_sent = if not_sent.is_empty() {
        String::new()
    } else {
        format!("; not sent: {}", not_sent.join(", "))
    };
    format!(
        " Tonight ({as_of}), not in the figures above: {} picked, {} held out, {} sent ({} \
         accepted by the provider){}.",
        int(tn.picked),
        int(tn.held_out),
        int(tn.sent),
        int(tn.delivered),
        not_sent
    )
}
