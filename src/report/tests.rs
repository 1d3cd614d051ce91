//! Tests of the whole page: sections, escaping, no external resource, empty data, size.

use std::time::Instant;

use chrono::{Duration, NaiveDate};

use super::example_data::{campaign, example};
use super::*;

const IDS: [&str; 14] = [
    "glance",
    "rfm",
    "pareto",
    "value",
    "lapses",
    "churn",
    "at_risk",
    "reasons",
    "backtest",
    "campaigns",
    "stay",
    "vip",
    "calls",
    "manifest",
];

/// The body of one section, from its opening tag to its end.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("section {id} missing"));
    let end = html[start..]
        .find("</section>")
        .expect("section not closed");
    &html[start..start + end]
}

fn assert_self_contained(html: &str) {
    let lower = html.to_lowercase();
    for bad in [
        "http:", "https:", "<script", "@import", "url(", "src=", "//", "<link",
    ] {
        assert!(!lower.contains(bad), "output contains {bad:?}");
    }
}

#[test]
fn example_has_every_section_in_order_with_its_charts() {
    let d = example();
    let html = render(&d);
    let mut last = 0;
    for id in IDS {
        let at = html.find(&format!("<section id=\"{id}\">")).expect(id);
        assert!(at > last, "{id} out of order");
        last = at;
        assert!(
            html.contains(&format!("<a href=\"#{id}\">")),
            "toc misses {id}"
        );
        let body = section(&html, id);
        assert!(body.contains("<h2>"), "{id} has no heading");
        assert!(!body.contains("class=\"empty\""), "{id} shows as empty");
        if id != "glance" {
            assert!(body.contains("<table>"), "{id} has no table");
        }
    }
    // glance: none; rfm: 2; pareto: 1; value: 2; lapses: 2; churn: 2 (rate, value at
    // risk); at_risk: 1; reasons: 1; backtest: 1; campaigns: 1 uplift + 1 funnel each;
    // stay: 1; vip: 1 lapse rates + 1 funnel per recognition campaign; calls: 1;
    // manifest: 1.
    let vip_charts = 1 + d.vip.as_ref().unwrap().funnels.len();
    let expected = [
        0,
        2,
        1,
        2,
        2,
        2,
        1,
        1,
        1,
        1 + d.campaigns.len(),
        1,
        vip_charts,
        1,
        1,
    ];
    for (id, want) in IDS.iter().zip(expected) {
        let body = section(&html, id);
        assert_eq!(body.matches("<svg").count(), want, "charts in {id}");
        assert_eq!(
            body.matches("<svg class=\"chart\" role=\"img\" aria-label=\"")
                .count(),
            want
        );
    }
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("<text"),
        "plotters text must come out as SVG text"
    );
    assert!(section(&html, "glance").contains("class=\"tile\""));
    assert!(section(&html, "lapses").contains("<tr class=\"highlight\">"));
    assert!(section(&html, "pareto").contains("The top 20% of customers bring"));
    // Numbers are formatted for people.
    assert!(html.contains("25,000"));
    assert!(html.contains("1,325,050.50"));
}

#[test]
fn text_is_escaped_everywhere() {
    let evil = "<b>&\"x\"";
    let mut d = example();
    d.pipeline = evil.into();
    d.generated_at = evil.into();
    d.rfm[0].segment = evil.into();
    d.campaigns[0].campaign = evil.into();
    d.campaigns[0].tonight.as_mut().unwrap().not_sent[0].0 = evil.into();
    d.lapse_by_segment[0].0 = evil.into();
    d.segment_alerts[0].group = evil.into();
    d.segment_alerts[0].alert = true;
    let m = d.manifest.as_mut().unwrap();
    m.inputs[0].1 = evil.into();
    m.inputs[1].1 = "s3://bucket/purchases/".into();
    m.models[0].1 = "see https://example.com/x".into();
    d.backtest.as_mut().unwrap()[0].frequency = evil.into();
    d.empty.insert("pareto".into(), evil.into());
    d.pareto = None;
    let html = render(&d);
    assert!(!html.contains(evil), "raw text leaked");
    assert!(!html.contains("<b>"), "raw tag leaked");
    assert!(html.contains("&lt;b&gt;&amp;&quot;x&quot;"));
    assert_self_contained(&html);
}

#[test]
fn no_external_resource() {
    assert_self_contained(&render(&example()));
    assert_self_contained(&render(&ReportData::default()));
}

#[test]
fn empty_data_renders_every_reason() {
    let mut d = ReportData::default();
    d.empty.insert(
        "campaigns".into(),
        "no campaign tables in this output folder: run with campaigns to see results".into(),
    );
    let html = render(&d);
    assert_eq!(html.matches("<svg").count(), 0);
    for id in IDS {
        let body = section(&html, id);
        assert!(body.contains("<p class=\"empty\">"), "{id} gives no reason");
    }
    let reason = html::esc("no campaign tables in this output folder: run with campaigns");
    assert!(section(&html, "campaigns").contains(&reason));
    assert!(section(&html, "backtest").contains("This run has no model backtest."));
}

#[test]
fn partial_and_odd_data_never_fail() {
    let mut d = example();
    d.campaigns.clear();
    d.backtest = Some(vec![]);
    d.clv_hist = None;
    d.lapse_history.truncate(1);
    d.pareto.as_mut().unwrap().grades.clear();
    d.rfm[1].revenue = f64::NAN;
    d.rfm[2].customers = 0;
    d.p_alive_hist.as_mut().unwrap().bins = vec![(0.5, 0.5, 0)];
    let html = render(&d);
    assert!(section(&html, "campaigns").contains("class=\"empty\""));
    assert!(section(&html, "backtest").contains("class=\"empty\""));
    assert!(section(&html, "value").contains("Predicted CLV is not available"));
    assert!(!html.contains("could not be drawn"), "a chart failed");
    assert_self_contained(&html);
}

/// The aggregates of a 1,000,000-customer run at their largest.
fn large() -> ReportData {
    let mut d = example();
    d.glance.customers = 1_000_000;
    let pareto = d.pareto.as_mut().unwrap();
    pareto.points = (0..200)
        .map(|i| {
            let x = (i + 1) as f64 / 200.0;
            (x, 1.0 - (1.0 - x).powf(5.0))
        })
        .collect();
    d.clv_hist.as_mut().unwrap().bins = (0..30)
        .map(|i| (i as f64, i as f64 + 1.0, 33_333))
        .collect();
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    d.lapse_history = (0..90)
        .map(|i| LapsePoint {
            as_of: start + Duration::days(i),
            alerts: 40_000 + i as u64,
            first_alerts: 3_000,
        })
        .collect();
    d.segment_alerts = (0..1000)
        .map(|i| SegmentAlert {
            group: format!("group {}", i % 50),
            week: start + Duration::weeks(i / 50),
            lapses: 100 + i as u64,
            baseline: 90.0,
            z: (i % 7) as f64,
            alert: i % 7 == 6,
        })
        .collect();
    d.lapse_by_segment = (0..50).map(|i| (format!("group {i}"), 1000 + i)).collect();
    d.campaigns = (0..20)
        .map(|i| campaign(&format!("campaign {i}"), 50_000, 0.06, 0.04, 20.0, 0.1))
        .collect();
    d
}

#[test]
fn large_input_stays_small_and_fast() {
    let d = large();
    let t = Instant::now();
    let html = render(&d);
    let took = t.elapsed();
    eprintln!(
        "large report: {} bytes ({:.1} KB), rendered in {:?}",
        html.len(),
        html.len() as f64 / 1024.0,
        took
    );
    assert!(
        html.len() < 3 * 1024 * 1024,
        "report is {} bytes",
        html.len()
    );
    let rows = section(&html, "lapses").matches("<tr").count();
    assert!(
        rows <= lapses::MAX_ALERT_ROWS + lapses::MAX_SEGMENTS + 14 + 3,
        "{rows} rows in lapses"
    );
    assert!(section(&html, "lapses").contains("more segment checks not shown"));
    assert_eq!(section(&html, "campaigns").matches("<svg").count(), 21);
    assert_self_contained(&html);
    let t = Instant::now();
    let small = render(&example());
    eprintln!(
        "example report: {} bytes, rendered in {:?}",
        small.len(),
        t.elapsed()
    );
    if let Ok(dir) = std::env::var("REPORT_OUT") {
        std::fs::write(format!("{dir}/example.html"), &small).unwrap();
        std::fs::write(format!("{dir}/large.html"), &html).unwrap();
        std::fs::write(format!("{dir}/empty.html"), render(&ReportData::default())).unwrap();
    }
}

#[test]
fn data_round_trips_through_json() {
    let d = example();
    let json = serde_json::to_string(&d).unwrap();
    let back: ReportData = serde_json::from_str(&json).unwrap();
    assert_eq!(render(&back), render(&d));
}

/// A campaign with too few customers to tell gets no verdict and no interval line: the
/// report says "too few to tell" and the holdout it would need; one whose windows are all
/// still running says "in progress".
#[test]
fn too_few_to_tell_and_in_progress_replace_the_verdict() {
    let mut d = example();
    let small = &mut d.campaigns[0];
    (small.ci_low, small.ci_high) = (None, None);
    small.note = Some("too few to tell".into());
    small.holdout_needed = Some(1_234);
    let running = &mut d.campaigns[1];
    (running.ci_low, running.ci_high) = (None, None);
    running.note = Some("in progress".into());
    let html = render(&d);
    let campaigns = section(&html, "campaigns");
    let quick = campaigns.split("<h3>").nth(1).unwrap();
    assert!(quick.contains("Too few to tell"), "{quick}");
    assert!(quick.contains("the holdout needs about 1,234 customers"));
    assert!(!quick.contains("It works") && !quick.contains("Not clear yet"));
    let amends = campaigns.split("<h3>").nth(2).unwrap();
    assert!(amends.contains("In progress&#58; no customer"), "{amends}");
    assert!(!amends.contains("It works") && !amends.contains("Not clear yet"));
    // The table says why instead of an interval.
    assert!(campaigns.contains("(too few to tell)"));
    assert!(campaigns.contains("(in progress)"));
}

/// A campaign's funnel and its results are the same customers: the section says which
/// contact nights it covers (those whose windows have all ended), lists the nights still
/// running apart, and labels tonight's plan as tonight.
#[test]
fn campaign_funnels_say_which_contact_nights_they_cover() {
    let d = example();
    let html = render(&d);
    let campaigns = section(&html, "campaigns");
    assert!(
        campaigns.contains("cover the contact nights 2024-05-16 to 2024-05-30"),
        "{campaigns}"
    );
    let quick = campaigns.split("<h3>").nth(1).unwrap();
    let c = &d.campaigns[0];
    assert!(quick.contains(
        "aria-label=\"Funnel of campaign winback_quick, contact nights 2024-05-16 to 2024-05-30\""
    ));
    // Picked, sent and came back: the finished nights' funnel, not tonight's plan.
    let f = &c.funnel;
    assert!(quick.contains(&format!(
        "On the contact nights 2024-05-16 to 2024-05-30 (every attribution window ended), {} \
         customers were picked&#58; {} held out, {} stopped by the rules and {} sent a message",
        html::int(f.picked),
        html::int(f.held_out),
        html::int(f.suppressed),
        html::int(f.sent)
    )));
    assert!(quick.contains(&format!(
        "Of those sent, {} came back within the window",
        html::int(f.came_back)
    )));
    assert!(
        quick.contains("The contact nights 2024-06-16 to 2024-06-23 are still in their window")
    );
    assert!(quick.contains("contact nights still in their attribution window"));
    assert!(quick.contains("<td>2024-06-16</td>") && quick.contains("<td>2024-06-23</td>"));
    let tonight = c.tonight.as_ref().unwrap();
    assert!(quick.contains(&format!(
        "Tonight (2024-06-30), not in the figures above&#58; {} picked",
        html::int(tonight.picked)
    )));
    // The glance's incremental revenue names its nights too.
    assert!(
        section(&html, "glance").contains("counts the contact nights 2024-05-16 to 2024-05-30")
    );
}

/// Without a finished night the chart shows the running nights, labelled in progress; with
/// neither, tonight's plan, labelled tonight.
#[test]
fn a_campaign_without_finished_nights_shows_what_it_has_labelled() {
    let mut d = example();
    d.campaigns[0].nights = None;
    d.campaigns[1].nights = None;
    d.campaigns[1].in_progress_nights.clear();
    let html = render(&d);
    let campaigns = section(&html, "campaigns");
    let quick = campaigns.split("<h3>").nth(1).unwrap();
    assert!(quick.contains(
        "Funnel of campaign winback_quick, contact nights 2024-06-16 to 2024-06-23 (in progress"
    ));
    assert!(quick.contains("No contact night&#39;s attribution window has ended yet"));
    let amends = campaigns.split("<h3>").nth(2).unwrap();
    assert!(amends.contains("Funnel of campaign winback_amends, tonight (2024-06-30)"));
    assert!(amends.contains("not sent&#58; no consent"));
}

/// The VIP section: tonight's VIPs, the finished comparison (highlighted: clearly fewer
/// lapses among the recognised) and the running one, and the thank-you's funnel; with no
/// VIP at all it says so.
#[test]
fn the_vip_section_compares_the_recognised_with_the_holdout() {
    let mut d = example();
    let html = render(&d);
    let vip = section(&html, "vip");
    assert!(vip.contains("2,480 active customers are VIPs"), "{vip}");
    // 180 of 1,500 = 12.0% against 34 of 170 = 20.0%: -8.0 pp, interval -12.0 to -4.5.
    assert!(
        vip.contains("180 (12.0%)") && vip.contains("34 (20.0%)"),
        "{vip}"
    );
    assert!(vip.contains("-8.0 pp (-12.0 pp to -4.5 pp)"), "{vip}");
    assert!(vip.contains("<tr class=\"highlight\">"));
    assert!(vip.contains("so far (in progress)"));
    assert!(vip.contains("Funnel of campaign vip_recognition"));
    d.vip = Some(Vip::default());
    let html = render(&d);
    assert!(section(&html, "vip").contains("class=\"empty\""));
    assert!(section(&html, "vip").contains("No VIP as of"));
}

/// CPR before the silence and the call list: the sums over the grades and campaigns are
/// worked by hand from the example; with nothing to show each section says why.
#[test]
fn the_at_risk_and_call_sections_add_up_their_rows() {
    let mut d = example();
    let html = render(&d);
    let at_risk = section(&html, "at_risk");
    // Grades A (41) and B (88): 129 at risk; complaints 12 + 19, slowing 25 + 60, drops
    // 4 + 9, several 6 + 11.
    assert!(
        at_risk.contains("129 customers of grades A and B have not lapsed yet"),
        "{at_risk}"
    );
    assert!(at_risk.contains(": 31 a recent complaint"), "{at_risk}");
    assert!(at_risk.contains("85 a slowing rhythm"), "{at_risk}");
    assert!(at_risk.contains("13 a drop of their chance"), "{at_risk}");
    assert!(at_risk.contains("17 show more than one"), "{at_risk}");
    assert!(at_risk.contains("<svg"));
    let calls = section(&html, "calls");
    // 29 reached of 44 with an outcome: 65.9%.
    assert!(
        calls.contains("60 customers have been on a call list, 10 of them tonight"),
        "{calls}"
    );
    assert!(
        calls.contains("reached 29 customers (65.9% of the calls"),
        "{calls}"
    );
    assert!(calls.contains("17 came back"), "{calls}");
    assert!(calls.contains("2,310.40"), "{calls}");
    d.at_risk = Some(AtRisk::default());
    d.calls = Some(Calls::default());
    let html = render(&d);
    assert!(section(&html, "at_risk").contains("No valuable customer shows a warning"));
    assert!(section(&html, "calls").contains("No call on any list"));
}
