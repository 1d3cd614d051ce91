//! Stage golden tests (and `quarantine`, the sources' rejected rows): `tests/stages/<stage>/<case>/` holds `case.toml` (as_of and `--set`
//! overrides), `given/<source>.csv` and `expect.csv` worked out by hand. Rows are compared
//! sorted, floats to 6 decimals. `UPDATE_GOLDEN=1` rewrites `expect.csv` from the output
//! (then check the diff by hand, like sqllogictest's `--complete`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    as_of: String,
    #[serde(default)]
    set: BTreeMap<String, String>,
}

const SOURCES: [&str; 5] = [
    "purchases",
    "customers",
    "complaints",
    "feedback",
    "call_outcomes",
];

fn cases() -> Vec<(String, PathBuf)> {
    let root = repo().join("tests/stages");
    let mut out = Vec::new();
    for stage in std::fs::read_dir(&root).unwrap() {
        let stage = stage.unwrap().path();
        for case in std::fs::read_dir(&stage).unwrap() {
            let case = case.unwrap().path();
            out.push((
                stage.file_name().unwrap().to_string_lossy().into_owned(),
                case,
            ));
        }
    }
    out.sort();
    out
}

async fn run_case(stage: &str, dir: &Path) -> Vec<String> {
    let case: Case =
        toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    let mut set: Vec<(String, String)> = case.set.into_iter().collect();
    for s in SOURCES {
        let given = dir.join("given").join(format!("{s}.csv"));
        let folder = if given.exists() {
            csv_source(tmp.path(), s, &std::fs::read_to_string(&given).unwrap())
        } else {
            empty_source(tmp.path(), s)
        };
        inputs.push((s, folder));
        set.push((format!("sources.{s}.format"), "csv".into()));
    }
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let set: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut opts = run_options(&case.as_of, &inputs, &tmp.path().join("out"), &set);
    // `quarantine` is the sources' table, not a stage: the first stage is enough to fill it.
    opts.select = vec![if stage == "quarantine" {
        "purchases_clean".to_string()
    } else {
        stage.to_string()
    }];
    // The send ledger, when the case gives one: rows written as winback writes them.
    let sends = dir.join("given/sends.csv");
    if sends.exists() {
        let state = tmp.path().join("state");
        ledger_from_csv(&state, &std::fs::read_to_string(&sends).unwrap());
        opts.state_dir = Some(state);
    }
    let (prepared, _) = winback::pipeline::run_in_session(&opts)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    query(&prepared.ctx, &format!("select * from {stage}")).await
}

/// Write `sends.csv` (a header naming ledger columns, then rows; empty cells are NULL) into
/// a new state database in `state`.
pub(crate) fn ledger_from_csv(state: &Path, csv: &str) {
    drop(winback::state::State::open(state).unwrap());
    let conn = rusqlite::Connection::open(state.join(winback::state::DB_FILE)).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        let mut columns: Vec<&str> = header.clone();
        let mut values: Vec<Option<String>> = cells
            .iter()
            .map(|c| (!c.is_empty()).then(|| c.to_string()))
            .collect();
        for (col, v) in [
            ("created_at", "2026-01-01T00:00:00.000Z"),
            ("updated_at", "2026-01-01T00:00:00.000Z"),
        ] {
            if !columns.contains(&col) {
                columns.push(col);
                values.push(Some(v.to_string()));
            }
        }
        let marks = vec!["?"; columns.len()].join(", ");
        let sql = format!(
            "INSERT INTO sends ({}) VALUES ({marks})",
            columns.join(", ")
        );
        conn.execute(&sql, rusqlite::params_from_iter(values))
            .unwrap();
    }
}

fn read_expect(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.len() > 1 {
        let header = lines.remove(0);
        lines.sort();
        lines.insert(0, header);
    }
    lines
}

#[tokio::test]
async fn every_stage_golden_case_matches_its_hand_worked_expectation() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 4, "golden cases are found");
    for (stage, dir) in all {
        let got = run_case(&stage, &dir).await;
        let expect_path = dir.join("expect.csv");
        if update {
            std::fs::write(&expect_path, got.join("\n") + "\n").unwrap();
            continue;
        }
        let expect = read_expect(&expect_path);
        if got != expect {
            failures.push(format!(
                "{}:\n  expected:\n    {}\n  got:\n    {}",
                dir.display(),
                expect.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}
