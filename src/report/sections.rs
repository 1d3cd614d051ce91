//! The customer sections: glance, RFM, 80/20 and value (lapses have their own file).
//!
//! Each function returns the body of one section (charts, plain-words notes, tables), or
//! `None` when there is nothing to show, in which case `render` prints the reason instead.

use std::fmt::Write;

use crate::report::charts::{self, BLUE, ORANGE};
use crate::report::curves;
use crate::report::data::{ReportData, SegmentRow};
use crate::report::html::{self, esc, int, money, n, pct, t};

const SLIPPING: [&str; 6] = [
    "At Risk",
    "Can't Lose Them",
    "About to Sleep",
    "Need Attention",
    "Hibernating",
    "Lost",
];

/// A chart with a caption, in a flex cell.
pub fn fig(caption: &str, chart: String) -> String {
    format!(
        "<figure><figcaption>{}</figcaption>\n{chart}</figure>\n",
        esc(caption)
    )
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

pub fn glance(d: &ReportData) -> Option<String> {
    let g = &d.glance;
    if g.customers == 0 && g.revenue == 0.0 && g.messages_sent == 0 {
        return None;
    }
    let incr = g
        .incremental_revenue
        .map(money)
        .unwrap_or_else(|| "–".into());
    let tiles = [
        (int(g.customers), "customers"),
        (money(g.revenue), "revenue"),
        (
            int(g.first_alerts),
            "customers who first missed their rhythm",
        ),
        (int(g.segment_alerts), "segment alerts (school of fish)"),
        (int(g.messages_sent), "win-back messages sent tonight"),
        (incr, "incremental revenue from win-back"),
    ];
    let mut s = String::from("<div class=\"tiles\">\n");
    for (v, l) in tiles {
        let _ = writeln!(
            s,
            "<div class=\"tile\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
            esc(&v),
            esc(l)
        );
    }
    s.push_str("</div>\n");
    let mut msg = format!(
        "Tonight {} customers first went quiet for longer than their usual gap between \
         purchases: they are the cheapest to win back, so they are contacted first.",
        int(g.first_alerts)
    );
    if g.segment_alerts > 0 {
        msg.push_str(&format!(
            " {} many similar customers leaving at once: see <a href=\"#lapses\">who is \
             drifting away</a>.",
            if g.segment_alerts == 1 {
                "One segment alert means".to_string()
            } else {
                format!("{} segment alerts mean", int(g.segment_alerts))
            }
        ));
    }
    match (g.incremental_revenue, crate::report::funnel::covered(d)) {
        (None, _) => msg.push_str(" Incremental revenue appears once campaigns have results."),
        (Some(_), Some((first, last))) => msg.push_str(&format!(
            " Incremental revenue counts the {}, whose attribution windows have ended; the \
             messages sent tonight count once theirs end.",
            crate::report::funnel::nights_text(first, last)
        )),
        (Some(_), None) => {}
    }
    s.push_str(&html::note(&msg));
    Some(s)
}

pub fn rfm(d: &ReportData) -> Option<String> {
    if d.rfm.is_empty() {
        return None;
    }
    let mut s = segment_charts(&d.rfm);
    s.push_str(&segment_note(&d.rfm));
    s.push_str(&segment_table(&d.rfm));
    Some(s)
}

/// Customers and revenue per RFM segment, side by side; slipping segments in orange.
fn segment_charts(rfm: &[SegmentRow]) -> String {
    let color = |seg: &str| {
        if SLIPPING.contains(&seg) {
            ORANGE
        } else {
            BLUE
        }
    };
    let bars = |f: &dyn Fn(&SegmentRow) -> f64| {
        rfm.iter()
            .map(|r| charts::Bar {
                label: r.segment.clone(),
                value: f(r),
                color: color(&r.segment),
            })
            .collect::<Vec<_>>()
    };
    let customers = charts::hbars(
        "Customers per RFM segment",
        charts::HALF,
        &bars(&|r| r.customers as f64),
        &|v| int(v as u64),
    );
    let revenue = charts::hbars(
        "Revenue per RFM segment",
        charts::HALF,
        &bars(&|r| r.revenue),
        &html::short,
    );
    format!(
        "<div class=\"charts\">{}{}</div>\n",
        fig("Customers", customers),
        fig("Revenue", revenue)
    )
}

/// The segment that brings the most revenue, and what the slipping segments hold.
fn segment_note(rfm: &[SegmentRow]) -> String {
    let total_r: f64 = rfm.iter().map(|r| r.revenue).sum();
    let slipping: Vec<_> = rfm
        .iter()
        .filter(|r| SLIPPING.contains(&r.segment.as_str()))
        .collect();
    let slip_c: u64 = slipping.iter().map(|r| r.customers).sum();
    let slip_r: f64 = slipping.iter().map(|r| r.revenue).sum();
    let top = rfm.iter().max_by(|a, b| a.revenue.total_cmp(&b.revenue));
    let mut msg = String::new();
    if let Some(top) = top {
        msg = format!(
            "{} brings the most revenue ({} of the total). ",
            esc(&top.segment),
            pct(ratio(top.revenue, total_r))
        );
    }
    msg.push_str(&format!(
        "Orange bars are segments that are slipping away: {} customers who brought {} of \
         revenue. \"At Risk\" and \"Can't Lose Them\" used to buy often and well: win them \
         back first.",
        int(slip_c),
        pct(ratio(slip_r, total_r))
    ));
    html::note(&msg)
}

/// Customers and revenue per segment, with their shares.
fn segment_table(rfm: &[SegmentRow]) -> String {
    let total_c: u64 = rfm.iter().map(|r| r.customers).sum();
    let total_r: f64 = rfm.iter().map(|r| r.revenue).sum();
    let rows: Vec<_> = rfm
        .iter()
        .map(|r| {
            (
                false,
                vec![
                    t(r.segment.clone()),
                    n(int(r.customers)),
                    n(pct(ratio(r.customers as f64, total_c as f64))),
                    n(money(r.revenue)),
                    n(pct(ratio(r.revenue, total_r))),
                    n(money(ratio(r.revenue, r.customers as f64))),
                ],
            )
        })
        .collect();
    html::table(
        "Customers and revenue per segment",
        &[
            "segment",
            "customers",
            "% of customers",
            "revenue",
            "% of revenue",
            "revenue per customer",
        ],
        &rows,
    )
}

pub fn pareto(d: &ReportData) -> Option<String> {
    let p = d.pareto.as_ref().filter(|p| !p.points.is_empty())?;
    let mut s = curves::pareto(
        "Cumulative share of revenue against share of customers, with the value grades",
        &p.points,
        &p.grades,
    );
    let top20 = curves::share_at(&p.points, 0.2).unwrap_or(0.0);
    s.push_str(&html::note(&format!(
        "The top 20% of customers bring {} of revenue. Grade A and B customers are the ones \
         worth a personal win-back (a call, a real offer); a lapsed grade C or D customer \
         is let go, unless we let them down: then they get one cheap apology e-mail with a \
         small code (the opportunistic campaign). Some grade D customers cost more to serve \
         than they bring, and no campaign rescues them. Active grade A customers get a \
         personal thank-you (recognising the best customers, below). The grey diagonal is \
         what it would look like if every customer were worth the same.",
        pct(top20)
    )));
    let mut start = 0.0;
    let rows: Vec<_> = p
        .grades
        .iter()
        .map(|(g, end)| {
            let from = curves::share_at(&p.points, start).unwrap_or(0.0);
            let to = curves::share_at(&p.points, *end).unwrap_or(0.0);
            let row = vec![
                t(g.clone()),
                t(format!("{} – {}", pct(start), pct(*end))),
                n(pct(end - start)),
                n(pct(to - from)),
            ];
            start = *end;
            (false, row)
        })
        .collect();
    s.push_str(&html::table(
        "Value grades: the band of customers each covers and the revenue it brings",
        &[
            "grade",
            "customers (best first)",
            "share of customers",
            "share of revenue",
        ],
        &rows,
    ));
    Some(s)
}

fn bins_table(caption: &str, bins: &[(f64, f64, u64)], fmt: &dyn Fn(f64) -> String) -> String {
    let rows: Vec<_> = bins
        .iter()
        .map(|(a, b, c)| {
            (
                false,
                vec![t(format!("{} – {}", fmt(*a), fmt(*b))), n(int(*c))],
            )
        })
        .collect();
    format!(
        "<details><summary>{}</summary>\n{}</details>\n",
        esc(caption),
        html::table(caption, &["range", "customers"], &rows)
    )
}

pub fn value(d: &ReportData) -> Option<String> {
    let clv = d.clv_hist.as_ref().filter(|h| !h.bins.is_empty());
    let alive = d.p_alive_hist.as_ref().filter(|h| !h.bins.is_empty());
    if clv.is_none() && alive.is_none() {
        return None;
    }
    let mut figs = String::new();
    let mut tables = String::new();
    let mut msg = String::new();
    match clv {
        Some(h) => {
            let title = format!("Customers by {}", h.label);
            figs.push_str(&fig(
                &title,
                charts::histogram(&title, &h.label, &h.bins, &html::short),
            ));
            tables.push_str(&bins_table(
                &format!("The numbers: {}", h.label),
                &h.bins,
                &money,
            ));
            msg.push_str(
                "Predicted CLV is what a customer is expected to spend over the coming \
                 horizon, discounted. Most customers sit in the first bars; the few on the \
                 right carry most of the future value, so protect them first. ",
            );
        }
        None => figs.push_str(&html::empty("Predicted CLV is not available for this run.")),
    }
    match alive {
        Some(h) => {
            let title = format!("Customers by {}", h.label);
            let fmt = |v: f64| format!("{:.0}%", v * 100.0);
            figs.push_str(&fig(
                &title,
                charts::histogram(&title, &h.label, &h.bins, &fmt),
            ));
            tables.push_str(&bins_table(
                &format!("The numbers: {}", h.label),
                &h.bins,
                &pct,
            ));
            let total: u64 = h.bins.iter().map(|b| b.2).sum();
            let low: u64 = h
                .bins
                .iter()
                .filter(|b| b.1 <= 0.5 + 1e-9)
                .map(|b| b.2)
                .sum();
            msg.push_str(&format!(
                "P(alive) is the chance a customer still buys from you. {} of customers are \
                 below 50%: more likely gone than still here. A valuable customer with a \
                 falling P(alive) is the one to call.",
                pct(ratio(low as f64, total as f64))
            ));
        }
        None => figs.push_str(&html::empty("P(alive) is not available for this run.")),
    }
    Some(format!(
        "<div class=\"charts\">{figs}</div>\n{}{tables}",
        html::note(&msg)
    ))
}
