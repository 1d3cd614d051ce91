//! `winback validate`: every problem of a pipeline at once, without running a stage.

use crate::cli::ValidateArgs;
use crate::engine;
use crate::error::{ConfigError, EXIT_CONFIG, EXIT_OK, PipelineError};
use crate::pipeline::{Mode, RunOptions, Session, session};
use crate::source;
use crate::stage::{graph::Graph, plan};

/// Check a pipeline; returns the list of problems (empty when valid).
pub async fn problems(args: &ValidateArgs) -> Result<Vec<String>, PipelineError> {
    let mut opts = RunOptions::new(&args.pipeline.pipeline);
    opts.load = super::run::load_options(&args.pipeline, None);
    let pipeline = match session::load_for(&opts) {
        Ok(p) => p,
        Err(PipelineError::Config(ConfigError::Many(p))) => return Ok(p),
        Err(e) => return Ok(vec![e.to_string()]),
    };
    // Planning is the same on every engine (the engine's settings were checked on load).
    let session = Session::with_pipeline(pipeline, &opts, Mode::Check).await?;
    let external = session.external_tables();
    let sources = session.register_sources().await;
    let Session {
        pipeline,
        ctx,
        params,
        stages,
        mut problems,
        campaigns,
        ..
    } = session;
    for name in pipeline.stages.keys() {
        if !stages.iter().any(|s| &s.name == name) {
            problems.push(format!(
                "[stages.{name}] documents a stage that has no SQL file"
            ));
        }
    }
    let (graph, mut graph_problems) = Graph::build_partial(stages, &external);
    problems.append(&mut graph_problems);
    let sources_ok = match sources {
        Ok(_) => true,
        Err(PipelineError::Config(ConfigError::Many(mut p))) => {
            problems.append(&mut p);
            false
        }
        Err(e) => {
            problems.push(e.to_string());
            false
        }
    };
    if !sources_ok {
        // Plan against the declared columns so stage problems are reported too.
        source::register_declared_empty(&ctx, &pipeline)?;
    }
    problems.append(&mut plan::plan_all(&ctx, &graph, &pipeline.stages, &params).await);
    // Every field a campaign's templates use must be a column of its audience.
    for c in &campaigns {
        if let Ok(df) = ctx.table(c.audience.as_str()).await {
            let columns: Vec<String> = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            problems.extend(c.validate_fields(&columns));
        }
        for w in c.sms_warnings() {
            println!("warning: {w}");
        }
    }
    for (name, sql) in &pipeline.metrics {
        if let Err(e) = engine::sql_frame(&ctx, sql, &params).await {
            problems.push(format!("metrics.{name}: {}", e.strip_backtrace()));
        }
    }
    Ok(problems)
}

/// Check the schedule files: each parses, names an existing pipeline; print next fire times.
fn schedule_problems(args: &ValidateArgs) -> Vec<String> {
    if !args.schedules.is_dir() {
        return vec![];
    }
    match crate::schedule::load_schedules(&args.schedules) {
        Ok(schedules) => {
            let now = chrono::Utc::now();
            let mut problems = Vec::new();
            for s in schedules {
                println!("{}", s.describe(now, 3));
                if !s.pipeline.exists() {
                    problems.push(format!(
                        "schedule '{}': pipeline file {} does not exist",
                        s.name,
                        s.pipeline.display()
                    ));
                }
            }
            problems
        }
        Err(e) => vec![e.to_string()],
    }
}

pub async fn validate(args: ValidateArgs) -> anyhow::Result<i32> {
    let mut found = problems(&args).await?;
    found.extend(schedule_problems(&args));
    if found.is_empty() {
        println!("{}: valid", args.pipeline.pipeline.display());
        Ok(EXIT_OK)
    } else {
        eprintln!(
            "{}: {} problem(s):",
            args.pipeline.pipeline.display(),
            found.len()
        );
        for p in &found {
            eprintln!("  - {}", p.replace('\n', "\n    "));
        }
        Ok(EXIT_CONFIG)
    }
}
