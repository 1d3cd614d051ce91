//! The run report: one self-contained `report.html` a marketer can read without network.
//!
//! `render` is a pure function from already aggregated numbers (`ReportData`, gathered by
//! the caller with SQL) to the page. Everything is inline: the style sheet, the charts as
//! SVG drawn with plotters, no script, no font file and no URL, so the page opens the same
//! from a laptop, a mail attachment or an object-store browser. Its size depends only on
//! the sizes of the aggregates, never on the number of customers.

mod at_risk;
mod calls;
mod charts;
mod churn;
#[cfg(test)]
mod churn_tests;
mod curves;
pub mod data;
#[cfg(test)]
mod example_churn;
#[cfg(test)]
mod example_data;
mod funnel;
pub mod gather;
mod gather_churn;
mod gather_funnel;
mod gather_playbook;
mod gather_results;
mod gather_vip;
mod html;
mod lapses;
mod query;
mod reasons;
mod results;
mod sections;
mod stay;
#[cfg(test)]
mod tests;
mod vip;
pub mod write;

use std::fmt::Write;

pub use data::{
    AtRisk, AtRiskRow, BacktestRow, CallRow, Calls, CampaignResult, Churn, ChurnGrade, ChurnWeek,
    Glance, Histogram, LapsePoint, ManifestView, Pareto, Reasons, ReportData, SegmentAlert,
    SegmentRow, Stay, StayRow, Vip, VipRow,
};

pub use write::write_report;

use html::esc;

/// A section of the page: id, heading, one line saying what question it answers, the
/// default reason it is empty, and the function that draws it.
type Draw = fn(&ReportData) -> Option<String>;
const SECTIONS: [(&str, &str, &str, &str, Draw); 14] = [
    (
        "glance",
        "The run at a glance",
        "The headline numbers of tonight's run.",
        "No customers in this run's output: run the pipeline first.",
        sections::glance,
    ),
    (
        "rfm",
        "Who your customers are",
        "Customers grouped by how recently, how often and how much they buy (RFM).",
        "No RFM table in this output folder.",
        sections::rfm,
    ),
    (
        "pareto",
        "Where the revenue comes from",
        "The 80/20 view: how much of the revenue the best customers bring, and the value grades A to D.",
        "No value grades in this output folder.",
        sections::pareto,
    ),
    (
        "value",
        "What customers are worth from here on",
        "Predicted customer lifetime value (CLV) and the chance each customer is still active, P(alive).",
        "No lifetime-value table in this output folder.",
        sections::value,
    ),
    (
        "lapses",
        "Who is drifting away",
        "Customers who went quiet for longer than their own rhythm, over the recent runs and per segment.",
        "No lapse alerts in this output folder.",
        lapses::lapses,
    ),
    (
        "churn",
        "How churn is going",
        "Week by week over the last 26 weeks: how many active customers lapsed (the churn rate), what they were worth, and how many came back.",
        "No churn figures in this output folder.",
        churn::churn,
    ),
    (
        "at_risk",
        "Before they leave",
        "CPR before the silence: valuable customers (grades A and B) not lapsed yet who show a warning: a recent complaint, a slowing rhythm, a drop of P(alive).",
        "No at-risk table in this output folder.",
        at_risk::at_risk,
    ),
    (
        "reasons",
        "Why they left",
        "Tonight's lapsed customers by value grade and reason, and how many fall in each cell of the value x reason treatment matrix.",
        "No treatment table in this output folder.",
        reasons::reasons,
    ),
    (
        "backtest",
        "Can the forecast be trusted",
        "The lifetime-value model checked against what really happened.",
        "This run has no model backtest.",
        results::backtest,
    ),
    (
        "campaigns",
        "Did win-back work",
        "Each campaign's funnel and how many more customers came back than in the holdout group.",
        "No campaign tables in this output folder: run with campaigns to see results.",
        results::campaigns,
    ),
    (
        "stay",
        "Do the won-back stay?",
        "Customers won back by a message against those who came back by themselves: what they spent afterwards and how many lapsed again.",
        "No win-back table in this output folder.",
        stay::stay,
    ),
    (
        "vip",
        "Recognising the best customers",
        "The active VIPs (grade A or the top CLV share) thanked personally, without a discount, and whether they lapse less than the VIPs held out.",
        "No VIP tables in this output folder.",
        vip::vip,
    ),
    (
        "calls",
        "The call list",
        "The most valuable customers the team phones, one owner each: how many were on the lists, reached, and came back.",
        "No call results in this output folder.",
        calls::calls,
    ),
    (
        "manifest",
        "How the run went",
        "Inputs, stages, quarantined rows and model diagnostics of this run.",
        "No run manifest in this output folder.",
        results::manifest,
    ),
];

/// Renders the whole report as one HTML5 document.
pub fn render(data: &ReportData) -> String {
    let mut s = String::with_capacity(256 * 1024);
    let title = format!("winback report: {} on {}", data.pipeline, data.as_of);
    let mut about = Vec::new();
    if !data.pipeline.is_empty() {
        about.push(format!("Pipeline <strong>{}</strong>", esc(&data.pipeline)));
    }
    about.push(format!("data as of <strong>{}</strong>", data.as_of));
    if !data.generated_at.is_empty() {
        about.push(format!("generated {}", esc(&data.generated_at)));
    }
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{}</style>\n</head>\n<body>\n<header>\n\
         <h1>Win-back report</h1>\n<p>{}</p>\n</header>\n",
        esc(&title),
        html::CSS,
        about.join(" · ")
    );
    s.push_str("<nav class=\"toc\" aria-label=\"Contents\">\n<ol>\n");
    for (id, heading, ..) in SECTIONS {
        let _ = writeln!(s, "<li><a href=\"#{id}\">{}</a></li>", esc(heading));
    }
    s.push_str("</ol>\n</nav>\n<main>\n");
    for (id, heading, lead, default_empty, draw) in SECTIONS {
        let _ = write!(
            s,
            "<section id=\"{id}\">\n<h2>{}</h2>\n<p class=\"lead\">{}</p>\n",
            esc(heading),
            esc(lead)
        );
        match draw(data) {
            Some(body) => s.push_str(&body),
            None => {
                let reason = data
                    .empty
                    .get(id)
                    .map(String::as_str)
                    .unwrap_or(default_empty);
                s.push_str(&html::empty(reason));
            }
        }
        s.push_str("</section>\n");
    }
    s.push_str(
        "</main>\n<footer>Made by winback from the run's output tables. All figures are \
         totals or counts; no customer is listed.</footer>\n</body>\n</html>\n",
    );
    s
}
