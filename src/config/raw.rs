//! The pipeline file exactly as written: serde types that reject unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// IANA timezone whose calendar days the pipeline counts in.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Folder holding the SQL stages, relative to the pipeline file.
    #[serde(default)]
    pub sql_dir: Option<String>,
    /// What query operators may hold, in MiB, before they spill (`--memory-limit-mib`
    /// overrides it).
    #[serde(default)]
    pub memory_limit_mib: Option<usize>,
    /// Where SQL stages run: "local" (default), "ballista-standalone" or
    /// "ballista://HOST:PORT" (`--engine` overrides it).
    #[serde(default)]
    pub engine: Option<String>,
    /// Where a Ballista run keeps its intermediate tables (Parquet); shared storage
    /// (`s3://...`) for a remote cluster. Default: a temporary local folder.
    #[serde(default)]
    pub work_location: Option<String>,
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    pub variables: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub stages: BTreeMap<String, RawStage>,
    #[serde(default)]
    pub models: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub output: RawOutput,
    /// Named figures for the run summary: name -> a SQL query returning one value.
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
    /// `[channels.NAME]`: where messages go (file outbox, SendGrid, Mailgun, Twilio, webhook).
    #[serde(default)]
    pub channels: BTreeMap<String, toml::Value>,
    /// `[campaigns.NAME]`: who gets which messages, over which nights.
    #[serde(default)]
    pub campaigns: BTreeMap<String, crate::config::campaigns::RawCampaign>,
    /// Campaign rules across all campaigns.
    #[serde(default)]
    pub delivery: RawDelivery,
    /// One budget per run split across the campaigns.
    #[serde(default)]
    pub budget: Option<super::budget::RawBudget>,
    /// `winback listen`: where it answers.
    #[serde(default)]
    pub http: super::listen::RawHttp,
    /// What provider event webhooks are checked with, and soft-bounce rules.
    #[serde(default)]
    pub feedback: super::listen::RawFeedback,
    /// `[staff]`: the team the call list's calls are shared among.
    #[serde(default)]
    pub staff: RawStaff,
}

/// `[staff]`: `members = ["Ana", "Ben"]`, the people calls are shared among (a customer's
/// own `owner` column comes first).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaff {
    #[serde(default)]
    pub members: Vec<String>,
}

/// `[delivery]`: rules across every campaign and channel.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// At most this many messages per customer in `frequency_cap_days`, across campaigns
    /// (default 1 in 7).
    #[serde(default)]
    pub frequency_cap: Option<u32>,
    #[serde(default)]
    pub frequency_cap_days: Option<u32>,
    /// Seconds all sending of one run may take; what is left then ends `failed` (default 3600).
    #[serde(default)]
    pub time_budget_secs: Option<u64>,
    /// The environment variable(s) holding the secret unsubscribe tokens are signed with:
    /// one name, or a list, newest first (rotation: new tokens use the first, all verify).
    #[serde(default)]
    pub token_secret_env: Option<OneOrMany>,
    /// Warn when a step has been deferred on this many nights in a row (default 3; 0 = never).
    #[serde(default)]
    pub warn_deferred_nights: Option<u32>,
}

/// A TOML value that is one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub url: String,
    #[serde(default)]
    pub format: Option<String>,
    /// Canonical column name -> declared type ("id", "text", "timestamp", "number",
    /// "integer", "boolean"); a trailing `?` marks the column optional.
    pub columns: BTreeMap<String, String>,
    /// Canonical column name -> name in the files.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Column whose rows at or after `as_of` fall outside the run.
    #[serde(default)]
    pub time_column: Option<String>,
    /// Columns that identify a row: exact repeats of them are quarantined as duplicates.
    #[serde(default)]
    pub duplicate_key: Vec<String>,
    /// A missing or empty location gives an empty table instead of an error.
    #[serde(default)]
    pub optional: bool,
    /// Columns holding personal data (e-mail, phone): masked in quarantine records.
    #[serde(default)]
    pub personal: Vec<String>,
    /// CSV only: field delimiter (default ",").
    #[serde(default)]
    pub delimiter: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// The documented output columns, in order; `validate` compares them with the plan.
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Columns that together identify a row (the grain).
    #[serde(default)]
    pub unique: Vec<String>,
    #[serde(default)]
    pub not_null: Vec<String>,
    #[serde(default)]
    pub accepted_values: BTreeMap<String, Vec<String>>,
    /// The column whose value alone decides each output row (`customer_id`): the stage is
    /// maintained night to night for the keys new data touches, not recomputed.
    #[serde(default)]
    pub incremental_key: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Where outputs go (a path or URL); `--output` overrides it. Default "./out".
    #[serde(default)]
    pub url: Option<String>,
    /// parquet (default), csv or jsonl.
    #[serde(default)]
    pub format: Option<String>,
    /// Tables to write; default: every stage plus `quarantine`.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Per-table format overrides.
    #[serde(default)]
    pub formats: BTreeMap<String, String>,
}
