//! Validation of the raw pipeline file into the resolved types the engine runs from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

pub use super::file_format::FileFormat;
use super::names::is_identifier;
use super::raw::{RawDelivery, RawOutput, RawPipeline, RawStage};
pub use super::sources::{ColumnKind, ColumnSpec, OPT_OUTS_SOURCE, Source};
use super::sources::{relative_to, sources};
use super::{overrides, variables::Variable};
use crate::error::ConfigError;

/// What the command line changes about a pipeline file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--set KEY=VALUE`, by dotted path.
    pub set: Vec<(String, String)>,
    /// `--input NAME=URL`: replaces a source's URL.
    pub inputs: Vec<(String, String)>,
    /// `--output URL`.
    pub output: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    pub timezone: Tz,
    pub sql_dir: PathBuf,
    /// `memory_limit_mib`: the operators' memory limit when the command line gives none.
    pub memory_limit_mib: Option<usize>,
    /// Where the SQL stages run (`engine`, `--engine`).
    pub engine: super::Engine,
    /// `work_location`: where a Ballista run keeps intermediate tables.
    pub work_location: Option<String>,
    pub sources: Vec<Source>,
    pub variables: BTreeMap<String, Variable>,
    pub stages: BTreeMap<String, StageSpec>,
    /// Model stage settings, read by the model stages themselves.
    /// `[models.NAME]`, validated.
    pub models: BTreeMap<String, super::ModelSpec>,
    pub output: OutputSpec,
    /// name -> SQL returning one value, reported in the summary and manifest.
    pub metrics: std::collections::BTreeMap<String, String>,
    /// `[channels.NAME]`, each checked (no secrets are read until a run sends).
    pub channels: BTreeMap<String, ConfiguredChannel>,
    /// `[campaigns.NAME]` as written: resolved once the stages are known (`Setup`).
    pub campaigns: BTreeMap<String, crate::config::campaigns::RawCampaign>,
    pub delivery: Delivery,
    /// `[budget]`: the run's budget split across the campaigns.
    pub budget: Option<super::budget::BudgetSplit>,
    /// `[http]`: `winback listen`.
    pub http: super::listen::HttpSettings,
    /// `[feedback]`: provider event webhooks.
    pub feedback: super::listen::FeedbackSettings,
    /// `[staff] members`: who calls (trimmed, each once, in the file's order).
    pub staff: Vec<String>,
}

/// A checked `[channels.NAME]`.
#[derive(Debug, Clone)]
pub struct ConfiguredChannel {
    pub config: crate::channels::ChannelConfig,
    pub settings: crate::channels::ChannelSettings,
}

/// A channel that reaches people needs a secret to sign unsubscribe tokens with: without
/// one, anyone who knows customer ids could unsubscribe them. Only the file channel (its
/// output goes to the user's own tools) may do without.
fn token_secret_problems(
    delivery: &Delivery,
    channels: &BTreeMap<String, ConfiguredChannel>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for var in &delivery.token_secret_envs {
        if let Err(e) = crate::channels::settings::check_env_name(var, "token_secret_env") {
            problems.push(format!("delivery.{e}"));
        }
    }
    let reaching = channels
        .iter()
        .find(|(_, c)| !matches!(c.config, crate::channels::ChannelConfig::File(_)));
    if let (true, Some((name, _))) = (delivery.token_secret_envs.is_empty(), reaching) {
        problems.push(format!(
            "delivery.token_secret_env is not set, but channel {name:?} sends to real recipients: \
             name the environment variable holding the secret unsubscribe tokens are signed with \
             (token_secret_env = \"WINBACK_TOKEN_SECRET\", at least 32 bytes, e.g. `openssl rand -hex 32`)"
        ));
    }
    problems
}

/// `[delivery]` with its defaults.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub frequency_cap: crate::config::campaigns::FrequencyCap,
    pub time_budget: std::time::Duration,
    /// The variables holding the unsubscribe-token secrets, newest first; empty = none
    /// configured (only the file channel may then run, on the public development secret).
    pub token_secret_envs: Vec<String>,
    /// A step deferred on this many nights in a row is reported (0 = never).
    pub warn_deferred_nights: u32,
}

#[derive(Debug, Clone, Default)]
pub struct StageSpec {
    pub columns: Vec<String>,
    pub description: Option<String>,
    pub unique: Vec<String>,
    pub not_null: Vec<String>,
    pub accepted_values: BTreeMap<String, Vec<String>>,
    /// Maintained per key across nights (see `stage::incremental`).
    pub incremental_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub url: String,
    pub format: FileFormat,
    pub tables: Option<Vec<String>>,
    pub formats: BTreeMap<String, FileFormat>,
}

impl OutputSpec {
    /// The format `table` is written in: its own (`output.formats`), else `output.format`.
    pub fn format_of(&self, table: &str) -> FileFormat {
        self.formats.get(table).copied().unwrap_or(self.format)
    }

    /// Whether `table` is an output: listed in `output.tables`, or every table when none
    /// are listed.
    pub fn lists(&self, table: &str) -> bool {
        self.tables
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == table))
    }
}

/// Read, override and validate a pipeline file, reporting every problem at once.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Pipeline, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_err = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let toml_err = |e: toml::de::Error| parse_err(e.to_string().trim_end().to_string());
    let raw: RawPipeline = if opts.set.is_empty() {
        // Straight from the text, so errors point at the line and column.
        toml::from_str(&text).map_err(toml_err)?
    } else {
        let mut tree: toml::Value = toml::from_str(&text).map_err(toml_err)?;
        for (key, value) in &opts.set {
            overrides::apply(&mut tree, key, value)?;
        }
        tree.try_into().map_err(toml_err)?
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    resolve(raw, path, &base, opts)
}

fn resolve(
    raw: RawPipeline,
    path: &Path,
    base: &Path,
    opts: &LoadOptions,
) -> Result<Pipeline, ConfigError> {
    let mut problems = Vec::new();
    let timezone = timezone(raw.timezone.as_deref(), &mut problems);
    let sources = sources(&raw.sources, base, &opts.inputs, &mut problems);
    let variables = variables(&raw.variables, &mut problems);
    let stages = stage_specs(&raw.stages);
    let (output_format, formats) = output_formats(&raw.output, &mut problems);
    let models = super::models::resolve(&raw.models, &variables, &mut problems);
    let channels = channels(&raw.channels, &mut problems);
    let delivery = delivery(&raw.delivery);
    let budget = super::budget::resolve(raw.budget.as_ref(), &raw.campaigns, &mut problems);
    problems.extend(token_secret_problems(&delivery, &channels));
    let http = super::listen::http(&raw.http, &mut problems);
    let feedback = super::listen::feedback(&raw.feedback, &mut problems);
    let mut staff: Vec<String> = Vec::new();
    for member in raw.staff.members.iter().map(|m| m.trim().to_string()) {
        if member.is_empty() || staff.contains(&member) {
            problems.push(format!(
                "staff.members: {member:?} is empty or listed twice"
            ));
        } else {
            staff.push(member);
        }
    }
    let output_url = match (&opts.output, &raw.output.url) {
        (Some(cli), _) => cli.clone(),
        (None, Some(url)) => relative_to(base, url),
        (None, None) => "out".to_string(),
    };
    let engine = match raw.engine.as_ref() {
        None => super::Engine::Local,
        Some(text) => super::Engine::parse(text).unwrap_or_else(|e| {
            problems.push(format!("engine: {e}"));
            super::Engine::Local
        }),
    };
    let work_location = raw.work_location.as_deref().map(|w| relative_to(base, w));
    let source_urls: Vec<(&str, &str)> = sources
        .iter()
        .map(|s| (s.name.as_str(), s.url.as_str()))
        .collect();
    problems.extend(super::engine::problems(
        &engine,
        work_location.as_deref(),
        &output_url,
        &source_urls,
    ));
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "{} problem(s):\n  - {}",
                problems.len(),
                problems.join("\n  - ")
            ),
        });
    }
    Ok(Pipeline {
        name: raw.name,
        description: raw.description,
        file: path.to_path_buf(),
        timezone,
        sql_dir: PathBuf::from(relative_to(
            base,
            raw.sql_dir.as_deref().unwrap_or("../sql"),
        )),
        memory_limit_mib: raw.memory_limit_mib,
        engine,
        work_location,
        sources,
        variables,
        stages,
        models,
        output: OutputSpec {
            url: output_url,
            format: output_format,
            tables: raw.output.tables,
            formats,
        },
        metrics: raw.metrics,
        channels,
        campaigns: raw.campaigns,
        delivery,
        budget,
        http,
        feedback,
        staff,
    })
}

/// `timezone`, UTC by default (and after a problem).
fn timezone(name: Option<&str>, problems: &mut Vec<String>) -> Tz {
    match name.unwrap_or("UTC").parse::<Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            problems.push(format!(
                "timezone '{}' is not an IANA timezone name such as Europe/Berlin",
                name.unwrap_or_default()
            ));
            Tz::UTC
        }
    }
}

/// `[variables]`; `as_of` is reserved.
fn variables(
    raw: &BTreeMap<String, toml::Value>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, Variable> {
    let mut variables = BTreeMap::new();
    for (name, value) in raw {
        if name == "as_of" {
            problems.push("variables.as_of is reserved: use --as-of".into());
            continue;
        }
        match Variable::from_toml(value) {
            Ok(v) => {
                variables.insert(name.clone(), v);
            }
            Err(e) => problems.push(format!("variables.{name}: {e}")),
        }
    }
    variables
}

/// `[stages.NAME]`: what the checks of each stage's output need.
fn stage_specs(raw: &BTreeMap<String, RawStage>) -> BTreeMap<String, StageSpec> {
    raw.iter()
        .map(|(name, s)| {
            let spec = StageSpec {
                columns: s.columns.clone(),
                description: s.description.clone(),
                unique: s.unique.clone(),
                not_null: s.not_null.clone(),
                accepted_values: s.accepted_values.clone(),
                incremental_key: s.incremental_key.clone(),
            };
            (name.clone(), spec)
        })
        .collect()
}

/// `output.format` (Parquet by default) and the formats of single tables (`output.formats`).
fn output_formats(
    raw: &RawOutput,
    problems: &mut Vec<String>,
) -> (FileFormat, BTreeMap<String, FileFormat>) {
    let mut output_format = FileFormat::Parquet;
    if let Some(f) = &raw.format {
        match FileFormat::parse(f, true) {
            Ok(f) => output_format = f,
            Err(e) => problems.push(format!("output.format: {e}")),
        }
    }
    let mut formats = BTreeMap::new();
    for (table, f) in &raw.formats {
        match FileFormat::parse(f, true) {
            Ok(f) => {
                formats.insert(table.clone(), f);
            }
            Err(e) => problems.push(format!("output.formats.{table}: {e}")),
        }
    }
    (output_format, formats)
}

/// `[channels.NAME]`, each parsed as its type and checked.
fn channels(
    raw: &BTreeMap<String, toml::Value>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, ConfiguredChannel> {
    let mut channels = BTreeMap::new();
    for (name, value) in raw {
        if !is_identifier(name) {
            problems.push(format!(
                "channels.{name:?}: a channel's name must be a lowercase identifier"
            ));
            continue;
        }
        let parsed: Result<crate::channels::ChannelConfig, _> = value.clone().try_into();
        match parsed {
            Ok(config) => match config.validate(name) {
                Ok(settings) => {
                    channels.insert(name.clone(), ConfiguredChannel { config, settings });
                }
                Err(e) => problems.push(format!("channels.{name}: {e}")),
            },
            Err(e) => problems.push(format!("channels.{name}: {}", e.to_string().trim_end())),
        }
    }
    channels
}

/// `[delivery]` with its defaults: the default frequency cap, an hour of time budget.
fn delivery(raw: &RawDelivery) -> Delivery {
    let default_cap = crate::config::campaigns::FrequencyCap::default();
    Delivery {
        frequency_cap: crate::config::campaigns::FrequencyCap {
            max_messages: raw.frequency_cap.unwrap_or(default_cap.max_messages),
            days: raw.frequency_cap_days.unwrap_or(default_cap.days),
        },
        time_budget: std::time::Duration::from_secs(raw.time_budget_secs.unwrap_or(3600)),
        token_secret_envs: raw
            .token_secret_env
            .clone()
            .map(super::raw::OneOrMany::into_vec)
            .unwrap_or_default(),
        warn_deferred_nights: raw.warn_deferred_nights.unwrap_or(3),
    }
}
