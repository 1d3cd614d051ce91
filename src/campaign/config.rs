//! `[campaigns.NAME]` in the pipeline file: raw serde types (unknown keys rejected), then
//! resolution into validated campaigns with compiled templates. Every problem is
//! collected and reported at once, each naming its campaign and step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use super::sms::{SMS_FIELD_ESTIMATE, estimate_rendered, sms_segments};
use super::template::{PLANNER_FIELDS, Part, StepTemplates, TemplateSources};
use crate::channel_rules::ChannelRules;
pub use crate::config::campaigns::{OnUnknown, RawCampaign, RawStep};
use crate::message::Medium;

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
    pub steps: Vec<Step>,
}

/// A validated step with its compiled templates.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based position in the sequence.
    pub number: u32,
    pub day: u32,
    pub channel: String,
    pub medium: Medium,
    pub only_if_no_purchase: bool,
    pub templates: Arc<StepTemplates>,
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
        if let Some(step) = resolve_step(number, raw_step, ctx, &mut step_problems) {
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
        steps,
    })
}

fn resolve_step(
    number: u32,
    raw: &RawStep,
    ctx: &CampaignContext<'_>,
    problems: &mut Vec<String>,
) -> Option<Step> {
    let medium = match ctx.channels.get(&raw.channel) {
        Some(rules) => Some(rules.medium),
        None => {
            problems.push(format!(
                "channel {:?} is not a [channels.*] table",
                raw.channel
            ));
            None
        }
    };
    let sources = template_sources(raw, ctx.base_dir, problems);
    if let Some(medium) = medium {
        check_parts_for_medium(medium, &sources, problems);
    }
    let templates = match StepTemplates::compile(&sources) {
        Ok(t) => Some(t),
        Err(errors) => {
            for e in errors {
                problems.push(format!("template {e}"));
            }
            None
        }
    };
    Some(Step {
        number,
        day: raw.day,
        channel: raw.channel.clone(),
        medium: medium?,
        only_if_no_purchase: raw.only_if_no_purchase.unwrap_or(number > 1),
        templates: Arc::new(templates?),
    })
}

/// A step's template texts, each given inline or read from its `*_file` (relative to
/// `base_dir`); both at once, or a file that cannot be read, is a problem.
fn template_sources(raw: &RawStep, base_dir: &Path, problems: &mut Vec<String>) -> TemplateSources {
    let mut sources = TemplateSources::default();
    let pairs = [
        (Part::Subject, &raw.subject, &raw.subject_file),
        (Part::Html, &raw.html, &raw.html_file),
        (Part::Text, &raw.text, &raw.text_file),
        (Part::UnsubscribeUrl, &raw.unsubscribe_url, &None),
        (Part::UnsubscribeMailto, &raw.unsubscribe_mailto, &None),
    ];
    for (part, inline, file) in pairs {
        match (inline, file) {
            (Some(text), Some(_)) => {
                problems.push(format!(
                    "give either {key} or {key}_file, not both",
                    key = part.key()
                ));
                sources.parts.insert(part, text.clone());
            }
            (Some(text), None) => {
                sources.parts.insert(part, text.clone());
            }
            (None, Some(path)) => match std::fs::read_to_string(base_dir.join(path)) {
                Ok(text) => {
                    sources.parts.insert(part, text);
                }
                Err(e) => {
                    problems.push(format!("{}_file {path:?} cannot be read: {e}", part.key()))
                }
            },
            (None, None) => {}
        }
    }
    sources
}

/// The parts a step of `medium` must have (an e-mail: subject, text and unsubscribe
/// link) and, for sms, the e-mail-only parts it must not have.
fn check_parts_for_medium(medium: Medium, sources: &TemplateSources, problems: &mut Vec<String>) {
    let has = |p: Part| sources.parts.contains_key(&p);
    let need: &[Part] = match medium {
        Medium::Email => &[Part::Subject, Part::Text, Part::UnsubscribeUrl],
        Medium::Sms => &[Part::Text],
    };
    for p in need.iter().filter(|p| !has(**p)) {
        let or_file = match p {
            Part::UnsubscribeUrl | Part::UnsubscribeMailto => String::new(),
            _ => format!(" (inline or {}_file)", p.key()),
        };
        problems.push(format!(
            "an {} step needs {}{or_file}",
            medium.as_str(),
            p.key()
        ));
    }
    if medium == Medium::Sms {
        for p in [
            Part::Subject,
            Part::Html,
            Part::UnsubscribeUrl,
            Part::UnsubscribeMailto,
        ] {
            if has(p) {
                problems.push(format!(
                    "{} is for e-mail; an sms step has only text",
                    p.key()
                ));
            }
        }
    }
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
            for (_, vars) in step.templates.variables() {
                out.extend(vars);
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
            for (part, vars) in step.templates.variables() {
                for var in vars {
                    let planner = PLANNER_FIELDS.contains(&var.as_str())
                        && !(part == Part::UnsubscribeUrl && var == "unsubscribe_url");
                    if !planner && !columns.contains(var.as_str()) {
                        problems.push(format!(
                            "campaign {} step {}: template {} uses {var:?}, which audience {} does not have (columns: {})",
                            self.name,
                            step.number,
                            part.key(),
                            self.audience,
                            audience_columns.join(", ")
                        ));
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
        for step in self.steps.iter().filter(|s| s.medium == Medium::Sms) {
            let Some(text) = step.templates.source(Part::Text) else {
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
