//! The memory cap bounds the whole `winback` process: a run that passes it stops cleanly,
//! as a configuration problem naming the setting to raise, with nothing committed; it is
//! never left for the operating system to kill.

use std::process::Command;

#[test]
fn a_run_above_its_memory_cap_stops_cleanly_with_the_setting_to_raise() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_winback");
    let data = tmp.path().join("data");
    let demo = Command::new(bin)
        .args([
            "demo",
            "--rows",
            "20000",
            "--no-run",
            "--as-of",
            "2026-11-24",
            "--dir",
        ])
        .arg(&data)
        .current_dir(crate::support::repo())
        .output()
        .unwrap();
    assert!(demo.status.success(), "{demo:?}");
    let out = tmp.path().join("out");
    let mut run = Command::new(bin);
    run.args(["run", "--as-of", "2026-11-24", "--memory-limit-mib", "16"])
        .arg("--output")
        .arg(&out)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .env("WINBACK_NO_PROGRESS", "1")
        .current_dir(crate::support::repo());
    for source in ["purchases", "customers", "complaints"] {
        run.arg("--input")
            .arg(format!("{source}={}", data.join(source).display()));
    }
    let ran = run.output().unwrap();
    let stderr = String::from_utf8_lossy(&ran.stderr);
    // The process itself (code, runtime, allocator) is above 16 MiB: the guard stops the
    // run at once, where an operator pool alone would have let it go on.
    assert_eq!(ran.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("above its cap of 16 MiB"), "{stderr}");
    assert!(
        stderr.contains("raise memory_limit_mib in the pipeline file (or --memory-limit-mib)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.join("purchases_clean").exists(), "nothing committed");
    // The failed run is on record.
    let runs: Vec<_> = std::fs::read_dir(out.join("_runs/as_of=2026-11-24"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
    let record = std::fs::read_to_string(runs[0].as_ref().unwrap().path()).unwrap();
    assert!(record.contains("\"status\": \"failed\""), "{record}");
}
