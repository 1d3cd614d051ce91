//! The set-up every command that plans or runs a pipeline shares: the loaded pipeline, its
//! session (the one place a session is made), bound parameters, the stages found on disk
//! and the tables that exist before any stage. `run`, `validate` and `explain` start here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use datafusion::prelude::SessionContext;

use crate::campaign::{Campaign, CampaignContext, ChannelRules};
use crate::config::{self, LoadOptions, Pipeline};
use crate::engine::{self, EngineOptions, Params};
use crate::error::PipelineError;
use crate::manifest;
use crate::stage::{self, Stage, StageKind};
use crate::state::{history_table, sends_table};

/// A pipeline with its session: stages found, nothing registered from the sources yet.
pub struct Setup {
    pub pipeline: Pipeline,
    pub ctx: SessionContext,
    pub params: Params,
    pub as_of: NaiveDate,
    pub stages: Vec<Stage>,
    /// Problems found loading the stages (SQL files and `[models]`), all of them.
    pub problems: Vec<String>,
    /// SHA-256 over the pipeline file and every SQL stage.
    pub hash: String,
    /// `[campaigns]`, resolved against the stages and channels (problems in `problems`).
    pub campaigns: Vec<Campaign>,
}

/// The date a run is for when `--as-of` is not given: today in the pipeline's timezone.
pub fn today(pipeline: &Pipeline) -> NaiveDate {
    Utc::now().with_timezone(&pipeline.timezone).date_naive()
}

/// Tables that exist before any stage runs: sources, `quarantine`, `winback_runs`.
pub fn external_tables(pipeline: &Pipeline) -> BTreeSet<String> {
    let mut t: BTreeSet<String> = pipeline.sources.iter().map(|s| s.name.clone()).collect();
    t.insert("quarantine".into());
    t.insert(history_table::TABLE.into());
    t.insert(sends_table::TABLE.into());
    t
}

/// Load the pipeline file with the command line's overrides.
pub fn load(file: &Path, opts: &LoadOptions) -> Result<Pipeline, PipelineError> {
    Ok(config::load(file, opts)?)
}

impl Setup {
    /// Build the session for `pipeline` and find its stages. `as_of` defaults to today in
    /// the pipeline's timezone; `state_dir` is where `winback_runs` is read from.
    pub async fn new(
        pipeline: Pipeline,
        as_of: Option<NaiveDate>,
        engine: &EngineOptions,
        state_dir: Option<&Path>,
    ) -> Result<Setup, PipelineError> {
        let as_of = as_of.unwrap_or_else(|| today(&pipeline));
        let engine = &engine.for_pipeline(&pipeline);
        let ctx = engine::new_session(engine).await?;
        let params = Params::for_run(&pipeline, as_of);
        let (stages, problems) = stage::load_pipeline(&ctx, &pipeline);
        let files: Vec<PathBuf> = stages
            .iter()
            .filter(|s| matches!(s.kind, StageKind::Sql))
            .map(|s| s.file.clone())
            .collect();
        let hash = manifest::hash_files(
            &pipeline.file,
            &files.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
        );
        history_table::register(&ctx, state_dir).await?;
        sends_table::register(&ctx, state_dir, as_of).await?;
        let mut problems = problems;
        let campaigns = resolve_campaigns(&pipeline, &stages, &mut problems);
        Ok(Setup {
            pipeline,
            ctx,
            params,
            as_of,
            stages,
            problems,
            hash,
            campaigns,
        })
    }

    /// Tables that exist before any stage runs.
    pub fn external_tables(&self) -> BTreeSet<String> {
        external_tables(&self.pipeline)
    }
}

/// The planning view of every channel.
pub fn channel_rules(pipeline: &Pipeline) -> std::collections::BTreeMap<String, ChannelRules> {
    pipeline
        .channels
        .iter()
        .map(|(name, c)| (name.clone(), c.settings.rules()))
        .collect()
}

fn resolve_campaigns(
    pipeline: &Pipeline,
    stages: &[Stage],
    problems: &mut Vec<String>,
) -> Vec<Campaign> {
    if pipeline.campaigns.is_empty() {
        return Vec::new();
    }
    let known: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
    let channels = channel_rules(pipeline);
    let base = pipeline.file.parent().unwrap_or(Path::new("."));
    let ctx = CampaignContext {
        base_dir: base,
        known_tables: &known,
        channels: &channels,
    };
    match crate::campaign::resolve_campaigns(&pipeline.campaigns, &ctx) {
        Ok(c) => c,
        Err(e) => {
            problems.extend(e.problems);
            Vec::new()
        }
    }
}
