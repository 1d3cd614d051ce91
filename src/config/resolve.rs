//! Validation of the raw pipeline file into the resolved types the engine runs from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use super::names::is_identifier;
use super::raw::{RawDelivery, RawOutput, RawPipeline, RawSource, RawStage};
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
}

/// A checked `[channels.NAME]`.
#[derive(Debug, Clone)]
pub struct ConfiguredChannel {
    pub config: crate::channels::ChannelConfig,
    pub settings: crate::channels::ChannelSettings,
}

/// `[delivery]` with its defaults.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub frequency_cap: crate::config::campaigns::FrequencyCap,
    pub time_budget: std::time::Duration,
    pub token_secret_env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Csv,
    Jsonl,
}

impl FileFormat {
    fn parse(s: &str, allow_jsonl: bool) -> Result<Self, String> {
        match s {
            "parquet" => Ok(FileFormat::Parquet),
            "csv" => Ok(FileFormat::Csv),
            "jsonl" if allow_jsonl => Ok(FileFormat::Jsonl),
            other => Err(format!(
                "unknown format '{other}' (expected parquet, csv{})",
                if allow_jsonl { " or jsonl" } else { "" }
            )),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
        }
    }
}

/// How a source column is typed and checked row by row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// An identifier: strings or integers, read as text; null or empty is a row problem.
    Id,
    Text,
    /// A timestamp or date, or text that parses as one.
    Timestamp,
    /// Any numeric type, or text that parses as a number, read as a 64-bit float.
    Number,
    Integer,
    Boolean,
}

impl ColumnKind {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "id" => ColumnKind::Id,
            "text" => ColumnKind::Text,
            "timestamp" => ColumnKind::Timestamp,
            "number" => ColumnKind::Number,
            "integer" => ColumnKind::Integer,
            "boolean" => ColumnKind::Boolean,
            other => {
                return Err(format!(
                    "unknown column type '{other}' (expected id, text, timestamp, number, integer or boolean)"
                ));
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// The canonical name SQL stages use.
    pub name: String,
    /// The name in the files.
    pub file_name: String,
    pub kind: ColumnKind,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub url: String,
    pub format: FileFormat,
    pub columns: Vec<ColumnSpec>,
    pub time_column: Option<String>,
    pub duplicate_key: Vec<String>,
    pub optional: bool,
    /// Canonical names of columns with personal data, masked in quarantine records.
    pub personal: Vec<String>,
    pub delimiter: u8,
}

#[derive(Debug, Clone, Default)]
pub struct StageSpec {
    pub columns: Vec<String>,
    pub description: Option<String>,
    pub unique: Vec<String>,
    pub not_null: Vec<String>,
    pub accepted_values: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub url: String,
    pub format: FileFormat,
    pub tables: Option<Vec<String>>,
    pub formats: BTreeMap<String, FileFormat>,
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

/// `[sources.NAME]`, with the URLs `--input NAME=URL` replaces.
fn sources(
    raw: &BTreeMap<String, RawSource>,
    base: &Path,
    inputs: &[(String, String)],
    problems: &mut Vec<String>,
) -> Vec<Source> {
    let mut sources = Vec::new();
    for (name, src) in raw {
        match resolve_source(name, src, base) {
            Ok(s) => sources.push(s),
            Err(mut e) => problems.append(&mut e),
        }
    }
    for (name, url) in inputs {
        match sources.iter_mut().find(|s| &s.name == name) {
            Some(s) => s.url = url.clone(),
            None => problems.push(format!(
                "--input {name}: no source named '{name}' (sources: {})",
                raw.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
    sources
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
        token_secret_env: raw.token_secret_env.clone(),
    }
}

/// The source campaigns read opt-outs from. Never cut by `as_of`: an unsubscribe is
/// honoured by every send after it, whatever `as_of` the run is for.
pub const OPT_OUTS_SOURCE: &str = "unsubscribes";

fn resolve_source(name: &str, src: &RawSource, base: &Path) -> Result<Source, Vec<String>> {
    let mut problems = Vec::new();
    let at = |m: String| format!("sources.{name}: {m}");
    if !is_identifier(name) {
        problems.push(at(
            "source names must be lowercase identifiers (a-z, 0-9, _)".into(),
        ));
    }
    let format = match src.format.as_deref() {
        None => FileFormat::Parquet,
        Some(f) => FileFormat::parse(f, false).unwrap_or_else(|e| {
            problems.push(at(e));
            FileFormat::Parquet
        }),
    };
    let mut columns = Vec::new();
    for (col, decl) in &src.columns {
        let (kind, required) = match decl.strip_suffix('?') {
            Some(k) => (k, false),
            None => (decl.as_str(), true),
        };
        match ColumnKind::parse(kind) {
            Ok(kind) => columns.push(ColumnSpec {
                name: col.clone(),
                file_name: src.rename.get(col).cloned().unwrap_or_else(|| col.clone()),
                kind,
                required,
            }),
            Err(e) => problems.push(at(format!("columns.{col}: {e}"))),
        }
    }
    for col in src.rename.keys() {
        if !src.columns.contains_key(col) {
            problems.push(at(format!("rename.{col}: no such column in columns")));
        }
    }
    if name == OPT_OUTS_SOURCE && src.time_column.is_some() {
        problems.push(at(
            "time_column would hide from the run every opt-out made on or after its as_of \
             (a backfill with --send would message people who unsubscribed since): remove \
             it; opt-outs are honoured by every send after them, whatever the as_of"
                .into(),
        ));
    }
    if let Some(tc) = &src.time_column {
        match columns.iter().find(|c| &c.name == tc) {
            Some(c) if c.kind == ColumnKind::Timestamp => {}
            Some(_) => problems.push(at(format!("time_column '{tc}' must have type timestamp"))),
            None => problems.push(at(format!("time_column '{tc}' is not a declared column"))),
        }
    }
    for key in &src.duplicate_key {
        if !src.columns.contains_key(key) {
            problems.push(at(format!(
                "duplicate_key '{key}' is not a declared column"
            )));
        }
    }
    for col in &src.personal {
        if !src.columns.contains_key(col) {
            problems.push(at(format!("personal '{col}' is not a declared column")));
        }
    }
    let delimiter = match src.delimiter.as_deref() {
        None => b',',
        Some(d) if d.len() == 1 => d.as_bytes()[0],
        Some(d) => {
            problems.push(at(format!("delimiter '{d}' must be one character")));
            b','
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Source {
        name: name.to_string(),
        url: relative_to(base, &src.url),
        format,
        columns,
        time_column: src.time_column.clone(),
        duplicate_key: src.duplicate_key.clone(),
        optional: src.optional,
        personal: src.personal.clone(),
        delimiter,
    })
}

/// A URL stays as written; a relative path is taken relative to the pipeline file.
fn relative_to(base: &Path, url: &str) -> String {
    if url.contains("://") || Path::new(url).is_absolute() {
        url.to_string()
    } else {
        base.join(url).to_string_lossy().into_owned()
    }
}
