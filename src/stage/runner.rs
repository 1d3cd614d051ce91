//! Runs the stage graph: each stage starts as soon as the stages it reads are done, so
//! independent stages run side by side; each result is kept for the stages after it.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use datafusion::prelude::SessionContext;
use tokio::task::JoinSet;

use super::{Stage, StageKind, checks, graph::Graph, model};
use crate::config::StageSpec;
use crate::engine::{Params, materialize, sql_frame};
use crate::error::PipelineError;
use crate::progress::Progress;

/// What one stage did, for the manifest and the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageRun {
    pub name: String,
    pub file: String,
    pub rows: u64,
    pub seconds: f64,
    /// Fit diagnostics of a model stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<serde_json::Value>,
}

fn stage_err(stage: &Stage, e: datafusion::error::DataFusionError) -> PipelineError {
    PipelineError::Stage {
        stage: stage.name.clone(),
        file: stage.file.display().to_string(),
        message: e.strip_backtrace().to_string(),
    }
}

async fn run_one(
    ctx: SessionContext,
    stage: Stage,
    spec: Option<StageSpec>,
    params: Params,
    progress: Progress,
    fits: model::Fits,
) -> Result<StageRun, PipelineError> {
    let bar = progress.start(&stage.name);
    let started = Instant::now();
    let result = async {
        let (rows, diagnostics) = match &stage.kind {
            StageKind::Sql => {
                let df = sql_frame(&ctx, &stage.sql, &params)
                    .await
                    .map_err(|e| stage_err(&stage, e))?;
                let rows = materialize(&ctx, &stage.name, df)
                    .await
                    .map_err(|e| stage_err(&stage, e))?;
                (rows, None)
            }
            StageKind::Model(m) => {
                let (rows, d) = model::run(&ctx, &stage.name, m, &fits).await?;
                (rows, Some(d))
            }
        };
        if let Some(spec) = &spec {
            checks::run(&ctx, &stage.name, spec).await?;
        }
        Ok((rows, diagnostics))
    }
    .await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((rows, diagnostics)) => {
            bar.done(rows, seconds);
            Ok(StageRun {
                name: stage.name.clone(),
                file: stage.file.display().to_string(),
                rows,
                seconds,
                diagnostics,
            })
        }
        Err(e) => {
            bar.failed();
            Err(e)
        }
    }
}

/// Run every stage of the graph; stops at the first failure.
pub async fn run_all(
    ctx: &SessionContext,
    graph: &Graph,
    specs: &BTreeMap<String, StageSpec>,
    params: &Params,
    progress: &Progress,
) -> Result<Vec<StageRun>, PipelineError> {
    let mut done: HashSet<String> = HashSet::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut tasks = JoinSet::new();
    let mut runs = Vec::new();
    let fits = model::Fits::default();
    loop {
        for stage in &graph.order {
            if !started.contains(&stage.name) && graph.upstream(stage).all(|u| done.contains(u)) {
                started.insert(stage.name.clone());
                tasks.spawn(run_one(
                    ctx.clone(),
                    stage.clone(),
                    specs.get(&stage.name).cloned(),
                    params.clone(),
                    progress.clone(),
                    fits.clone(),
                ));
            }
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let run =
            joined.map_err(|e| PipelineError::Internal(format!("stage task failed: {e}")))??;
        done.insert(run.name.clone());
        runs.push(run);
    }
    Ok(runs)
}
