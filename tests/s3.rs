//! The same pipeline reading from and writing to an S3-compatible server on 127.0.0.1
//! (moto's server, installed by `.ci/run`), compared with a local run.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::support::*;

/// A moto S3 server on a free loopback port, stopped on drop (also used by `ballista`).
pub(crate) struct Moto {
    server: Server,
}

impl Moto {
    pub(crate) fn start() -> Moto {
        let port = free_port();
        let server = Server::start(
            "moto_server",
            &[
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            port,
            "pip install 'moto[server]'; scripts/test.sh does this",
        );
        Moto { server }
    }

    pub(crate) fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// Create a bucket with a plain HTTP PUT (moto accepts it unsigned).
    pub(crate) fn create_bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.server.port)).unwrap();
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.server.port
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }

    pub(crate) fn store(&self, bucket: &str) -> impl ObjectStore + use<> {
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap()
    }
}

pub(crate) async fn upload(store: &impl ObjectStore, local: &Path, prefix: &str) {
    for entry in std::fs::read_dir(local).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        store
            .put(&StorePath::from(format!("{prefix}/{name}")), bytes.into())
            .await
            .unwrap();
    }
}

/// Runs `winback ARGS` against moto; a run still going after ten minutes is killed and
/// reported (exit status 137) with what it printed, so a hang fails the test instead of CI.
pub(crate) fn winback(moto: &Moto, args: &[String]) -> std::process::Output {
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-never-printed")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            let mut stderr = std::fs::read(&err).unwrap();
            stderr.extend_from_slice(b"\n(killed: still running after 600 s)");
            std::fs::write(&err, stderr).unwrap();
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

#[tokio::test]
async fn a_run_reads_from_and_writes_to_s3_with_the_same_results_as_local() {
    let moto = Moto::start();
    moto.create_bucket("shop");
    let store = moto.store("shop");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: data.clone(),
        rows: 6_000,
        end: date("2026-04-01"),
        seed: 3,
    })
    .unwrap();
    for s in ["purchases", "customers", "complaints"] {
        upload(&store, &data.join(s), &format!("raw/{s}")).await;
    }
    let pipeline = repo().join("pipelines/reactivation.toml");
    let mut args: Vec<String> = vec![
        "run".into(),
        "--pipeline".into(),
        pipeline.display().to_string(),
        "--as-of".into(),
        "2026-04-01".into(),
        "--output".into(),
        "s3://shop/marts".into(),
    ];
    for s in ["purchases", "customers", "complaints"] {
        args.push("--input".into());
        args.push(format!("{s}=s3://shop/raw/{s}"));
    }
    let out = winback(&moto, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("test-secret-never-printed"));

    let listed: Vec<String> = store
        .list(Some(&StorePath::from("marts/rfm/as_of=2026-04-01")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert!(listed.iter().any(|l| l.ends_with(".parquet")), "{listed:?}");
    assert!(listed.iter().any(|l| l.ends_with("_SUCCESS")), "{listed:?}");
    let manifest = store
        .get(&StorePath::from(
            "marts/_runs/as_of=2026-04-01/manifest.json",
        ))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["status"], "succeeded");
    let purchases = manifest["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "purchases")
        .unwrap();
    assert!(
        purchases["files"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("s3://shop/raw/purchases/")
    );

    // Read the S3 table back and compare with a local run on the same files.
    let ctx = SessionContext::new();
    ctx.register_object_store(
        &url::Url::parse("s3://shop").unwrap(),
        std::sync::Arc::new(store),
    );
    let from_s3 = rows(
        &ctx.read_parquet(
            "s3://shop/marts/rfm/as_of=2026-04-01/",
            ParquetReadOptions::default(),
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap(),
    );
    let local_out = tmp.path().join("local-out");
    let inputs: Vec<(&str, std::path::PathBuf)> = ["purchases", "customers", "complaints"]
        .iter()
        .map(|s| (*s, data.join(s)))
        .collect();
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    winback::pipeline::run(&run_options("2026-04-01", &inputs, &local_out, &[]))
        .await
        .unwrap();
    assert_eq!(from_s3, read_output(&local_out, "rfm", "2026-04-01").await);
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error_without_secrets() {
    let moto = Moto::start();
    let out = winback(
        &moto,
        &[
            "run".into(),
            "--pipeline".into(),
            default_pipeline(),
            "--input".into(),
            "purchases=s3://no-such-bucket/raw".into(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("s3://no-such-bucket/raw"), "{stderr}");
    assert!(!stderr.contains("test-secret-never-printed"), "{stderr}");
}

/// On S3 too, a source may be one Parquet file, one CSV file, a glob or a folder, with the
/// same tables as a local folder.
#[tokio::test]
async fn an_s3_source_may_be_a_file_a_csv_file_a_glob_or_a_folder() {
    let moto = Moto::start();
    moto.create_bucket("shop");
    let store = moto.store("shop");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: data.clone(),
        rows: 3_000,
        end: date("2026-04-01"),
        seed: 4,
    })
    .unwrap();
    let files = tmp.path().join("files");
    reshaped_purchases(&data, &files).await;
    upload(&store, &files, "one").await;
    for s in ["purchases", "customers", "complaints"] {
        upload(&store, &data.join(s), &format!("raw/{s}")).await;
    }
    let tables = ["purchases_clean", "customer_summary", "rfm"];
    let local_out = tmp.path().join("local-out");
    let inputs: Vec<(&str, std::path::PathBuf)> = ["purchases", "customers", "complaints"]
        .iter()
        .map(|s| (*s, data.join(s)))
        .collect();
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let mut opts = run_options("2026-04-01", &inputs, &local_out, &[]);
    opts.select = vec!["rfm".into()];
    winback::pipeline::run(&opts).await.unwrap();
    let mut expected = Vec::new();
    for t in tables {
        expected.push(read_output(&local_out, t, "2026-04-01").await);
    }
    for (name, url, format) in [
        ("folder", "s3://shop/raw/purchases", "parquet"),
        ("file", "s3://shop/one/all.parquet", "parquet"),
        ("csv", "s3://shop/one/all.csv", "csv"),
        ("glob", "s3://shop/one/part-*.parquet", "parquet"),
    ] {
        let out = tmp.path().join(name);
        let result = winback(
            &moto,
            &[
                "run".into(),
                "--pipeline".into(),
                default_pipeline(),
                "--as-of".into(),
                "2026-04-01".into(),
                "--select".into(),
                "rfm".into(),
                "--output".into(),
                out.display().to_string(),
                "--state-dir".into(),
                tmp.path()
                    .join(format!("state-{name}"))
                    .display()
                    .to_string(),
                "--input".into(),
                format!("purchases={url}"),
                "--input".into(),
                "customers=s3://shop/raw/customers".into(),
                "--input".into(),
                "complaints=s3://shop/raw/complaints".into(),
                "--set".into(),
                format!("sources.purchases.format={format}"),
            ],
        );
        assert!(
            result.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        for (i, t) in tables.iter().enumerate() {
            assert!(
                read_output(&out, t, "2026-04-01").await == expected[i],
                "{name}: {t} differs from the local folder's"
            );
        }
    }
}
