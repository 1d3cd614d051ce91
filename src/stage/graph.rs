//! The dependency graph of stages: inferred from the tables each stage reads, checked for
//! duplicate names, unknown tables and cycles before anything runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Stage;

/// Stages in an order where every stage comes after the stages it reads.
#[derive(Debug, Clone)]
pub struct Graph {
    pub order: Vec<Stage>,
}

impl Graph {
    /// Build the graph. `external` are tables that exist before any stage runs
    /// (sources, `quarantine`, model outputs are stages of their own).
    pub fn build(stages: Vec<Stage>, external: &BTreeSet<String>) -> Result<Graph, Vec<String>> {
        let (graph, problems) = Self::build_partial(stages, external);
        if problems.is_empty() {
            Ok(graph)
        } else {
            Err(problems)
        }
    }

    /// Like `build`, but also returns the stages that could be ordered when some could not
    /// (so `validate` can still plan them); stages reading unknown tables are left out.
    pub fn build_partial(stages: Vec<Stage>, external: &BTreeSet<String>) -> (Graph, Vec<String>) {
        let mut problems = Vec::new();
        let mut by_name: BTreeMap<String, Stage> = BTreeMap::new();
        for stage in stages {
            if external.contains(&stage.name) {
                problems.push(format!(
                    "{}: stage '{}' has the name of a source or built-in table",
                    stage.file.display(),
                    stage.name
                ));
            } else if let Some(first) = by_name.get(&stage.name) {
                problems.push(format!(
                    "{}: stage '{}' is already defined by {}",
                    stage.file.display(),
                    stage.name,
                    first.file.display()
                ));
            } else {
                by_name.insert(stage.name.clone(), stage);
            }
        }
        let mut unknown_readers = BTreeSet::new();
        for stage in by_name.values() {
            for table in &stage.reads {
                if !by_name.contains_key(table) && !external.contains(table) {
                    unknown_readers.insert(stage.name.clone());
                    problems.push(format!(
                        "{}: stage '{}' reads unknown table '{table}' (known: {})",
                        stage.file.display(),
                        stage.name,
                        known_list(&by_name, external)
                    ));
                }
            }
        }
        // Kahn's algorithm, alphabetical among ready stages so the order is stable.
        let mut indegree: HashMap<&str, usize> = by_name
            .values()
            .map(|s| {
                let n = s.reads.iter().filter(|t| by_name.contains_key(*t)).count();
                (s.name.as_str(), n)
            })
            .collect();
        let mut ready: BTreeSet<&str> = indegree
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(k, _)| *k)
            .collect();
        let mut order = Vec::new();
        while let Some(name) = ready.pop_first() {
            order.push(by_name[name].clone());
            for s in by_name.values() {
                if s.reads.iter().any(|t| t == name) {
                    let n = indegree
                        .get_mut(s.name.as_str())
                        .expect("every stage has a degree");
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(s.name.as_str());
                    }
                }
            }
        }
        if order.len() < by_name.len() {
            let stuck: Vec<String> = by_name
                .values()
                .filter(|s| !order.iter().any(|o| o.name == s.name))
                .map(|s| format!("{} ({})", s.name, s.file.display()))
                .collect();
            problems.push(format!(
                "a cycle of stages reading each other: {}",
                stuck.join(", ")
            ));
        }
        order.retain(|s| !unknown_readers.contains(&s.name));
        (Graph { order }, problems)
    }

    /// The stages `name` reads, directly, that are stages themselves.
    pub fn upstream<'a>(&'a self, stage: &'a Stage) -> impl Iterator<Item = &'a str> + 'a {
        stage
            .reads
            .iter()
            .filter(|t| self.order.iter().any(|s| &s.name == *t))
            .map(|s| s.as_str())
    }

    /// Keep only `selected` stages and everything they read, transitively.
    pub fn select(&mut self, selected: &[String]) -> Result<(), String> {
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = selected.to_vec();
        while let Some(name) = todo.pop() {
            let stage = self
                .order
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| format!("no stage named '{name}'"))?;
            if keep.insert(name.clone()) {
                todo.extend(self.upstream(stage).map(String::from));
            }
        }
        self.order.retain(|s| keep.contains(&s.name));
        Ok(())
    }
}

fn known_list(by_name: &BTreeMap<String, Stage>, external: &BTreeSet<String>) -> String {
    let mut all: Vec<&str> = by_name
        .keys()
        .chain(external.iter())
        .map(|s| s.as_str())
        .filter(|s| !s.starts_with('_'))
        .collect();
    all.sort();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn stage(name: &str, reads: &[&str]) -> Stage {
        Stage {
            name: name.into(),
            file: PathBuf::from(format!("sql/{name}.sql")),
            sql: String::new(),
            reads: reads.iter().map(|s| s.to_string()).collect(),
            kind: super::super::StageKind::Sql,
        }
    }

    fn external() -> BTreeSet<String> {
        ["purchases".to_string()].into()
    }

    #[test]
    fn orders_stages_after_what_they_read() {
        let g = Graph::build(
            vec![
                stage("rfm", &["customer_summary"]),
                stage("customer_summary", &["purchases_clean"]),
                stage("purchases_clean", &["purchases"]),
            ],
            &external(),
        )
        .unwrap();
        let names: Vec<_> = g.order.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["purchases_clean", "customer_summary", "rfm"]);
    }

    #[test]
    fn reports_unknown_tables_duplicates_and_cycles_together() {
        let mut dup = stage("a", &["purchases"]);
        dup.file = PathBuf::from("sql/other/a.sql");
        let problems = Graph::build(
            vec![
                stage("a", &["purchases"]),
                dup,
                stage("b", &["nope"]),
                stage("c", &["d"]),
                stage("d", &["c"]),
            ],
            &external(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("sql/other/a.sql") && problems[0].contains("already defined"));
        assert!(problems[1].contains("sql/b.sql") && problems[1].contains("unknown table 'nope'"));
        assert!(problems[2].contains("cycle") && problems[2].contains("sql/c.sql"));
    }

    #[test]
    fn select_keeps_upstream_stages_only() {
        let mut g = Graph::build(
            vec![
                stage("a", &["purchases"]),
                stage("b", &["a"]),
                stage("c", &["purchases"]),
            ],
            &external(),
        )
        .unwrap();
        g.select(&["b".into()]).unwrap();
        let names: Vec<_> = g.order.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
