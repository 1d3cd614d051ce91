//! The command line as a user meets it: help everywhere, clear errors, exit codes.

use std::process::Command;

fn winback(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .current_dir(crate::support::repo())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_command_has_help() {
    for cmd in ["run", "validate", "demo", "explain"] {
        let (code, stdout, _) = winback(&[cmd, "--help"]);
        assert_eq!(code, 0, "{cmd} --help");
        assert!(stdout.contains("Usage: winback"), "{cmd}: {stdout}");
    }
    let (_, stdout, _) = winback(&["run", "--help"]);
    for flag in [
        "--as-of",
        "--input",
        "--output",
        "--set",
        "--pipeline",
        "--select",
    ] {
        assert!(stdout.contains(flag), "run --help mentions {flag}");
    }
}

#[test]
fn a_bad_override_is_a_configuration_error_with_exit_78() {
    let (code, _, stderr) = winback(&["run", "--set", "variables.lapse_factor=high"]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("--set variables.lapse_factor: expected a number, got 'high'"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_input_name_is_reported_with_the_known_ones() {
    let (code, _, stderr) = winback(&["validate", "--input", "orders=/tmp/x"]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains(
            "no source named 'orders' (sources: call_outcomes, complaints, customers, feedback, purchases, unsubscribes)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_missing_pipeline_file_fails_with_its_path() {
    let (code, _, stderr) = winback(&["run", "--pipeline", "pipelines/nope.toml"]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("cannot read pipelines/nope.toml"),
        "{stderr}"
    );
}

#[test]
fn explain_shows_the_sql_inputs_parameters_and_plan() {
    let tmp = tempfile::tempdir().unwrap();
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: tmp.path().to_path_buf(),
        rows: 2000,
        end: crate::support::date("2026-01-01"),
        seed: 1,
    })
    .unwrap();
    let input = format!("purchases={}", tmp.path().join("purchases").display());
    let (code, stdout, stderr) =
        winback(&["explain", "rfm", "--as-of", "2026-01-01", "--input", &input]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("-- reads: customer_summary, rfm_segment_cells"),
        "{stdout}"
    );
    assert!(stdout.contains("$as_of = 2026-01-01"), "{stdout}");
    assert!(stdout.contains("percent_rank"), "{stdout}");
    assert!(stdout.contains("-- physical plan:"), "{stdout}");
    let (code, stdout, _) = winback(&["explain", "purchases", "--input", &input]);
    assert_eq!(code, 0);
    assert!(stdout.contains("'missing_customer_id'"), "{stdout}");

    // --analyze runs the stages upstream, then the stage, with metrics per operator.
    let (code, stdout, stderr) = winback(&[
        "explain",
        "customer_history",
        "--analyze",
        "--as-of",
        "2026-01-01",
        "--input",
        &input,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let ran = stdout
        .lines()
        .find(|l| l.starts_with("-- ran in"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let rows: u64 = ran
        .split(", ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{ran}"));
    assert!((100..=250).contains(&rows), "about 2000/8 customers: {ran}");
    assert!(stdout.contains("AggregateExec"), "{stdout}");
    assert!(stdout.contains(&format!("output_rows={rows}")), "{stdout}");
}
