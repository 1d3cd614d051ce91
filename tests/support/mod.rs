//! Helpers shared by the integration tests: temp projects, runs, and reading tables back.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use winback::config::LoadOptions;
use winback::engine::EngineOptions;
use winback::pipeline::RunOptions;

/// The repository root (where Cargo.toml is).
/// The unsubscribe-token secret the shipped pipeline's `WINBACK_TOKEN_SECRET` holds in tests.
pub const TOKEN_SECRET: &str = "test-token-secret-0123456789abcdef-0123456789";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped default pipeline file, as a command-line argument.
pub fn default_pipeline() -> String {
    repo()
        .join("pipelines/reactivation.toml")
        .display()
        .to_string()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test dates are valid")
}

/// Options for running the repository's default pipeline with overrides.
pub fn run_options(
    as_of: &str,
    inputs: &[(&str, &Path)],
    output: &Path,
    set: &[(&str, &str)],
) -> RunOptions {
    RunOptions {
        as_of: Some(date(as_of)),
        load: LoadOptions {
            set: set
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
                .collect(),
            output: Some(output.to_string_lossy().into_owned()),
        },
        select: vec![],
        engine: EngineOptions {
            target_partitions: Some(2),
            memory_limit_bytes: None,
            ..EngineOptions::default()
        },
        ..RunOptions::new(repo().join("pipelines/reactivation.toml"))
    }
}

/// Write CSV text as `<dir>/<name>/data.csv` and return the source folder.
pub fn csv_source(dir: &Path, name: &str, text: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("data.csv"), text).unwrap();
    folder
}

/// An empty folder, for optional sources a test does not use.
pub fn empty_source(dir: &Path, name: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

/// `--set` pairs that make the given sources CSV.
pub fn csv_formats(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (format!("sources.{n}.format"), "csv".to_string()))
        .collect()
}

/// Format one cell for comparisons: floats rounded to 6 decimals, nulls empty.
pub fn cell(col: &dyn Array, row: usize) -> String {
    if col.is_null(row) {
        return String::new();
    }
    if let DataType::Float64 = col.data_type() {
        let v = col
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .unwrap()
            .value(row);
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return if s == "-0" { "0".into() } else { s.to_string() };
    }
    ArrayFormatter::try_new(col, &FormatOptions::default())
        .unwrap()
        .value(row)
        .to_string()
}

/// Rows as comma-joined cells, sorted; the header first.
pub fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    let mut header = None;
    for b in batches {
        header.get_or_insert_with(|| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>()
                .join(",")
        });
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b.columns().iter().map(|c| cell(c.as_ref(), r)).collect();
            out.push(cells.join(","));
        }
    }
    out.sort();
    if let Some(h) = header {
        out.insert(0, h);
    }
    out
}

/// Read an output table folder (`<out>/<table>/as_of=D/`) with DataFusion.
pub async fn read_output(out: &Path, table: &str, as_of: &str) -> Vec<String> {
    let ctx = SessionContext::new();
    let dir = out.join(table).join(format!("as_of={as_of}"));
    let df = ctx
        .read_parquet(format!("{}/", dir.display()), ParquetReadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    rows(&df.collect().await.unwrap())
}

/// Query a table of a finished session.
pub async fn query(ctx: &SessionContext, sql: &str) -> Vec<String> {
    rows(&ctx.sql(sql).await.unwrap().collect().await.unwrap())
}

/// A copy of the default project (pipeline, SQL) with small demo data, in `dir`.
pub fn project(dir: &Path) {
    for sub in [
        "pipelines",
        "sql/staging",
        "sql/intermediate",
        "sql/marts",
        "sql/seeds",
        "sql/audiences",
        "sql/results",
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for f in std::fs::read_dir(repo().join(sub)).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                std::fs::copy(&f, dir.join(sub).join(f.file_name().unwrap())).unwrap();
            }
        }
    }
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: dir.join("demo-data"),
        rows: 2_000,
        end: chrono::Local::now().date_naive(),
        seed: 5,
    })
    .unwrap();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process on a loopback port, stopped on drop.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(program: &str, args: &[String], port: u16, install_hint: &str) -> Server {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is installed ({install_hint}): {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{program} did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The purchases of demo data in `data` written again in `dir` as one Parquet file
/// (`all.parquet`), one CSV file (`all.csv`) and two halves (`part-1.parquet`,
/// `part-2.parquet`): the shapes a source URL can name. Returns the number of rows.
pub async fn reshaped_purchases(data: &Path, dir: &Path) -> usize {
    use winback::demo::generate::write_parquet;
    let batches = SessionContext::new()
        .read_parquet(
            format!("{}/", data.join("purchases").display()),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let batch = datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    write_parquet(&dir.join("all.parquet"), batch.clone()).unwrap();
    let mut csv = Vec::new();
    datafusion::arrow::csv::Writer::new(&mut csv)
        .write(&batch)
        .unwrap();
    std::fs::write(dir.join("all.csv"), csv).unwrap();
    let (rows, half) = (batch.num_rows(), batch.num_rows() / 2);
    write_parquet(&dir.join("part-1.parquet"), batch.slice(0, half)).unwrap();
    write_parquet(&dir.join("part-2.parquet"), batch.slice(half, rows - half)).unwrap();
    rows
}
