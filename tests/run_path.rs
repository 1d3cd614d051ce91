//! The path every run takes, tried as an operator would: a stop signal mid-run, a write
//! that fails, each class of error and its exit code, one pipeline spelled two ways, and
//! staging left behind by a process that died.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use winback::state::{RunStatus, State};

use crate::support::*;

const AS_OF: &str = "2026-06-01";

fn winback(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn code_and_stderr(out: &Output) -> (i32, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A project with demo data ending at `AS_OF`.
fn dated_project(dir: &Path) {
    project(dir);
    std::fs::remove_dir_all(dir.join("demo-data")).unwrap();
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: dir.join("demo-data"),
        rows: 2_000,
        end: date(AS_OF),
        seed: 5,
    })
    .unwrap();
}

/// Every file a reader of `<out>/<table>/as_of=<D>/` and of `manifest.json` sees, with
/// its bytes (links followed, as readers follow them).
fn snapshot(out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for table in std::fs::read_dir(out).unwrap().flatten() {
        let name = table.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') {
            continue;
        }
        let part = table.path().join(format!("as_of={AS_OF}"));
        let Ok(entries) = std::fs::read_dir(&part) else {
            continue;
        };
        for f in entries.flatten() {
            files.insert(
                PathBuf::from(&name).join(f.file_name()),
                std::fs::read(f.path()).unwrap(),
            );
        }
    }
    let manifest = out.join(format!("_runs/as_of={AS_OF}/manifest.json"));
    files.insert(
        PathBuf::from("manifest.json"),
        std::fs::read(manifest).unwrap(),
    );
    files
}

fn run_manifests(out: &Path) -> Vec<serde_json::Value> {
    let dir = out.join(format!("_runs/as_of={AS_OF}"));
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with("run-"))
        .map(|f| serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap())
        .collect();
    v.sort_by_key(|m: &serde_json::Value| m["started_at"].as_str().unwrap().to_string());
    v
}

fn staging_is_empty(out: &Path) -> bool {
    let staging = out.join("_staging");
    !staging.exists() || walk(&staging).is_empty()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// A dated project whose first run succeeded, and what a reader of its outputs sees.
fn project_after_one_run(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    dated_project(dir);
    let first = winback(dir, &["run", "--as-of", AS_OF]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        code_and_stderr(&first).1
    );
    snapshot(&dir.join("out"))
}

#[test]
fn sigterm_stops_a_slow_run_within_the_grace_period_and_changes_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let before = project_after_one_run(dir);

    // A stage that would take hours: 40 billion rows of a cross join.
    std::fs::write(
        dir.join("sql/marts/slow.sql"),
        "select sum(a.x * b.x) as n from (select unnest(range(1, 200000)) as x) a cross join (select unnest(range(1, 200000)) as x) b",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(["run", "--as-of", AS_OF, "--grace-secs", "4"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the slow run ended early"
    );
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(20),
            "still running long after the grace period"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} with a 4 s grace period"
    );
    assert_eq!(status.code(), Some(1));

    let runs = State::open(&dir.join(".winback"))
        .unwrap()
        .all_runs()
        .unwrap();
    assert_eq!(
        runs.last().unwrap().status,
        RunStatus::Interrupted,
        "{runs:?}"
    );
    let manifests = run_manifests(&dir.join("out"));
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[1]["status"], "interrupted", "{}", manifests[1]);
    assert!(staging_is_empty(&dir.join("out")), "staging is cleaned");
    assert_eq!(before, snapshot(&dir.join("out")), "outputs are unchanged");
}

#[test]
fn a_failed_write_of_the_last_table_leaves_every_table_and_the_manifest_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let before = project_after_one_run(dir);

    // A second run computes other tables (another lapse factor) and one more output,
    // `zz_last`, listed last; a file where its folder must go makes its write fail.
    std::fs::write(
        dir.join("sql/marts/zz_last.sql"),
        "select customer_id from customer_summary",
    )
    .unwrap();
    let file = dir.join("pipelines/reactivation.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replace("\"quarantine\"]", "\"quarantine\", \"zz_last\"]");
    std::fs::write(&file, text).unwrap();
    std::fs::write(dir.join("out/zz_last"), "not a folder").unwrap();
    let second = winback(
        dir,
        &[
            "run",
            "--as-of",
            AS_OF,
            "--set",
            "variables.lapse_factor=2.5",
        ],
    );
    let (code, stderr) = code_and_stderr(&second);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("zz_last"), "{stderr}");
    assert_eq!(
        before,
        snapshot(&dir.join("out")),
        "every table and manifest.json are the first run's"
    );
    let manifests = run_manifests(&dir.join("out"));
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[1]["status"], "failed");
    assert!(staging_is_empty(&dir.join("out")));

    // Once the obstacle is gone the same run commits everything at once.
    std::fs::remove_file(dir.join("out/zz_last")).unwrap();
    let third = winback(
        dir,
        &[
            "run",
            "--as-of",
            AS_OF,
            "--set",
            "variables.lapse_factor=2.5",
        ],
    );
    assert_eq!(
        third.status.code(),
        Some(0),
        "{}",
        code_and_stderr(&third).1
    );
    let after = snapshot(&dir.join("out"));
    assert!(after.keys().any(|k| k.starts_with("zz_last")));
    assert_ne!(
        before[Path::new("manifest.json")],
        after[Path::new("manifest.json")]
    );
}

#[test]
fn each_error_class_has_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    dated_project(dir);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--as-of", AS_OF];
        args.extend_from_slice(extra);
        code_and_stderr(&winback(dir, &args))
    };

    // The user's: a pipeline file that is not TOML.
    std::fs::write(dir.join("pipelines/bad.toml"), "name = \"x\"\n[sources\n").unwrap();
    let (code, err) = run(&["--pipeline", "pipelines/bad.toml"]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("bad.toml"), "{err}");

    // The user's: an input without a required column.
    let bad = csv_source(
        dir,
        "no_amount",
        "customer_id,order_ts\nc1,2026-01-01 10:00:00\n",
    );
    let input = format!("purchases={}", bad.display());
    let (code, err) = run(&["--input", &input, "--set", "sources.purchases.format=csv"]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("amount"), "{err}");

    // External: an object store that does not answer (nothing listens on port 9).
    let out = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args([
            "run",
            "--as-of",
            AS_OF,
            "--input",
            "purchases=s3://shop/raw",
        ])
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let (code, err) = code_and_stderr(&out);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("s3://shop/raw"), "{err}");

    // Internal: a stage that fails while it runs (text that is no number).
    std::fs::write(
        dir.join("sql/marts/breaks.sql"),
        "select cast(customer_id || 'x' as int) as n from customer_summary",
    )
    .unwrap();
    let (code, err) = run(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("breaks"), "{err}");
    let runs = State::open(&dir.join(".winback"))
        .unwrap()
        .all_runs()
        .unwrap();
    assert!(
        runs.iter().all(|r| r.status != RunStatus::Running),
        "{runs:?}"
    );
}

#[test]
fn a_model_named_like_a_path_is_a_validate_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let file = dir.join("pipelines/reactivation.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n[models.\"a.b\"]\ntype = \"clv\"\n");
    std::fs::write(&file, text).unwrap();
    let (code, err) = code_and_stderr(&winback(dir, &["validate"]));
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("models.\"a.b\"") && err.contains("identifier"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn explain_shows_a_model_stage_inputs_parameters_and_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let out = winback(dir, &["explain", "ltv"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", code_and_stderr(&out).1);
    assert!(stdout.contains("-- model 'ltv'"), "{stdout}");
    assert!(stdout.contains("reads: customer_summary"), "{stdout}");
    assert!(stdout.contains("horizon_days = 365"), "{stdout}");
    for col in ["p_alive", "expected_purchases", "clv", "value_tier"] {
        assert!(stdout.contains(&format!("--   {col} ")), "{col}: {stdout}");
    }
}

#[test]
fn two_spellings_of_one_pipeline_are_one_pipeline_under_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    std::fs::create_dir_all(dir.join("schedules")).unwrap();
    let absolute = dir.join("pipelines/reactivation.toml");
    for (name, path) in [
        ("plain", "pipelines/reactivation.toml".to_string()),
        ("dotted", "./pipelines/reactivation.toml".to_string()),
        ("absolute", absolute.display().to_string()),
    ] {
        std::fs::write(
            dir.join(format!("schedules/{name}.toml")),
            format!("pipeline = \"{path}\"\ncron = \"*/2 * * * * *\"\ncatch_up = \"skip\"\n"),
        )
        .unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(["serve", "--grace-secs", "10"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state_dir = dir.join(".winback");
    // Until a run has finished and every spelling has fired (a slow machine: two minutes).
    let deadline = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        std::thread::sleep(Duration::from_millis(500));
        let runs = State::open(&state_dir)
            .and_then(|s| s.all_runs())
            .unwrap_or_default();
        let done = runs.iter().any(|r| r.status == RunStatus::Succeeded);
        let fired: std::collections::BTreeSet<_> =
            runs.iter().filter_map(|r| r.schedule.clone()).collect();
        if (done && fired.len() == 3) || Instant::now() > deadline {
            break runs;
        }
    };
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let pipelines: std::collections::BTreeSet<_> = runs.iter().map(|r| &r.pipeline).collect();
    assert_eq!(
        pipelines.len(),
        1,
        "one pipeline in the history: {pipelines:?}"
    );
    let schedules: std::collections::BTreeSet<_> =
        runs.iter().filter_map(|r| r.schedule.as_deref()).collect();
    assert_eq!(schedules.len(), 3, "every spelling fired: {runs:#?}");
    // Three schedules firing at the same instants: only one run at a time, the rest skipped.
    let mut ran: Vec<_> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded)
        .map(|r| (r.started_at, r.ended_at.unwrap()))
        .collect();
    ran.sort();
    assert!(!ran.is_empty(), "{runs:#?}");
    for pair in ran.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "two runs of one pipeline overlapped: {pair:?}"
        );
    }
    assert!(
        runs.iter().any(|r| r.status == RunStatus::Skipped),
        "simultaneous fires of one pipeline are skipped: {runs:#?}"
    );
}

#[test]
fn staging_left_by_a_run_that_died_is_removed_by_the_next_holder_of_its_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    dated_project(dir);
    let pipeline = winback::schedule::pipeline_key(&dir.join("pipelines/reactivation.toml"));
    let key = winback::state::lock_key(&pipeline, date(AS_OF));
    let scope = dir
        .join("out/_staging")
        .join(winback::output::scope_dir(&key));
    let dead = scope.join("20260101T000000-deadbeef/rfm");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("part-0.parquet"), b"half a file").unwrap();
    // Another pipeline's (or another date's) staging is not this run's to remove.
    let other = dir.join("out/_staging/0123456789abcdef/20260101T000000-alive");
    std::fs::create_dir_all(&other).unwrap();

    let out = winback(dir, &["run", "--as-of", AS_OF]);
    assert_eq!(out.status.code(), Some(0), "{}", code_and_stderr(&out).1);
    assert!(!scope.exists(), "the dead run's staging is gone");
    assert!(other.exists(), "other scopes are left alone");
}

/// Tables that later stages read but that are no output go to Parquet in a private work
/// folder under the system's temp space, not memory; the folder is gone after the run, and
/// so are the spill and work folders a killed process left (its process id is gone).
#[test]
fn intermediate_tables_live_in_a_work_folder_removed_after_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let temp = tmp.path().join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    // Above Linux's largest process id: no process has it.
    for left in ["winback-spill-4194305", "winback-work-4194305-Ab12Cd"] {
        std::fs::create_dir_all(temp.join(left).join("datafusion-x")).unwrap();
        std::fs::write(temp.join(left).join("datafusion-x/spill.arrow"), b"spilled").unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_winback"))
        .current_dir(tmp.path())
        .args(["run", "--no-send", "--state-dir", "state"])
        .env("TMPDIR", &temp)
        .env("WINBACK_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("intermediate tables go to this work folder")
            && stderr.contains(&temp.join("winback-work-").display().to_string()),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&temp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // A run that stops on an error exits without destructors: its folders go all the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_winback"))
        .current_dir(tmp.path())
        .args([
            "run",
            "--no-send",
            "--state-dir",
            "state",
            "--memory-limit-mib",
            "8",
        ])
        .env("TMPDIR", &temp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let left: Vec<_> = std::fs::read_dir(&temp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
