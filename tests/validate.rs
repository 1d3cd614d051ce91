//! `winback validate` reports every problem at once and exits 78.

use std::path::Path;
use std::process::Command;

fn project(dir: &Path, csv_header: &str, stages: &[(&str, &str)]) -> std::path::PathBuf {
    let data = dir.join("data/purchases");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("p.csv"),
        format!("{csv_header}\nc1,2026-01-01,5\n"),
    )
    .unwrap();
    let sql = dir.join("sql/marts");
    std::fs::create_dir_all(&sql).unwrap();
    for (name, text) in stages {
        std::fs::write(sql.join(format!("{name}.sql")), text).unwrap();
    }
    let pipeline = dir.join("pipelines/p.toml");
    std::fs::create_dir_all(pipeline.parent().unwrap()).unwrap();
    std::fs::write(
        &pipeline,
        r#"
name = "p"
sql_dir = "../sql"
[sources.purchases]
url = "../data/purchases"
format = "csv"
[sources.purchases.columns]
customer_id = "id"
order_ts = "timestamp"
amount = "number"
[stages.good]
columns = ["customer_id", "total"]
"#,
    )
    .unwrap();
    pipeline
}

fn validate(pipeline: &Path) -> (i32, String) {
    validate_with(pipeline, &[])
}

const BROKEN: &[(&str, &str)] = &[
    (
        "good",
        "select customer_id, sum(amount) as total from purchases group by customer_id",
    ),
    ("reads_unknown", "select * from no_such_table"),
    ("cycle_a", "select * from cycle_b"),
    ("cycle_b", "select * from cycle_a"),
    ("syntax", "selec customer_id frm purchases"),
    (
        "missing_column",
        "select customer_id, no_such_column from good",
    ),
];

#[test]
fn validate_reports_unknown_table_cycle_syntax_error_and_missing_column_together() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = project(tmp.path(), "customer_id,order_ts,amount", BROKEN);
    let (code, text) = validate(&pipeline);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("4 problem(s)"), "{text}");
    assert!(text.contains("syntax.sql: SQL syntax error"), "{text}");
    assert!(
        text.contains(
            "reads_unknown.sql: stage 'reads_unknown' reads unknown table 'no_such_table'"
        ),
        "{text}"
    );
    assert!(
        text.contains("a cycle of stages reading each other: cycle_a"),
        "{text}"
    );
    assert!(
        text.contains("missing_column.sql: stage 'missing_column'")
            && text.contains("no_such_column"),
        "{text}"
    );
}

#[test]
fn validate_reports_source_schema_and_stage_problems_in_one_report() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = project(tmp.path(), "customer_id,order_ts,total", BROKEN);
    let (code, text) = validate(&pipeline);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("5 problem(s)"), "{text}");
    assert!(text.contains("column 'amount' is missing"), "{text}");
    assert!(text.contains("p.csv"), "{text}");
}

#[test]
fn validate_compares_planned_columns_with_documented_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let stages = [(
        "good",
        "select customer_id, sum(amount) as spend from purchases group by customer_id",
    )];
    let pipeline = project(tmp.path(), "customer_id,order_ts,amount", &stages);
    let (code, text) = validate(&pipeline);
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains("documented but not produced: [total]; produced but not documented: [spend]"),
        "{text}"
    );
}

#[test]
fn validate_checks_the_columns_that_stage_tests_name() {
    let tmp = tempfile::tempdir().unwrap();
    let stages = [(
        "good",
        "select customer_id, sum(amount) as total from purchases group by customer_id",
    )];
    let pipeline = project(tmp.path(), "customer_id,order_ts,amount", &stages);
    let text = std::fs::read_to_string(&pipeline).unwrap() + "not_null = [\"nonexistent_col\"]\n";
    std::fs::write(&pipeline, text).unwrap();
    let (code, text) = validate(&pipeline);
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains("has a test on column 'nonexistent_col'"),
        "{text}"
    );
}

#[test]
fn the_default_pipeline_is_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: data.clone(),
        rows: 2000,
        end: crate::support::date("2026-01-01"),
        seed: 1,
    })
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(["validate", "--pipeline"])
        .arg(crate::support::repo().join("pipelines/reactivation.toml"))
        .arg("--input")
        .arg(format!("purchases={}", data.join("purchases").display()))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Every SMS text, `sms_text` of the steps that also have e-mail included, fits one
    // segment.
    assert!(!text.contains("segments"), "{text}");
}

fn validate_with(pipeline: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(["validate", "--pipeline"])
        .arg(pipeline)
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap(), text)
}

const GOOD: &[(&str, &str)] = &[(
    "good",
    "select customer_id, sum(amount) as total from purchases group by customer_id",
)];

#[test]
fn a_remote_engine_with_a_local_work_location_or_output_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = project(tmp.path(), "customer_id,order_ts,amount", GOOD);
    let (code, text) = validate_with(
        &pipeline,
        &[
            "--engine",
            "ballista://127.0.0.1:50050",
            "--set",
            "work_location=/tmp/winback-work",
        ],
    );
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains("work_location '/tmp/winback-work' is not shared storage"),
        "{text}"
    );
    assert!(
        text.contains("which write the outputs: output '")
            && text.contains("which read the sources: source 'purchases' at '"),
        "{text}"
    );
    let (code, text) = validate_with(&pipeline, &["--engine", "spark://x"]);
    assert_eq!(code, 78, "{text}");
    assert!(text.contains("unknown engine 'spark://x'"), "{text}");
    let (code, text) = validate_with(&pipeline, &["--engine", "local"]);
    assert_eq!(code, 0, "{text}");
}

#[cfg(not(feature = "ballista"))]
#[test]
fn without_the_ballista_feature_a_ballista_engine_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = project(tmp.path(), "customer_id,order_ts,amount", GOOD);
    let (code, text) = validate_with(&pipeline, &["--engine", "ballista-standalone"]);
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains(
            "this winback was built without the ballista feature; build with --features ballista"
        ),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args([
            "cluster",
            "scheduler",
            "--bind-host",
            "127.0.0.1",
            "--bind-port",
            "1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("--features ballista"), "{stderr}");
}

#[test]
fn a_time_column_on_the_unsubscribes_source_is_refused() {
    // It would hide every opt-out made on or after a run's as_of from that run.
    let (code, text) = validate_with(
        &crate::support::repo().join("pipelines/reactivation.toml"),
        &["--set", "sources.unsubscribes.time_column=ts"],
    );
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains("sources.unsubscribes: time_column would hide from the run every opt-out"),
        "{text}"
    );
}

#[test]
fn a_channel_reaching_people_without_a_token_secret_is_refused() {
    // Unsigned tokens could be forged by anyone who knows customer ids: a SendGrid
    // channel needs `token_secret_env`; the file channel alone does not.
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = project(tmp.path(), "customer_id,order_ts,amount", GOOD);
    let base = std::fs::read_to_string(&pipeline).unwrap();
    let file_channel = "\n[channels.email]\ntype = \"file\"\nmedium = \"email\"\n";
    std::fs::write(&pipeline, format!("{base}{file_channel}")).unwrap();
    let (code, out) = validate_with(&pipeline, &[]);
    assert_eq!(code, 0, "the file channel may do without a secret: {out}");

    let sendgrid = "\n[channels.email]\ntype = \"sendgrid\"\napi_key_env = \"SG_KEY\"\nfrom = \"shop@example.com\"\n";
    std::fs::write(&pipeline, format!("{base}{sendgrid}")).unwrap();
    let (code, out) = validate_with(&pipeline, &[]);
    assert_eq!(code, 78, "{out}");
    assert!(
        out.contains(
            "delivery.token_secret_env is not set, but channel \"email\" sends to real recipients"
        ),
        "{out}"
    );
    let with_secret =
        format!("{base}[delivery]\ntoken_secret_env = \"WINBACK_TOKEN_SECRET\"\n{sendgrid}");
    std::fs::write(&pipeline, with_secret).unwrap();
    let (code, out) = validate_with(&pipeline, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_step_naming_an_unknown_channel_in_its_list_or_fallback_exits_78() {
    // Demo data: the campaigns are checked against the audiences' columns too.
    let tmp = tempfile::tempdir().unwrap();
    crate::campaigns::campaign_project(tmp.path());
    let file = tmp.path().join("pipelines/reactivation.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let quick = "day = 0\nchannel = [\"calls\", \"email\", \"sms\"] # a call for the top";
    let amends = "day = 0\nchannel = [\"calls\", \"email\", \"sms\"] # SMS for whoever";
    assert!(
        text.contains(quick) && text.contains(amends),
        "the shipped steps moved"
    );
    let text = text
        .replace(
            quick,
            "day = 0\nchannel = [\"calls\", \"email\", \"fax\"] # a call for the top",
        )
        .replace(
            amends,
            "day = 0\nchannel = \"preferred\"\nfallback = [\"pigeon\", \"sms\"]  #",
        );
    std::fs::write(&file, text).unwrap();
    let (code, text) = validate(&file);
    assert_eq!(code, 78, "{text}");
    for expected in [
        "campaign winback_quick: step 1: channel \"fax\" is not a [channels.*] table",
        "campaign winback_amends: step 1: channel \"pigeon\" is not a [channels.*] table",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn a_twilio_channel_that_schedules_without_a_messaging_service_is_refused() {
    // Twilio schedules (`SendAt`) only messages sent through a Messaging Service.
    let set = [
        "channels.sms.type=twilio",
        "channels.sms.account_sid_env=TWILIO_ACCOUNT_SID",
        "channels.sms.auth_token_env=TWILIO_AUTH_TOKEN",
        "channels.sms.from=\"+15550001111\"",
        "channels.sms.defer=schedule",
    ];
    let args: Vec<&str> = set.iter().flat_map(|s| ["--set", *s]).collect();
    let (code, text) = validate_with(
        &crate::support::repo().join("pipelines/reactivation.toml"),
        &args,
    );
    assert_eq!(code, 78, "{text}");
    assert!(
        text.contains("channels.sms") && text.contains("needs `messaging_service_sid`"),
        "{text}"
    );
}
