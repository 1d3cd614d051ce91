//! The report's input: plain, already aggregated numbers.
//!
//! The lead gathers these with SQL over the run's output tables; the renderer never sees
//! one row per customer, so the page size depends only on the sizes of these aggregates.
//! Shares and rates are fractions (0.25 means 25%); money is in the shop's currency.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use crate::models::BacktestRow;

/// Everything `render` shows. A `None` or empty field makes its section say why it is
/// empty, using the text in `empty` under the section id when there is one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportData {
    pub pipeline: String,
    pub as_of: NaiveDate,
    pub generated_at: String,
    pub glance: Glance,
    pub rfm: Vec<SegmentRow>,
    pub pareto: Option<Pareto>,
    pub clv_hist: Option<Histogram>,
    pub p_alive_hist: Option<Histogram>,
    pub lapse_history: Vec<LapsePoint>,
    pub lapse_by_segment: Vec<(String, u64)>,
    pub segment_alerts: Vec<SegmentAlert>,
    pub backtest: Option<Vec<BacktestRow>>,
    pub campaigns: Vec<CampaignResult>,
    /// `churn_kpis`: how churn is going (the "churn" section).
    #[serde(default)]
    pub churn: Option<Churn>,
    /// `winback_treatment`: why tonight's lapsed customers left (the "reasons" section).
    #[serde(default)]
    pub reasons: Option<Reasons>,
    /// `reactivated_customers`: whether the won-back stay (the "stay" section).
    #[serde(default)]
    pub stay: Option<Stay>,
    /// `vip_customers` and `vip_results`: the best customers thanked, and whether they
    /// lapse less than the holdout (the "vip" section).
    #[serde(default)]
    pub vip: Option<Vip>,
    /// `at_risk_customers`: valuable customers not yet lapsed who show a warning (the
    /// "at_risk" section).
    #[serde(default)]
    pub at_risk: Option<AtRisk>,
    /// `call_results`: the call list's calls and what came of them (the "calls" section).
    #[serde(default)]
    pub calls: Option<Calls>,
    pub manifest: Option<ManifestView>,
    /// Section id (`rfm`, `pareto`, `value`, `lapses`, `churn`, `reasons`, `backtest`,
    /// `campaigns`, `stay`, `vip`, `at_risk`, `calls`, `manifest`, `glance`) to the reason
    /// it is empty.
    pub empty: BTreeMap<String, String>,
}

/// The big numbers at the top of the page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Glance {
    pub customers: u64,
    pub revenue: f64,
    pub first_alerts: u64,
    pub segment_alerts: u64,
    /// Messages accepted by the provider tonight (the ledger's `delivered` of `as_of`).
    pub messages_sent: u64,
    /// `None` until some campaign has results.
    pub incremental_revenue: Option<f64>,
}

/// One RFM segment: how many customers and the revenue they brought.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SegmentRow {
    pub segment: String,
    pub customers: u64,
    pub revenue: f64,
}

/// The 80/20 curve.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pareto {
    /// (customer share 0..1, cumulative revenue share 0..1), best customers first, at most
    /// about 200 points.
    pub points: Vec<(f64, f64)>,
    /// (grade letter, customer share where its band ends), in order A, B, C, D.
    pub grades: Vec<(String, f64)>,
}

/// A histogram that is already binned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Histogram {
    pub label: String,
    /// (from, to, count), about 30 bins, in order.
    pub bins: Vec<(f64, f64, u64)>,
}

/// Lapse alerts of one past run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LapsePoint {
    pub as_of: NaiveDate,
    pub alerts: u64,
    pub first_alerts: u64,
}

/// One group-week of the "school of fish" check.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SegmentAlert {
    pub group: String,
    pub week: NaiveDate,
    pub lapses: u64,
    pub baseline: f64,
    pub z: f64,
    pub alert: bool,
}

/// A campaign's funnel over some contact nights (`campaign_funnel`, summed): lapses, each
/// once, so every count is of the same customers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funnel {
    /// Every lapse the campaign decided about, both arms, messaged or not.
    pub picked: u64,
    pub held_out: u64,
    /// The treated lapses whose first step the rules stopped.
    pub suppressed: u64,
    /// Lapses with a message the rules let through (delivered, refused, answer lost).
    pub sent: u64,
    /// Of those, accepted by the provider.
    pub delivered: u64,
    /// Of those, reported bounced by the provider afterwards (`winback listen`).
    pub bounced: u64,
    /// Sent or held-out lapses whose attribution window has fully elapsed.
    pub window_complete: u64,
    /// Sent lapses with a purchase within the window after their first contact.
    pub came_back: u64,
    pub holdout_came_back: u64,
}

impl Funnel {
    /// Both funnels' counts together.
    pub fn add(&mut self, o: &Funnel) {
        self.picked += o.picked;
        self.held_out += o.held_out;
        self.suppressed += o.suppressed;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.bounced += o.bounced;
        self.window_complete += o.window_complete;
        self.came_back += o.came_back;
        self.holdout_came_back += o.holdout_came_back;
    }
}

/// One contact night's funnel.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunnelNight {
    pub night: NaiveDate,
    pub funnel: Funnel,
}

/// What tonight's run decided for a campaign: the run manifest's plan and the ledger's
/// deliveries of `as_of`. Not part of any result yet: its windows start tonight.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tonight {
    pub picked: u64,
    pub held_out: u64,
    pub sent: u64,
    /// Accepted by the provider (the ledger's `delivered` of tonight).
    pub delivered: u64,
    /// (reason, recipients) not messaged tonight: suppressed or deferred.
    pub not_sent: Vec<(String, u64)>,
}

/// One campaign: its funnel over the contact nights whose attribution windows are complete
/// (the customers of its results), the nights still running, tonight's plan, and its
/// results against the holdout (`campaign_results`). Rates, uplift and its interval are
/// fractions; `roi` is (incremental revenue - cost) / cost, `None` when cost is zero.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CampaignResult {
    pub campaign: String,
    /// `campaign_funnel` summed over the contact nights whose windows are complete.
    pub funnel: Funnel,
    /// The first and last of those nights; `None` when no night is complete yet.
    pub nights: Option<(NaiveDate, NaiveDate)>,
    /// The contact nights whose windows are still running, oldest first.
    pub in_progress_nights: Vec<FunnelNight>,
    /// Tonight's decisions, when the run manifest has a plan for this campaign.
    pub tonight: Option<Tonight>,
    pub reactivated: u64,
    pub holdout_reactivated: u64,
    pub rate: f64,
    pub holdout_rate: f64,
    pub uplift: f64,
    /// Newcombe's 95% interval; None when there are too few to tell (see `note`).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// `campaign_results.note` of the finished windows: "too few to tell", or "in
    /// progress" when no window has finished yet; None with an interval.
    pub note: Option<String>,
    /// The holdout 80% power needs to detect the observed uplift, when it is bigger.
    pub holdout_needed: Option<u64>,
    /// Customers (both arms) whose attribution window is still running: not counted yet.
    pub in_progress: u64,
    /// Intention to treat (everyone assigned, messaged or not): uplift and interval.
    pub itt_uplift: Option<f64>,
    pub itt_ci: Option<(f64, f64)>,
    pub revenue: f64,
    pub incremental_revenue: f64,
    pub cost: f64,
    pub roi: Option<f64>,
}

/// One week of `churn_kpis` for every customer (dimension 'all').
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChurnWeek {
    pub week_start: NaiveDate,
    pub week_end: NaiveDate,
    pub active: u64,
    pub new_lapses: u64,
    /// new_lapses / active; `None` with no active customer.
    pub churn_rate: Option<f64>,
    pub revenue_at_risk: f64,
    /// `None` when the lifetime-value model was not fitted.
    pub clv_at_risk: Option<f64>,
    pub won_back: u64,
    pub holdout: u64,
    pub natural_returns: u64,
    /// Every holdout decision of the week has had its full attribution window.
    pub complete: bool,
}

/// One value grade over the 26 weeks of `churn_kpis`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChurnGrade {
    pub grade: String,
    /// Active on the eve of the latest week.
    pub active: u64,
    pub new_lapses: u64,
    /// All the weeks' new lapses / all the weeks' active customers (the weekly mean).
    pub churn_rate: Option<f64>,
    pub revenue_at_risk: f64,
    pub clv_at_risk: Option<f64>,
    pub won_back: u64,
}

/// How churn is going: the weeks oldest first, and the grades.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Churn {
    pub weeks: Vec<ChurnWeek>,
    pub grades: Vec<ChurnGrade>,
}

/// Why tonight's lapsed customers left, from `winback_treatment`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reasons {
    /// The alert dates of the lapses covered (first, last) and how many.
    pub first_alert: Option<NaiveDate>,
    pub last_alert: Option<NaiveDate>,
    pub customers: u64,
    /// (grade, reason, customers)
    pub by_grade: Vec<(String, String, u64)>,
    /// The reasons of `by_grade` that are the company's (`reason_owner = 'company'`): a
    /// stated reason may be the customer's, a competitor's or an objective one.
    #[serde(default)]
    pub company_reasons: Vec<String>,
    /// (value level, reason owner, treatment, customers): the cells of the treatment matrix.
    pub matrix: Vec<(String, String, String, u64)>,
    /// Customers SLTV left out (their cell has a campaign, but winning them back is not
    /// expected to cover its cost), and those it kept with the sum of their SLTV.
    pub sltv_left_out: u64,
    pub sltv_kept: u64,
    pub sltv_expected: f64,
}

/// Won-back or naturally returning customers, from `reactivated_customers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StayRow {
    /// `won_back` or `natural`.
    pub kind: String,
    pub customers: u64,
    /// Customers whose 90 (180) days after the return have elapsed, and their mean revenue.
    pub complete_90: u64,
    pub revenue_90: Option<f64>,
    pub complete_180: u64,
    pub revenue_180: Option<f64>,
    pub purchases_since: f64,
    pub relapsed: u64,
    /// relapsed / customers with a rhythm; `None` without any.
    pub relapse_rate: Option<f64>,
    pub first_contact: Option<NaiveDate>,
    pub last_contact: Option<NaiveDate>,
    pub first_return: Option<NaiveDate>,
}

/// Do the won-back stay: won back first, then the natural returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stay {
    pub rows: Vec<StayRow>,
}

/// The best customers tonight (`vip_customers`) and the thank-you campaigns' results
/// (`vip_results`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Vip {
    /// Active VIPs tonight, of them grade A, in the top CLV share, in their cool-down.
    pub vips: u64,
    pub grade_a: u64,
    pub top_clv: u64,
    pub in_cooldown: u64,
    /// VIPs thanked at least once (a delivered thank-you).
    pub recognised_ever: u64,
    /// One row per recognition campaign and window state, finished first.
    pub rows: Vec<VipRow>,
    /// The recognition campaigns' funnels of this run (moved here from `campaigns`).
    pub funnels: Vec<CampaignResult>,
}

/// One row of `vip_results`. Rates and the difference are fractions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VipRow {
    pub campaign: String,
    /// Every turn's window of `vip_results_days` has elapsed.
    pub complete: bool,
    pub first_turn: Option<NaiveDate>,
    pub last_turn: Option<NaiveDate>,
    pub recognised: u64,
    pub holdout: u64,
    pub lapsed: u64,
    pub holdout_lapsed: u64,
    pub lapse_rate: Option<f64>,
    pub holdout_lapse_rate: Option<f64>,
    /// lapse_rate - holdout_lapse_rate (below 0: the recognised lapse less).
    pub difference: Option<f64>,
    /// Newcombe's 95% interval of the difference; None with a note.
    pub ci: Option<(f64, f64)>,
    /// "too few to tell" or "in progress".
    pub note: Option<String>,
}

/// Valuable customers not yet lapsed who show a warning (`at_risk_customers`), by grade.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AtRisk {
    /// One row per grade (A, B), in grade order.
    pub rows: Vec<AtRiskRow>,
}

/// One grade's customers at risk, by the warning named first (complaint, slowing rhythm,
/// P(alive) drop), and how many of them show more than one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AtRiskRow {
    pub grade: String,
    pub customers: u64,
    pub complaint: u64,
    pub slowing: u64,
    pub p_alive_drop: u64,
    pub several: u64,
}

/// The call list's calls (`call_results`), one row per campaign.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Calls {
    pub rows: Vec<CallRow>,
}

/// One campaign's calls: on the lists, tonight's among them, with an outcome recorded,
/// reached, came back within the attribution window, and their revenue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallRow {
    pub campaign: String,
    pub listed: u64,
    pub tonight: u64,
    pub recorded: u64,
    pub reached: u64,
    pub came_back: u64,
    pub revenue: f64,
}

/// The run manifest, flattened for reading.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ManifestView {
    pub run_id: String,
    pub status: String,
    pub seconds: f64,
    /// (source, location, rows)
    pub inputs: Vec<(String, String, u64)>,
    /// (stage, rows, seconds)
    pub stages: Vec<(String, u64, f64)>,
    /// (reason, rows)
    pub quarantine: Vec<(String, u64)>,
    /// (model, one-line summary)
    pub models: Vec<(String, String)>,
    /// Tonight's spend per campaign with a budget: (campaign, share of `[budget]`, limit,
    /// spent, of it reallocated from unused shares).
    #[serde(default)]
    pub budget: Vec<(String, Option<f64>, f64, f64, f64)>,
}
