//! Planning stages without running them: what `validate` and `explain` use. Each planned
//! stage is registered as an empty table of its output schema so later stages can plan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::prelude::{DataFrame, SessionContext};

use super::{Stage, graph::Graph};
use crate::config::StageSpec;
use crate::engine::{Params, sql_frame};

/// Plan one stage with its parameters bound.
pub async fn plan_one(
    ctx: &SessionContext,
    stage: &Stage,
    params: &Params,
) -> Result<DataFrame, String> {
    sql_frame(ctx, &stage.sql, params).await.map_err(|e| {
        format!(
            "{}: stage '{}': {}",
            stage.file.display(),
            stage.name,
            e.strip_backtrace()
        )
    })
}

/// Plan every stage in order; returns every problem found (plan errors and columns that
/// differ from the ones documented in the pipeline file).
pub async fn plan_all(
    ctx: &SessionContext,
    graph: &Graph,
    specs: &BTreeMap<String, StageSpec>,
    params: &Params,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for stage in &graph.order {
        if graph.upstream(stage).any(|u| failed.contains(u)) {
            failed.insert(stage.name.clone());
            continue;
        }
        if let super::StageKind::Model(m) = &stage.kind {
            if let Err(e) = super::model::plan(ctx, stage, m).await {
                problems.push(e);
                failed.insert(stage.name.clone());
            }
            continue;
        }
        match plan_one(ctx, stage, params).await {
            Ok(df) => {
                let schema = Arc::new(df.schema().as_arrow().clone());
                if let Some(spec) = specs.get(&stage.name) {
                    problems.extend(compare_columns(stage, &schema, &spec.columns));
                    problems.extend(test_columns(stage, &schema, spec));
                }
                crate::engine::register_empty(ctx, &stage.name, schema);
            }
            Err(e) => {
                problems.push(e);
                failed.insert(stage.name.clone());
            }
        }
    }
    problems
}

/// Columns named by the stage's tests must exist in its output.
fn test_columns(stage: &Stage, schema: &Schema, spec: &StageSpec) -> Vec<String> {
    let named = spec
        .unique
        .iter()
        .chain(&spec.not_null)
        .chain(spec.accepted_values.keys());
    let mut out = Vec::new();
    for col in named {
        if schema.field_with_name(col).is_err() {
            out.push(format!(
                "{}: stage '{}' has a test on column '{col}', which it does not produce",
                stage.file.display(),
                stage.name
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn compare_columns(stage: &Stage, schema: &Schema, documented: &[String]) -> Option<String> {
    if documented.is_empty() {
        return None;
    }
    let planned: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if planned == documented.iter().map(|s| s.as_str()).collect::<Vec<_>>() {
        return None;
    }
    let missing: Vec<&str> = documented
        .iter()
        .map(|s| s.as_str())
        .filter(|d| !planned.contains(d))
        .collect();
    let extra: Vec<&str> = planned
        .iter()
        .copied()
        .filter(|p| !documented.iter().any(|d| d == p))
        .collect();
    let detail = if missing.is_empty() && extra.is_empty() {
        format!(
            "same columns in another order: planned {}",
            planned.join(", ")
        )
    } else {
        format!(
            "documented but not produced: [{}]; produced but not documented: [{}]",
            missing.join(", "),
            extra.join(", ")
        )
    };
    Some(format!(
        "{}: stage '{}' columns differ from [stages.{}].columns: {detail}",
        stage.file.display(),
        stage.name,
        stage.name
    ))
}
