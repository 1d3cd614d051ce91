//! `[campaigns.NAME]` in the pipeline file: raw serde types (unknown keys rejected), then
//! resolution into validated campaigns with compiled templates. Every problem is
//! collected and reported at once, each naming its campaign and step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::sms::{SMS_FIELD_ESTIMATE, estimate_rendered, sms_segments};
use super::step::{PREFERRED, PREFERRED_CHANNEL_COLUMN, resolve_step};
use super::template::{PLANNER_FIELDS, Part};
use crate::channel_rules::ChannelRules;
pub use crate::config::campaigns::{OnUnknown, RawCampaign, RawChannel, RawStep};
use crate::message::Medium;

pub use super::step::{Step, StepChannel};

/// Holdout share when the campaign does not say.
pub const DEFAULT_HOLDOUT_SHARE: f64 = 0.10;
/// Audience column that ranks recipients for a budget cut when the campaign does not say.
pub const DEFAULT_VALUE_COLUMN: &str = "sltv";
/// Columns every audience must have besides the value column.
pub const REQUIRED_AUDIENCE_COLUMNS: [&str; 2] = ["customer_id", "entry_date"];

/// A validated campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub audience: String,
    pub priority: i64,
    pub holdout_share: f64,
    pub budget: Option<f64>,
    pub value_column: String,
    pub on_unknown: OnUnknown,
    pub description: Option<String>,
    /// At most this many calls per night, to the highest-value customers due at a step
    /// with a call channel (both arms: the holdout takes its places too); None = no limit.
    pub call_top: Option<u32>,
    /// After the last step, the last step again every this many days (step numbers last
    /// + 1, last + 2, ...) while the customer stays in the audience; None: no repeats.
    pub repeat_every_days: Option<u32>,
    pub steps: Vec<Step>,
}

/// What campaign resolution checks against.
#[derive(Debug, Clone, Copy)]
pub struct CampaignContext<'a> {
    /// Folder of the pipeline file: `*_file` paths are relative to it.
    pub base_dir: &'a Path,
    /// Every table a campaign may use as audience (the SQL stages).
    pub known_tables: &'a [String],
    pub channels: &'a BTreeMap<String, ChannelRules>,
}

/// Invalid `[campaigns]`: every problem found, one line each.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid [campaigns]:\n  - {}", problems.join("\n  - "))]
pub struct CampaignConfigError {
    pub problems: Vec<String>,
}

/// Resolve every campaign; all problems of all campaigns are reported together.
pub fn resolve_campaigns(
    raw: &BTreeMap<String, RawCampaign>,
    ctx: &CampaignContext<'_>,
) -> Result<Vec<Campaign>, CampaignConfigError> {
    let mut problems = Vec::new();
    let mut campaigns = Vec::new();
    for (name, campaign) in raw {
        if let Some(c) = resolve_campaign(name, campaign, ctx, &mut problems) {
            campaigns.push(c);
        }
    }
    if problems.is_empty() {
        Ok(campaigns)
    } else {
        Err(CampaignConfigError { problems })
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn resolve_campaign(
    name: &str,
    raw: &RawCampaign,
    ctx: &CampaignContext<'_>,
    problems: &mut Vec<String>,
) -> Option<Campaign> {
    let before = problems.len();
    let mut problem = |msg: String| problems.push(format!("campaign {name}: {msg}"));
    if !valid_name(name) {
        problem(
            "the name must be a lowercase identifier (a-z, 0-9, _; starting with a letter)".into(),
        );
    }
    if !ctx.known_tables.iter().any(|t| t == &raw.audience) {
        problem(format!(
            "audience {:?} is not a known table (add sql/audiences/{}.sql)",
            raw.audience, raw.audience
        ));
    }
    let holdout_share = raw.holdout_share.unwrap_or(DEFAULT_HOLDOUT_SHARE);
    if !(0.0..1.0).contains(&holdout_share) {
        problem(format!(
            "holdout_share {holdout_share} must be at least 0 and below 1"
        ));
    }
    if let Some(b) = raw.budget
        && !(b.is_finite() && b >= 0.0)
    {
        problem(format!("budget {b} must be a non-negative amount"));
    }
    if raw.call_top.is_some()
        && !raw.steps.iter().any(|st| {
            st.channel
                .names()
                .iter()
                .chain(st.fallback.iter().flatten())
                .any(|c| {
                    ctx.channels
                        .get(c)
                        .is_some_and(|r| r.medium == Medium::Call)
                })
        })
    {
        problem("call_top is set but no step lists a channel of medium \"call\"".into());
    }
    if raw.repeat_every_days == Some(0) {
        problem("repeat_every_days must be at least 1 (leave it out for no repeats)".into());
    }
    if raw.steps.is_empty() {
        problem("has no steps: add at least one [[campaigns.NAME.steps]]".into());
    }
    let mut steps = Vec::new();
    let mut previous_day = 0;
    for (i, raw_step) in raw.steps.iter().enumerate() {
        let number = i as u32 + 1;
        if i > 0 && raw_step.day < previous_day {
            problem(format!(
                "step {number}: day {} comes before the previous step's day {previous_day}",
                raw_step.day
            ));
        }
        previous_day = raw_step.day;
        let mut step_problems = Vec::new();
        if let Some(step) = resolve_step(
            number,
            raw_step,
            ctx.base_dir,
            ctx.channels,
            &mut step_problems,
        ) {
            steps.push(step);
        }
        for p in step_problems {
            problem(format!("step {number}: {p}"));
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(Campaign {
        name: name.to_string(),
        audience: raw.audience.clone(),
        priority: raw.priority,
        holdout_share,
        budget: raw.budget,
        value_column: raw
            .value_column
            .clone()
            .unwrap_or_else(|| DEFAULT_VALUE_COLUMN.to_string()),
        on_unknown: raw.on_unknown,
        description: raw.description.clone(),
        call_top: raw.call_top,
        repeat_every_days: raw.repeat_every_days,
        steps,
    })
}

impl Campaign {
    /// The audience columns planning and rendering read: the required ones, the value
    /// column, the tags (`segment`, `treatment`) and every field a template uses. Other
    /// columns of the audience are never loaded.
    pub fn audience_fields(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = REQUIRED_AUDIENCE_COLUMNS
            .iter()
            .chain(&["segment", "treatment"])
            .map(|c| c.to_string())
            .collect();
        out.insert(self.value_column.clone());
        for step in &self.steps {
            if step.preferred {
                out.insert(PREFERRED_CHANNEL_COLUMN.to_string());
            }
            for templates in step.templates.values() {
                for (_, vars) in templates.variables() {
                    out.extend(vars);
                }
            }
        }
        out
    }

    /// Problems with this campaign against its audience's columns: the audience must have
    /// `customer_id`, `entry_date` and the value column, and every template variable must
    /// be an audience column or one the planner adds ([`PLANNER_FIELDS`]).
    pub fn validate_fields(&self, audience_columns: &[String]) -> Vec<String> {
        let columns: BTreeSet<&str> = audience_columns.iter().map(String::as_str).collect();
        let mut problems = Vec::new();
        for required in REQUIRED_AUDIENCE_COLUMNS
            .iter()
            .copied()
            .chain([self.value_column.as_str()])
        {
            if !columns.contains(required) {
                problems.push(format!(
                    "campaign {}: audience {} has no column {required:?}",
                    self.name, self.audience
                ));
            }
        }
        for step in &self.steps {
            if step.preferred && !columns.contains(PREFERRED_CHANNEL_COLUMN) {
                problems.push(format!(
                    "campaign {} step {}: channel = {PREFERRED:?} reads the customer's channel from column {PREFERRED_CHANNEL_COLUMN:?}, which audience {} does not have",
                    self.name, step.number, self.audience
                ));
            }
            for (medium, templates) in &step.templates {
                for (part, vars) in templates.variables() {
                    for var in vars {
                        let planner = PLANNER_FIELDS.contains(&var.as_str())
                            && !(part == Part::UnsubscribeUrl && var == "unsubscribe_url")
                            && !(var == "survey_url"
                                && (part == Part::SurveyUrl || !templates.has(Part::SurveyUrl)));
                        if !planner && !columns.contains(var.as_str()) {
                            problems.push(format!(
                                "campaign {} step {}: template {} uses {var:?}, which audience {} does not have (columns: {})",
                                self.name,
                                step.number,
                                step.part_key(*medium, part),
                                self.audience,
                                audience_columns.join(", ")
                            ));
                        }
                    }
                }
            }
        }
        problems
    }

    /// Warnings for SMS texts that may need more than one segment, estimated from the
    /// template's literal text plus [`SMS_FIELD_ESTIMATE`] characters per field.
    pub fn sms_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for step in &self.steps {
            let Some(text) = step
                .templates_for(Medium::Sms)
                .and_then(|t| t.source(Part::Text))
            else {
                continue;
            };
            let estimate = estimate_rendered(text);
            let (encoding, segments) = sms_segments(&estimate);
            if segments > 1 {
                warnings.push(format!(
                    "campaign {} step {}: the SMS text may need {segments} {} segments (about {} characters, counting {SMS_FIELD_ESTIMATE} per field); each segment is billed",
                    self.name,
                    step.number,
                    encoding.as_str(),
                    estimate.chars().count()
                ));
            }
        }
        warnings
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
