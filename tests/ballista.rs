//! The default pipeline on Apache DataFusion Ballista (feature `ballista`): in-process
//! (`ballista-standalone`) and on a cluster of separate `winback cluster` processes reading
//! from and writing to an S3-compatible server, each compared table by table with `local`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path as StorePath;

use crate::s3::{Moto, upload, winback};
use crate::support::*;

const AS_OF: &str = "2026-04-01";

fn demo(dir: &Path, rows: u64) {
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: dir.to_path_buf(),
        rows,
        end: date(AS_OF),
        seed: 11,
    })
    .unwrap();
}

/// Every table (folder not starting with `_`) of a local output, its rows sorted.
async fn local_tables(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with('_') {
            let rows = read_output(out, &name, AS_OF).await;
            tables.insert(name, rows);
        }
    }
    tables
}

fn assert_same_tables(
    expected: &BTreeMap<String, Vec<String>>,
    got: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: the same tables"
    );
    let filled = expected.values().filter(|rows| rows.len() > 1).count();
    assert!(
        filled >= 12,
        "most tables have rows: {filled} of {}",
        expected.len()
    );
    for (table, rows) in expected {
        let other = &got[table];
        assert_eq!(rows.len(), other.len(), "{what}: {table} has as many rows");
        if let Some((a, b)) = rows.iter().zip(other).find(|(a, b)| a != b) {
            panic!("{what}: {table} differs:\n  local: {a}\n  {what}: {b}");
        }
    }
}

#[tokio::test]
async fn ballista_standalone_gives_the_same_tables_as_local() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo(&data, 6_000);
    let unsubscribes = empty_source(tmp.path(), "unsubscribes");
    let call_outcomes = empty_source(tmp.path(), "call_outcomes");
    let inputs: Vec<(&str, PathBuf)> = ["purchases", "customers", "complaints", "feedback"]
        .iter()
        .map(|s| (*s, data.join(s)))
        .chain([
            ("unsubscribes", unsubscribes),
            ("call_outcomes", call_outcomes),
        ])
        .collect();
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut outputs = Vec::new();
    for engine in ["local", "ballista-standalone"] {
        let out = tmp.path().join(format!("out-{engine}"));
        let mut opts = run_options(AS_OF, &inputs, &out, &[("engine", engine)]);
        // With a ledger, so the campaigns plan (and their tables are compared) too.
        opts.state_dir = Some(tmp.path().join(format!("state-{engine}")));
        winback::pipeline::run(&opts)
            .await
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        outputs.push(local_tables(&out).await);
    }
    assert!(
        outputs[0].contains_key("ltv") && outputs[0].contains_key("suppressed"),
        "model and campaign tables are compared: {:?}",
        outputs[0].keys()
    );
    assert_same_tables(&outputs[0], &outputs[1], "ballista-standalone");
}

/// A `winback cluster` process on loopback ports, killed when dropped (also when the test
/// panics), with its output kept for the failure message.
struct ClusterProcess {
    child: Child,
    log: PathBuf,
}

impl ClusterProcess {
    fn start(args: &[String], port: u16, log: PathBuf) -> ClusterProcess {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_winback"))
            .args(args)
            // No S3 settings of its own: they come with each query (`s3.*`).
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("WINBACK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut process = ClusterProcess { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("{args:?} exited with {status}:\n{}", process.output());
            }
            assert!(
                Instant::now() < deadline,
                "{args:?} did not listen on {port}:\n{}",
                process.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        process
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every table below `prefix` in the bucket, its rows sorted.
async fn s3_tables(
    store: impl ObjectStore,
    bucket: &str,
    prefix: &str,
) -> BTreeMap<String, Vec<String>> {
    let names: std::collections::BTreeSet<String> = store
        .list(Some(&StorePath::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix(&format!("{prefix}/"))?.split('/').next())
        .filter(|t| !t.starts_with('_'))
        .map(str::to_string)
        .collect();
    let ctx = SessionContext::new();
    ctx.register_object_store(
        &url::Url::parse(&format!("s3://{bucket}")).unwrap(),
        std::sync::Arc::new(store),
    );
    let mut tables = BTreeMap::new();
    for name in names {
        let url = format!("s3://{bucket}/{prefix}/{name}/as_of={AS_OF}/");
        let batches = ctx
            .read_parquet(url.as_str(), ParquetReadOptions::default())
            .await
            .unwrap_or_else(|e| panic!("reading {url}: {e}"))
            .collect()
            .await
            .unwrap();
        tables.insert(name, rows(&batches));
    }
    tables
}

#[tokio::test]
async fn a_cluster_of_separate_processes_reading_and_writing_s3_gives_the_same_tables_as_local() {
    let moto = Moto::start();
    moto.create_bucket("shop");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo(&data, 4_000);
    for s in ["purchases", "customers", "complaints", "feedback"] {
        upload(&moto.store("shop"), &data.join(s), &format!("raw/{s}")).await;
    }
    let scheduler_port = free_port();
    let scheduler = ClusterProcess::start(
        &[
            "cluster",
            "scheduler",
            "--bind-host",
            "127.0.0.1",
            "--external-host",
            "127.0.0.1",
            "--bind-port",
            &scheduler_port.to_string(),
        ]
        .map(String::from),
        scheduler_port,
        tmp.path().join("scheduler.log"),
    );
    let (flight_port, grpc_port) = (free_port(), free_port());
    let executor = ClusterProcess::start(
        &[
            "cluster",
            "executor",
            "--scheduler",
            &format!("127.0.0.1:{scheduler_port}"),
            "--bind-host",
            "127.0.0.1",
            "--external-host",
            "127.0.0.1",
            "--bind-port",
            &flight_port.to_string(),
            "--bind-grpc-port",
            &grpc_port.to_string(),
            "--work-dir",
            &tmp.path().join("executor-work").display().to_string(),
            "--concurrent-tasks",
            "2",
        ]
        .map(String::from),
        flight_port,
        tmp.path().join("executor.log"),
    );
    let run = |engine: &str, prefix: &str| {
        let mut args: Vec<String> = [
            "run",
            "--pipeline",
            &default_pipeline(),
            "--as-of",
            AS_OF,
            "--engine",
            engine,
            "--output",
            &format!("s3://shop/{prefix}"),
            "--state-dir",
            &tmp.path()
                .join(format!("state-{prefix}"))
                .display()
                .to_string(),
            "--set",
            "work_location=s3://shop/work",
            "--threads",
            "2",
        ]
        .map(String::from)
        .to_vec();
        // Every source: the cluster reads them all from shared storage (unsubscribes and
        // call_outcomes are empty prefixes: no file, an empty optional source).
        for s in [
            "purchases",
            "customers",
            "complaints",
            "feedback",
            "unsubscribes",
            "call_outcomes",
        ] {
            args.push("--input".into());
            args.push(format!("{s}=s3://shop/raw/{s}"));
        }
        winback(&moto, &args)
    };
    let local = run("local", "local");
    assert!(
        local.status.success(),
        "local: {}",
        String::from_utf8_lossy(&local.stderr)
    );
    let cluster = run(&format!("ballista://127.0.0.1:{scheduler_port}"), "cluster");
    assert!(
        cluster.status.success(),
        "cluster: {}\n--- scheduler:\n{}\n--- executor:\n{}",
        String::from_utf8_lossy(&cluster.stderr),
        scheduler.output(),
        executor.output()
    );
    // Ballista 55's scheduler drops a task's status when it cannot merge the task's metrics
    // into its stage's (a task plan with another operator count); the job then waits
    // forever or, by luck, finishes. Such an error means a stage's SQL has a shape that can
    // hang (churn_kpis had one: a one-row table cross-joined inside union branches).
    assert!(
        !scheduler.output().contains("Failed to update"),
        "the scheduler dropped task statuses:\n{}",
        scheduler.output()
    );
    let expected = s3_tables(moto.store("shop"), "shop", "local").await;
    assert!(
        expected.contains_key("ltv") && expected.contains_key("suppressed"),
        "model and campaign tables are compared: {:?}",
        expected.keys()
    );
    let got = s3_tables(moto.store("shop"), "shop", "cluster").await;
    assert_same_tables(&expected, &got, "cluster");
    // The run's work tables are removed once its tables are staged.
    let left: Vec<_> = moto
        .store("shop")
        .list(Some(&StorePath::from("work")))
        .try_collect()
        .await
        .unwrap();
    assert!(left.is_empty(), "work tables left: {}", left.len());
}
