//! `[campaigns.NAME]` and the frequency cap as written in the pipeline file: plain serde
//! types (unknown keys rejected). `crate::campaign` resolves them into validated campaigns
//! with compiled templates once the stages are known.

use serde::{Deserialize, Serialize};

/// One `[campaigns.NAME]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaign {
    /// The SQL stage (table) whose rows are this campaign's audience, one per customer.
    pub audience: String,
    /// Higher wins when a customer is in several campaigns' audiences on one night.
    #[serde(default)]
    pub priority: i64,
    pub holdout_share: Option<f64>,
    /// Most this campaign may spend per run (sum of its messages' cost).
    pub budget: Option<f64>,
    pub value_column: Option<String>,
    #[serde(default)]
    pub on_unknown: OnUnknown,
    pub description: Option<String>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

/// One `[[campaigns.NAME.steps]]` table as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Days after entry (the lapse's alert date) when this step is due.
    pub day: u32,
    pub channel: String,
    /// Default: true for steps after the first.
    pub only_if_no_purchase: Option<bool>,
    pub subject: Option<String>,
    pub subject_file: Option<String>,
    pub html: Option<String>,
    pub html_file: Option<String>,
    pub text: Option<String>,
    pub text_file: Option<String>,
    pub unsubscribe_url: Option<String>,
    pub unsubscribe_mailto: Option<String>,
}

/// What to do with a step whose earlier attempt ended `unknown` (maybe delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnknown {
    /// Never risk sending twice: the step is not planned again.
    #[default]
    Skip,
    /// Plan it again (same idempotency key, so a provider that dedups drops the copy).
    Resend,
}

/// At most `max_messages` per customer within `days` days, across all campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max_messages: u32,
    pub days: u32,
}

impl Default for FrequencyCap {
    fn default() -> FrequencyCap {
        FrequencyCap {
            max_messages: 1,
            days: 7,
        }
    }
}
