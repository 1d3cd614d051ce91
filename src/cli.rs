//! The command line: every command and flag, with `--help` text.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "winback",
    version,
    about = "Find customers who are drifting away, and win them back.",
    long_about = "winback runs a pipeline of DataFusion SQL stages and lifetime-value models over \
purchase data in a local folder or object storage (S3, GCS, Azure): cleaned purchases, RFM \
segments, 80/20 grades, lapse and segment alerts, why customers left, lifetime and second \
lifetime value, and the win-back treatment of each lapsed customer. Outputs are \
hive-partitioned Parquet tables under <output>/<table>/as_of=<date>/. `winback serve` runs it \
on cron schedules. Start with `winback demo`."
)]
pub struct Cli {
    /// Log format on stderr: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline for one as_of date.
    Run(RunArgs),
    /// Check the pipeline file, sources and every stage's plan without running anything.
    Validate(ValidateArgs),
    /// Generate synthetic shop data into ./demo-data and run the default pipeline on it.
    Demo(DemoArgs),
    /// Show a stage's resolved SQL, its inputs and its plan.
    Explain(ExplainArgs),
    /// Run pipelines on their cron schedules until stopped (SIGTERM/Ctrl-C).
    Serve(ServeArgs),
    /// Answer one-click unsubscribes (/u/TOKEN) and provider event webhooks
    /// (/events/sendgrid, /events/mailgun, /events/twilio) over HTTP, behind your TLS
    /// proxy, recording them in the state folder for the next run's suppression.
    Listen(ListenArgs),
    /// Run a pipeline for each as_of in a date range, oldest first.
    Backfill(BackfillArgs),
    /// List the run history.
    Runs(RunsArgs),
    /// Show the scheduler's status file (last and next runs, heartbeat).
    Status(StatusArgs),
    /// The send ledger: messages by campaign, step, channel and state; `--reconcile` settles
    /// `unknown` rows by asking the providers what they accepted.
    Sends(SendsArgs),
    /// Render a campaign step for a few sample audience rows and send them, marked
    /// "[TEST] ", to internal addresses through the step's real channel; recorded in the
    /// state table test_sends, never in the ledger or the results.
    SendTest(SendTestArgs),
    /// Write the run's HTML report: <output>/_report/as_of=<D>/report.html.
    Report(ReportArgs),
    /// Lifetime value tools.
    #[command(subcommand)]
    Ltv(LtvCommand),
    /// Run a Ballista cluster that knows winback's SQL functions (build with
    /// --features ballista): one scheduler, any number of executors.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The scheduler: plans each query's stages and hands their tasks to executors.
    Scheduler(SchedulerArgs),
    /// An executor: runs tasks, keeps shuffle files in its work folder.
    Executor(ExecutorArgs),
}

/// The flags of Ballista's own `ballista-scheduler` that winback's scheduler takes.
#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Local address to bind to.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_host: String,
    /// Port to listen on (`engine = "ballista://HOST:PORT"` names it).
    #[arg(long, default_value_t = 50050)]
    pub bind_port: u16,
    /// The host name executors and clients reach this scheduler by.
    #[arg(long, default_value = "localhost")]
    pub external_host: String,
}

/// The flags of Ballista's own `ballista-executor` that winback's executor takes.
#[derive(Debug, Clone, Args)]
pub struct ExecutorArgs {
    /// The scheduler to register with, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", default_value = "localhost:50050")]
    pub scheduler: String,
    /// Local address to bind to.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_host: String,
    /// The host name the scheduler and other executors reach this executor by (default:
    /// the address it connects from).
    #[arg(long)]
    pub external_host: Option<String>,
    /// Port of the Arrow Flight service (results and shuffle data are fetched there).
    #[arg(short = 'p', long, default_value_t = 50051)]
    pub bind_port: u16,
    /// Port of the gRPC service.
    #[arg(long, default_value_t = 50052)]
    pub bind_grpc_port: u16,
    /// Folder for shuffle files (default: a temporary folder).
    #[arg(long)]
    pub work_dir: Option<String>,
    /// Tasks run at once (default: all cores).
    #[arg(short = 'c', long)]
    pub concurrent_tasks: Option<usize>,
    /// Seconds to keep trying to reach the scheduler at start (0: fail at once).
    #[arg(long, default_value_t = 30)]
    pub scheduler_connect_timeout_seconds: u16,
}

#[derive(Debug, Subcommand)]
pub enum LtvCommand {
    /// Fit BG/NBD before a calibration end date and compare predicted with actual repeat
    /// purchases in the holdout period, in total and by calibration frequency.
    Backtest(BacktestArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// End of the calibration period (exclusive): the model sees purchases before it.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub calibration_end: NaiveDate,
    /// End of the holdout period (exclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub holdout_end: NaiveDate,
    /// Also write the table as <URL>/ltv_backtest/as_of=<holdout end>/.
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Folder of schedule files (*.toml).
    #[arg(long, default_value = "schedules")]
    pub schedules: PathBuf,
    /// State folder: run history, locks, status file.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Seconds a running pipeline gets to finish after SIGTERM.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Address and port to answer on. Default: the pipeline's [http] bind, else
    /// 127.0.0.1:8080 (keep it on loopback behind a TLS proxy).
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// State folder: what the listener records goes to its database.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct BackfillArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// First as_of (inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: NaiveDate,
    /// Last as_of (inclusive).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: NaiveDate,
    /// Run dates that already succeeded again.
    #[arg(long)]
    pub force: bool,
    /// Where outputs go (path or URL).
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// State folder: run history and locks.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
    /// On SIGTERM or Ctrl-C, seconds the run may still take to finish; a run that
    /// cannot stops at a safe point (nothing committed) within them. A second signal
    /// stops at once.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub grace_secs: u64,
    /// Also send the campaigns of each date. Off by default: a backfill of last March
    /// must never message customers today.
    #[arg(long)]
    pub send: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    /// How many of the latest runs to show.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// State folder.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// State folder.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
    /// Exit 1 when a running scheduler's heartbeat is older than this (for monitoring).
    #[arg(long, default_value_t = 120)]
    pub stale_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// The pipeline file.
    #[arg(long, default_value = "pipelines/reactivation.toml")]
    pub pipeline: PathBuf,
    /// Override a source's location: NAME=URL, a folder, one file or a glob (data/2026-*.parquet);
    /// a path, file://, s3://, gs://, az:// or memory://.
    #[arg(long = "input", value_name = "NAME=URL", value_parser = parse_key_value)]
    pub inputs: Vec<(String, String)>,
    /// Override any pipeline-file key by dotted path, e.g. variables.lapse_factor=2.0.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Where the SQL stages run: local, ballista-standalone or ballista://HOST:PORT
    /// (replaces the pipeline file's `engine`).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
}

impl PipelineArgs {
    /// `--set` pairs, with `--engine` as the `engine` key.
    pub fn overrides(&self) -> Vec<(String, String)> {
        let mut set = self.set.clone();
        set.extend(
            self.engine
                .iter()
                .map(|e| ("engine".to_string(), e.clone())),
        );
        set
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The day the run is for; purchases on or after it are outside the run. Default: today
    /// in the pipeline's timezone.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
    /// Where outputs go (path or URL). Default: the pipeline's output.url, else ./out.
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// Run only these stages and the stages they read.
    #[arg(long, value_name = "STAGE")]
    pub select: Vec<String>,
    /// Memory limit in MiB for query operators (they spill to disk above it).
    #[arg(long, value_name = "MIB")]
    pub memory_limit_mib: Option<usize>,
    /// Threads for query execution and model fits (default: all cores). Results do not
    /// depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// State folder: run history (readable as the table winback_runs) and locks.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
    /// On SIGTERM or Ctrl-C, seconds the run may still take to finish; a run that
    /// cannot stops at a safe point (nothing committed) within them. A second signal
    /// stops at once.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub grace_secs: u64,
    /// Seconds of the run lock's lease (renewed while the run goes on): how long a run
    /// killed without a chance to release it blocks the next one.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lease_secs: u64,
    /// Decide every message and write the exact requests (secrets masked) to the outbox;
    /// send nothing, record nothing.
    #[arg(long, conflicts_with = "no_send")]
    pub dry_run: bool,
    /// Stop after the tables: no campaign is planned or sent.
    #[arg(long)]
    pub no_send: bool,
    /// Recompute the stages maintained per key (`incremental_key`) over the whole
    /// history, not only the keys the night's new rows touch.
    #[arg(long)]
    pub full_refresh: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Folder of schedule files to check too (each one's next three fire times are shown).
    #[arg(long, default_value = "schedules")]
    pub schedules: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// About how many purchase rows to generate (about 8 per customer).
    #[arg(long, default_value_t = 200_000)]
    pub rows: u64,
    /// Random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Folder to write the demo data into.
    #[arg(long, default_value = "demo-data")]
    pub dir: PathBuf,
    /// Only generate the data; do not run the pipeline.
    #[arg(long)]
    pub no_run: bool,
    /// The run's as_of; the data ends the day before. Default: today.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
    /// The pipeline to run on the data.
    #[arg(long, default_value = "pipelines/reactivation.toml")]
    pub pipeline: PathBuf,
    /// Where outputs go.
    #[arg(long, default_value = "out")]
    pub output: String,
    /// Threads for query execution and model fits (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the SQL stages run: local, ballista-standalone or ballista://HOST:PORT.
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// State folder: run history and locks (the demo's run is recorded like any other).
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The stage (or source) to explain.
    pub stage: String,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// as_of bound to `$as_of` (default: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
    /// Also run it on the data (the stages it reads first, nothing written) and show each
    /// operator's rows and time, to find what makes a stage slow.
    #[arg(long)]
    pub analyze: bool,
    /// Worker threads for --analyze (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct SendsArgs {
    /// Only this campaign.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Only the sends decided for this as_of.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
    /// List the recipients whose request may have been processed (in flight when a process
    /// died, or the provider's answer was lost), addresses masked.
    #[arg(long)]
    pub unknown: bool,
    /// Ask each channel's provider what it accepted of the `unknown` rows: `delivered`
    /// when it lists them, `not_sent` (sent by the next run, once) when its answer proves
    /// it never accepted them; the rest stay `unknown` with the reason. Every run also does
    /// this before planning.
    #[arg(long, conflicts_with = "unknown")]
    pub reconcile: bool,
    /// With `--reconcile`: ask the providers, change nothing.
    #[arg(long, requires = "reconcile")]
    pub dry_run: bool,
    /// With `--reconcile`: the pipeline whose channels to ask.
    #[arg(long, default_value = "pipelines/reactivation.toml")]
    pub pipeline: PathBuf,
    /// With `--reconcile`: the output folder whose file outbox to read (default: the
    /// pipeline's output.url).
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// State folder holding the ledger.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The output folder to report on. Default: the pipeline's output.url.
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// The run date to report on. Default: today in the pipeline's timezone.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
    /// State folder (the send ledger: deliveries per campaign).
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct SendTestArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The campaign to test.
    #[arg(long)]
    pub campaign: String,
    /// The step (1-based) whose templates and channel are used.
    #[arg(long, default_value_t = 1)]
    pub step: u32,
    /// Where the test messages go: e-mail addresses for an e-mail channel, E.164 numbers
    /// (+4915112345678) for an SMS channel. Every sample goes to every address.
    #[arg(long, value_name = "ADDR", required = true, num_args = 1..)]
    pub to: Vec<String>,
    /// How many sample rows of the audience to render (the lowest customer ids).
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub rows: usize,
    /// Which of the step's channels to send through. Default: the first one the step
    /// lists whose medium the --to addresses are (e-mail addresses or E.164 numbers).
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
    /// The audience of this as_of. Default: today in the pipeline's timezone.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<NaiveDate>,
    /// The output location whose `_outbox/test_sends/` a file channel writes to (default:
    /// the pipeline's output.url). No table is written.
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// State folder: test sends are recorded in its table test_sends.
    #[arg(long, default_value = ".winback", env = "WINBACK_STATE_DIR")]
    pub state_dir: PathBuf,
}
