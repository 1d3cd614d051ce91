//! Incremental nights, the graph's side: which stages are maintained per key
//! (`[stages.NAME] incremental_key`), the part of the graph a night recomputes for the
//! keys its new data touches, and the SQL that merges those keys' new rows into the table
//! maintained since the last night.
//!
//! A maintained stage promises that its output rows for one key depend only on its input
//! rows of that key: then running its own SQL over the touched keys' input rows gives
//! exactly their rows of a full recompute, and every other key's rows are the ones kept.
//! The stages it reads are run the same way (restricted to the touched keys), so they
//! must keep that promise too; they are checked for what can be checked: no `$as_of`
//! (a maintained table cannot depend on the night) and only sources and stages read.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{Stage, StageKind, graph::Graph};
use crate::config::{Pipeline, StageSpec};
use crate::source::views::ident;

/// The touched keys of a night, one column named by the key.
pub const KEYS_TABLE: &str = "_inc_keys";

/// The table maintained up to the last night, as remembered.
pub fn kept_table(stage: &str) -> String {
    format!("_inc_kept_{stage}")
}

/// The stage's rows for the touched keys, computed tonight.
pub fn fresh_table(stage: &str) -> String {
    format!("_inc_fresh_{stage}")
}

/// The maintained stages and everything they read.
#[derive(Debug, Clone)]
pub struct Part {
    /// The key every maintained stage declares.
    pub key: String,
    /// The maintained stages, in graph order.
    pub maintained: Vec<String>,
    /// The maintained stages and the stages they read (directly or not), in graph order.
    pub stages: Vec<Stage>,
    /// The sources those stages read.
    pub sources: Vec<String>,
}

/// The pipeline's maintained part, `None` when no stage declares an `incremental_key`.
/// Problems (a stage that cannot be maintained) are configuration errors.
pub fn part(graph: &Graph, pipeline: &Pipeline) -> Result<Option<Part>, Vec<String>> {
    let specs: &BTreeMap<String, StageSpec> = &pipeline.stages;
    let declared: Vec<(&Stage, &String)> = graph
        .order
        .iter()
        .filter_map(|s| Some((s, specs.get(&s.name)?.incremental_key.as_ref()?)))
        .collect();
    let Some((_, key)) = declared.first() else {
        return Ok(None);
    };
    let key = (*key).clone();
    let mut problems = Vec::new();
    for (stage, k) in &declared {
        if **k != key {
            problems.push(format!(
                "stage '{}' declares incremental_key '{k}', another stage '{key}': a pipeline maintains its tables by one key",
                stage.name
            ));
        }
    }
    // Everything the maintained stages read, transitively.
    let by_name: BTreeMap<&str, &Stage> =
        graph.order.iter().map(|s| (s.name.as_str(), s)).collect();
    let sources: BTreeSet<&str> = pipeline.sources.iter().map(|s| s.name.as_str()).collect();
    let mut wanted: HashSet<&str> = declared.iter().map(|(s, _)| s.name.as_str()).collect();
    for stage in graph.order.iter().rev() {
        if wanted.contains(stage.name.as_str()) {
            for t in &stage.reads {
                if by_name.contains_key(t.as_str()) {
                    wanted.insert(t.as_str());
                }
            }
        }
    }
    let stages: Vec<Stage> = graph
        .order
        .iter()
        .filter(|s| wanted.contains(s.name.as_str()))
        .cloned()
        .collect();
    let mut read_sources = BTreeSet::new();
    for stage in &stages {
        if matches!(stage.kind, StageKind::Model(_)) {
            problems.push(format!(
                "stage '{}' is a model, read by a stage maintained per key: only SQL stages are maintained",
                stage.name
            ));
        }
        if reads_as_of(&stage.sql) {
            problems.push(format!(
                "stage '{}' reads $as_of, but it is maintained per key across nights (or read by a stage that is): \
                 a maintained table cannot depend on the night; compute what depends on as_of in a stage after it",
                stage.name
            ));
        }
        for t in &stage.reads {
            if sources.contains(t.as_str()) {
                read_sources.insert(t.clone());
            } else if !by_name.contains_key(t.as_str()) {
                problems.push(format!(
                    "stage '{}' reads '{t}', which changes between nights on its own: a stage maintained per key \
                     (or read by one) reads only sources and stages",
                    stage.name
                ));
            }
        }
    }
    for name in &read_sources {
        let source = pipeline.sources.iter().find(|s| &s.name == name);
        if source.is_some_and(|s| !s.columns.iter().any(|c| c.name == key)) {
            problems.push(format!(
                "source '{name}' has no column '{key}', the incremental_key of the stages that read it"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Some(Part {
        key,
        maintained: declared.iter().map(|(s, _)| s.name.clone()).collect(),
        stages,
        sources: read_sources.into_iter().collect(),
    }))
}

/// Whether a stage's SQL reads `$as_of` or `$as_of_ts` (outside `--` comments).
fn reads_as_of(sql: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    sql.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .any(|l| {
            l.match_indices("$as_of").any(|(i, m)| {
                let rest = &l[i + m.len()..];
                let rest = rest.strip_prefix("_ts").unwrap_or(rest);
                !rest.starts_with(word)
            })
        })
}

/// The maintained table tonight: the kept rows of every key not touched, and the fresh
/// rows of the touched ones.
pub fn merge_sql(stage: &str, key: &str) -> String {
    let key = ident(key);
    format!(
        "select * from {kept} k where not exists (select 1 from {keys} t where t.{key} = k.{key})\n\
         union all\nselect * from {fresh}",
        kept = ident(&kept_table(stage)),
        keys = ident(KEYS_TABLE),
        fresh = ident(&fresh_table(stage)),
    )
}

/// The graph of an incremental night: each maintained stage merges (its SQL ran already,
/// over the touched keys), and the stages only they read are left out unless `needed`
/// (an output, or read after the stages).
pub fn rewire(graph: &Graph, part: &Part, needed: &HashSet<String>) -> Graph {
    let mut order: Vec<Stage> = graph
        .order
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if part.maintained.contains(&s.name) {
                s.sql = merge_sql(&s.name, &part.key);
                s.reads = vec![kept_table(&s.name), KEYS_TABLE.into(), fresh_table(&s.name)];
            }
            s
        })
        .collect();
    let in_part: HashSet<&str> = part.stages.iter().map(|s| s.name.as_str()).collect();
    loop {
        let read: HashSet<String> = order.iter().flat_map(|s| s.reads.clone()).collect();
        let before = order.len();
        order.retain(|s| {
            !in_part.contains(s.name.as_str())
                || part.maintained.contains(&s.name)
                || read.contains(&s.name)
                || needed.contains(&s.name)
        });
        if order.len() == before {
            break;
        }
    }
    Graph { order }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, sql: &str, reads: &[&str]) -> Stage {
        Stage {
            name: name.into(),
            file: format!("{name}.sql").into(),
            sql: sql.into(),
            reads: reads.iter().map(|r| r.to_string()).collect(),
            kind: StageKind::Sql,
        }
    }

    #[test]
    fn as_of_is_found_in_code_not_in_comments() {
        assert!(reads_as_of("select $as_of - d from t"));
        assert!(reads_as_of("where ts < $as_of_ts"));
        assert!(!reads_as_of("-- not before $as_of\nselect 1"));
        assert!(!reads_as_of("select $as_of_days from t"));
    }

    #[test]
    fn merge_keeps_untouched_keys_and_takes_the_fresh_rows() {
        let sql = merge_sql("days", "customer_id");
        assert!(sql.contains("from \"_inc_kept_days\" k where not exists"));
        assert!(sql.contains("t.\"customer_id\" = k.\"customer_id\""));
        assert!(sql.ends_with("select * from \"_inc_fresh_days\""));
    }

    #[test]
    fn rewiring_merges_the_maintained_and_drops_helpers_no_one_else_reads() {
        let graph = Graph {
            order: vec![
                stage("helper", "select 1", &["purchases"]),
                stage("shared_helper", "select 1", &["purchases"]),
                stage(
                    "clean",
                    "select 1",
                    &["purchases", "helper", "shared_helper"],
                ),
                stage("report", "select 1", &["clean", "shared_helper"]),
            ],
        };
        let part = Part {
            key: "customer_id".into(),
            maintained: vec!["clean".into()],
            stages: graph.order[..3].to_vec(),
            sources: vec!["purchases".into()],
        };
        let g = rewire(&graph, &part, &HashSet::new());
        let names: Vec<&str> = g.order.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shared_helper", "clean", "report"]);
        assert_eq!(
            g.order[1].reads,
            ["_inc_kept_clean", "_inc_keys", "_inc_fresh_clean"]
        );
        // A helper that is an output stays.
        let needed: HashSet<String> = ["helper".to_string()].into();
        assert_eq!(rewire(&graph, &part, &needed).order.len(), 4);
    }
}
