//! The one place a pipeline's session is opened, for every command that plans or runs a
//! pipeline (`run`, `validate`, `explain`, `ltv backtest`): the loaded pipeline, its
//! DataFusion session, bound parameters, the stages found on disk, the campaigns resolved
//! against them, and the tables that exist before any stage. Nothing is read from the
//! sources yet: [`Session::prepare`] does that for a run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use datafusion::prelude::SessionContext;

use super::RunOptions;
use crate::campaign::costs_table;
use crate::campaign::{Campaign, CampaignContext, ChannelRules};
use crate::config::{self, LoadOptions, Pipeline};
use crate::engine::{self, Params};
use crate::error::{ConfigError, PipelineError};
use crate::manifest;
use crate::source;
use crate::stage::{self, Stage, StageKind, graph::Graph};
use crate::state_tables::{history_table, ledger_table, suppressions_table};

/// What the session is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A run, on the pipeline's own engine (local or a Ballista cluster).
    Run,
    /// Checking and explaining (`validate`, `explain`): planning is the same on every
    /// engine, so the session is this process's, whatever the pipeline's engine.
    Check,
}

/// A pipeline with its session: stages found, nothing registered from the sources yet.
pub struct Session {
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

/// A pipeline with its session prepared for a run: sources registered, stages ordered.
pub struct Prepared {
    pub pipeline: Pipeline,
    pub ctx: SessionContext,
    pub params: Params,
    pub as_of: NaiveDate,
    pub graph: Graph,
    pub sources: Vec<source::RegisteredSource>,
    /// Time spent checking the sources' files and finding duplicates.
    pub sources_seconds: f64,
    pub hash: String,
    /// The pipeline's campaigns, resolved.
    pub campaigns: Vec<Campaign>,
}

/// The date a run is for when `--as-of` is not given: today in the pipeline's timezone.
pub fn today(pipeline: &Pipeline) -> NaiveDate {
    Utc::now().with_timezone(&pipeline.timezone).date_naive()
}

/// Tables that exist before any stage runs: sources, `quarantine`, `winback_runs`,
/// `sends`, `suppressions`, `campaign_costs`, `previous_ltv`.
pub fn external_tables(pipeline: &Pipeline) -> BTreeSet<String> {
    let mut t: BTreeSet<String> = pipeline.sources.iter().map(|s| s.name.clone()).collect();
    t.insert("quarantine".into());
    t.insert(history_table::TABLE.into());
    t.insert(ledger_table::TABLE.into());
    t.insert(suppressions_table::TABLE.into());
    t.insert(costs_table::TABLE.into());
    t.insert(crate::output::previous::TABLE.into());
    t
}

/// Load the pipeline file with the command line's overrides.
pub fn load(file: &Path, opts: &LoadOptions) -> Result<Pipeline, PipelineError> {
    Ok(config::load(file, opts)?)
}

/// The run's pipeline: the one the command already loaded, else read from its file.
pub fn load_for(opts: &RunOptions) -> Result<Pipeline, PipelineError> {
    match &opts.pipeline {
        Some(p) => Ok(p.clone()),
        None => load(&opts.pipeline_file, &opts.load),
    }
}

impl Session {
    /// Load the pipeline of `opts` and open its session for `mode`.
    pub async fn open(opts: &RunOptions, mode: Mode) -> Result<Session, PipelineError> {
        Session::with_pipeline(load_for(opts)?, opts, mode).await
    }

    /// Open the session of an already loaded `pipeline`. `as_of` defaults to today in the
    /// pipeline's timezone; `state_dir` is where `winback_runs` and `winback_sends` are
    /// read from.
    pub async fn with_pipeline(
        mut pipeline: Pipeline,
        opts: &RunOptions,
        mode: Mode,
    ) -> Result<Session, PipelineError> {
        if mode == Mode::Check {
            pipeline.engine = config::Engine::Local;
        }
        let as_of = opts.as_of.unwrap_or_else(|| today(&pipeline));
        let engine = &opts.engine.for_pipeline(&pipeline);
        let ctx = engine::new_session(engine).await?;
        let params = Params::for_run(&pipeline, as_of);
        let (stages, mut problems) = stage::load_pipeline(&ctx, &pipeline);
        let files: Vec<PathBuf> = stages
            .iter()
            .filter(|s| matches!(s.kind, StageKind::Sql))
            .map(|s| s.file.clone())
            .collect();
        let hash = manifest::hash_files(
            &pipeline.file,
            &files.iter().map(|p| p.as_path()).collect::<Vec<_>>(),
        );
        let state_dir = opts.state_dir.as_deref();
        history_table::register(&ctx, state_dir).await?;
        ledger_table::register(&ctx, state_dir, as_of).await?;
        suppressions_table::register(&ctx, state_dir).await?;
        // The last run's ltv, for the P(alive) drop of at_risk_customers; a check reads none.
        match mode {
            Mode::Run => crate::output::previous::register(&ctx, &pipeline.output, as_of).await?,
            Mode::Check => crate::output::previous::register_empty(&ctx).await?,
        }
        let campaigns = resolve_campaigns(&pipeline, &stages, &mut problems);
        let costs = costs_table::batch(&costs_table::costs(&campaigns, &channel_rules(&pipeline)));
        crate::engine::keep_batches(&ctx, costs_table::TABLE, costs.schema(), vec![costs])
            .await
            .map_err(|e| PipelineError::Internal(e.to_string()))?;
        Ok(Session {
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

    /// Order the stages (only `select` and what they read, when given). Every problem
    /// found so far, with the stages' and the selection's, fails it at once.
    pub fn graph(&mut self, select: &[String]) -> Result<Graph, ConfigError> {
        let external = self.external_tables();
        let mut problems = std::mem::take(&mut self.problems);
        let graph = match Graph::build(std::mem::take(&mut self.stages), &external) {
            Ok(mut g) => {
                if let Err(mut p) = stage::incremental::part(&g, &self.pipeline) {
                    problems.append(&mut p);
                }
                if !select.is_empty()
                    && let Err(e) = g.select(select)
                {
                    problems.push(e);
                }
                Some(g)
            }
            Err(mut p) => {
                problems.append(&mut p);
                None
            }
        };
        match graph.filter(|_| problems.is_empty()) {
            Some(g) => Ok(g),
            None => Err(ConfigError::Many(problems)),
        }
    }

    /// Register every source (its files checked, duplicates found).
    pub async fn register_sources(&self) -> Result<Vec<source::RegisteredSource>, PipelineError> {
        source::register_all(&self.ctx, &self.pipeline, &self.params).await
    }

    /// Order the stages and register the sources: ready to compute.
    pub async fn prepare(mut self, opts: &RunOptions) -> Result<Prepared, PipelineError> {
        let graph = self.graph(&opts.select)?;
        let bar = opts.progress.start("sources");
        let started = Instant::now();
        let sources = match self.register_sources().await {
            Ok(s) => s,
            Err(e) => {
                bar.failed();
                return Err(e);
            }
        };
        let read: u64 = sources.iter().map(|s| s.report.rows_read).sum();
        let sources_seconds = started.elapsed().as_secs_f64();
        bar.done(read, sources_seconds);
        let Session {
            pipeline,
            ctx,
            params,
            as_of,
            hash,
            campaigns,
            ..
        } = self;
        Ok(Prepared {
            pipeline,
            ctx,
            params,
            as_of,
            graph,
            sources,
            sources_seconds,
            hash,
            campaigns,
        })
    }
}

/// Set up the session, register the sources and order the stages; nothing runs yet.
pub async fn prepare(opts: &RunOptions) -> Result<Prepared, PipelineError> {
    Session::open(opts, Mode::Run).await?.prepare(opts).await
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
