//! The "who is drifting away" section: lapse alerts over the recent runs, per segment, and
//! the segment ("school of fish") alerts highlighted.
//!
//! The segment checks can number in the thousands over many weeks; the table shows the
//! alerts first and at most `MAX_ALERT_ROWS` rows, and the chart marks at most 12 weeks.

use std::fmt::Write;

use crate::report::charts::{self, BLUE, GREEN, RED, SKY};
use crate::report::curves;
use crate::report::data::{ReportData, SegmentAlert};
use crate::report::html::{self, esc, int, n, t};
use crate::report::sections::fig;

/// Most rows any table of segment alerts shows.
pub const MAX_ALERT_ROWS: usize = 30;
/// Most segments the per-segment chart and table show (the ones with most alerts).
pub const MAX_SEGMENTS: usize = 25;
/// Most group names the note spells out.
const MAX_NAMES: usize = 8;

pub fn lapses(d: &ReportData) -> Option<String> {
    if d.lapse_history.is_empty() && d.lapse_by_segment.is_empty() && d.segment_alerts.is_empty() {
        return None;
    }
    let alerting: Vec<&SegmentAlert> = d.segment_alerts.iter().filter(|a| a.alert).collect();
    let mut s = String::new();
    if !d.lapse_history.is_empty() {
        s.push_str(&history_chart(d, &alerting));
    }
    if !d.lapse_by_segment.is_empty() {
        s.push_str(&per_segment(d, &alerting));
    }
    s.push_str(&html::note(&school_of_fish_note(&alerting)));
    if !d.segment_alerts.is_empty() {
        s.push_str(&segment_checks(d, alerting.len()));
    }
    s.push_str(&recent_runs(d));
    Some(s)
}

/// The alerts of each run, with the weeks of segment alerts marked (at most 12).
fn history_chart(d: &ReportData, alerting: &[&SegmentAlert]) -> String {
    let dates: Vec<_> = d.lapse_history.iter().map(|p| p.as_of).collect();
    let mut marks: Vec<(chrono::NaiveDate, String)> = Vec::new();
    for a in alerting {
        let room = marks.len() < 12;
        match marks.iter_mut().find(|m| m.0 == a.week) {
            Some(m) => m.1 = format!("{} +", m.1.trim_end_matches(" +")),
            None if room => marks.push((a.week, format!("⚠ {}", a.group))),
            None => {}
        }
    }
    let series = [
        (
            "all lapse alerts",
            d.lapse_history.iter().map(|p| p.alerts as f64).collect(),
            BLUE,
        ),
        (
            "first alerts",
            d.lapse_history
                .iter()
                .map(|p| p.first_alerts as f64)
                .collect(),
            GREEN,
        ),
    ];
    fig(
        "Lapse alerts over the recent runs",
        curves::lines(
            "Lapse alerts per run, segment alerts marked in red",
            &dates,
            &series,
            &marks,
        ),
    )
}

/// The segments with most lapse alerts (at most `MAX_SEGMENTS`), as bars and a table, the
/// alerting ones in red.
fn per_segment(d: &ReportData, alerting: &[&SegmentAlert]) -> String {
    let mut s = String::new();
    let mut segs = d.lapse_by_segment.clone();
    segs.sort_by_key(|s| std::cmp::Reverse(s.1));
    let alerts_of = |g: &str| alerting.iter().filter(|a| a.group == g).count();
    let top = &segs[..segs.len().min(MAX_SEGMENTS)];
    let bars: Vec<_> = top
        .iter()
        .map(|(g, c)| charts::Bar {
            label: g.clone(),
            value: *c as f64,
            color: if alerts_of(g) > 0 { RED } else { SKY },
        })
        .collect();
    s.push_str(&fig(
        "Lapse alerts per segment (red: segment alert)",
        charts::hbars(
            "Lapse alerts per segment, alerting segments in red",
            charts::WIDTH,
            &bars,
            &|v| int(v as u64),
        ),
    ));
    let rows: Vec<_> = top
        .iter()
        .map(|(g, c)| {
            let k = alerts_of(g);
            let flag = if k > 0 {
                format!("{k} week(s)")
            } else {
                String::new()
            };
            (k > 0, vec![t(g.clone()), n(int(*c)), t(flag)])
        })
        .collect();
    s.push_str(&html::table(
        "Lapse alerts per segment (highlighted: segment alert)",
        &["segment", "lapse alerts", "segment alert"],
        &rows,
    ));
    if segs.len() > MAX_SEGMENTS {
        let _ = writeln!(
            s,
            "<p class=\"lead\">{} smaller segments not shown.</p>",
            int((segs.len() - MAX_SEGMENTS) as u64)
        );
    }
    s
}

/// What a lapse alert is, and which groups (at most `MAX_NAMES` named) are lapsing together.
fn school_of_fish_note(alerting: &[&SegmentAlert]) -> String {
    let mut msg = String::from(
        "A lapse alert rings when a customer stays silent for 1.5 times their own usual gap \
         between purchases; a first alert is the first night it rings, the best moment to \
         act. ",
    );
    if alerting.is_empty() {
        msg.push_str("No segment is losing many customers at once right now.");
        return msg;
    }
    let names: Vec<_> = alerting
        .iter()
        .map(|a| a.group.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut list = names[..names.len().min(MAX_NAMES)].join(", ");
    if names.len() > MAX_NAMES {
        list.push_str(&format!(" and {} more groups", names.len() - MAX_NAMES));
    }
    msg.push_str(&format!(
        "<strong>School of fish:</strong> {} {} lapsing together, far more than usual. \
         When many similar customers leave in the same week, look for a shared cause \
         (a product, a price change, a delivery or service problem) before sending \
         offers one by one.",
        esc(&list),
        if names.len() == 1 { "is" } else { "are" }
    ));
    msg
}

/// Every segment check, alerts first then by z-score, at most `MAX_ALERT_ROWS` rows.
fn segment_checks(d: &ReportData, alerts: usize) -> String {
    let mut s = String::new();
    let mut rows: Vec<_> = d.segment_alerts.iter().collect();
    rows.sort_by(|a, b| b.alert.cmp(&a.alert).then(b.z.total_cmp(&a.z)));
    let shown: Vec<_> = rows
        .iter()
        .take(MAX_ALERT_ROWS)
        .map(|a| {
            (
                a.alert,
                vec![
                    t(a.group.clone()),
                    t(a.week.to_string()),
                    n(int(a.lapses)),
                    n(html::num(a.baseline, 1)),
                    n(html::num(a.z, 1)),
                    t(if a.alert { "alert" } else { "" }),
                ],
            )
        })
        .collect();
    s.push_str(&html::table(
        "Segment checks, alerts first (highlighted)",
        &["group", "week", "lapses", "usual", "z-score", ""],
        &shown,
    ));
    if rows.len() > MAX_ALERT_ROWS {
        let _ = writeln!(
            s,
            "<p class=\"lead\">{} more segment checks not shown ({} alerts in all).</p>",
            int((rows.len() - MAX_ALERT_ROWS) as u64),
            int(alerts as u64)
        );
    }
    s
}

/// The last 14 runs' alerts, newest first; nothing without history.
fn recent_runs(d: &ReportData) -> String {
    let recent: Vec<_> = d
        .lapse_history
        .iter()
        .rev()
        .take(14)
        .map(|p| {
            (
                false,
                vec![
                    t(p.as_of.to_string()),
                    n(int(p.alerts)),
                    n(int(p.first_alerts)),
                ],
            )
        })
        .collect();
    if recent.is_empty() {
        return String::new();
    }
    html::table(
        "The last runs (newest first)",
        &["run date", "lapse alerts", "first alerts"],
        &recent,
    )
}
