//! `winback serve` as a real process: fires on a schedule, records history, stops cleanly
//! on SIGTERM. `backfill` runs dates in order and skips what already succeeded.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use winback::state::{RunStatus, State};

use crate::support::*;

/// A GET over a plain TCP connection: the whole answer.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn serve_fires_on_schedule_records_history_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    std::fs::create_dir_all(tmp.path().join("schedules")).unwrap();
    // The pipeline's `[http] bind`: serve answers the listener's endpoints too.
    let bind = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        tmp.path().join("schedules/fast.toml"),
        format!("pipeline = \"pipelines/reactivation.toml\"\ncron = \"*/3 * * * * *\"\ncatch_up = \"skip\"\n[set]\n\"http.bind\" = \"{bind}\"\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(["serve", "--grace-secs", "10"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state_dir = tmp.path().join(".winback");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let done = State::open(&state_dir)
            .and_then(|s| s.all_runs())
            .map(|r| {
                r.iter()
                    .filter(|r| r.status == RunStatus::Succeeded)
                    .count()
            })
            .unwrap_or(0);
        if done >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "two scheduled runs within 90 s");
        assert!(child.try_wait().unwrap().is_none(), "serve exited early");
    }
    assert!(
        http_get(&bind, "/health").starts_with("HTTP/1.1 200"),
        "serve starts the listener of a pipeline with [http] bind"
    );
    let status = winback::schedule::read_status(&state_dir).unwrap();
    assert_eq!(status.state, "running");
    assert_eq!(status.schedules[0].name, "fast");
    assert!(status.schedules[0].next_fire.is_some());

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let stopped_by = Instant::now() + Duration::from_secs(40);
    let code = loop {
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < stopped_by,
            "serve stops within the grace period"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(code.success(), "clean exit: {code:?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains("schedule fast"),
        "prints the schedule and next fire times: {stdout}"
    );

    let runs = State::open(&state_dir).unwrap().all_runs().unwrap();
    assert!(
        runs.iter().all(|r| r.status != RunStatus::Running),
        "no run left running: {runs:#?}"
    );
    assert!(runs.iter().all(|r| r.schedule.as_deref() == Some("fast")));
    for r in runs.iter().filter(|r| r.status == RunStatus::Succeeded) {
        assert!(r.ended_at.is_some() && r.rows_written > 0, "{r:?}");
    }
    assert_eq!(
        winback::schedule::read_status(&state_dir).unwrap().state,
        "stopped"
    );
}

#[test]
fn backfill_runs_dates_in_order_skips_succeeded_ones_and_stops_at_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    project(tmp.path());
    let backfill = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_winback"))
            .args(["backfill", "--from", "2026-01-01", "--to", "2026-01-03"])
            .args(extra)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = backfill(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("backfill done: 3 ran, 0 skipped"), "{out}");
    for d in ["2026-01-01", "2026-01-02", "2026-01-03"] {
        assert!(
            tmp.path()
                .join(format!("out/rfm/as_of={d}/_SUCCESS"))
                .exists()
        );
    }
    let (code, out) = backfill(&[]);
    assert_eq!(code, 0);
    assert!(out.contains("backfill done: 0 ran, 3 skipped"), "{out}");

    // A broken stage makes the first forced date fail, and nothing after it runs.
    std::fs::write(
        tmp.path().join("sql/marts/rfm.sql"),
        "select * from no_such_table",
    )
    .unwrap();
    let (code, out) = backfill(&["--force"]);
    // A stage reading an unknown table is the user's to fix: exit 78, like `winback run`.
    assert_eq!(code, 78, "{out}");
    assert!(out.contains("2026-01-01  FAILED"), "{out}");
    assert!(
        out.contains("backfill stopped at 2026-01-01; 0 date(s) ran"),
        "{out}"
    );
    let runs = State::open(&tmp.path().join(".winback"))
        .unwrap()
        .all_runs()
        .unwrap();
    assert_eq!(runs.len(), 4, "{runs:#?}");
    assert_eq!(
        runs.iter()
            .filter(|r| r.status == RunStatus::Failed)
            .count(),
        1
    );
}
