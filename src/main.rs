//! The `winback` binary: parse the command line, set up logging, run, map errors to exit codes.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use winback::cli::{Cli, Command, LtvCommand};
use winback::commands;
use winback::error::{ConfigError, EXIT_CONFIG, EXIT_FAILED, PipelineError};

// DataFusion allocates and frees millions of small buffers (group keys, hash tables,
// batches); jemalloc does that markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn init_logging(format: &str, reports_its_own_errors: bool, cluster: bool) {
    // On a terminal the progress display shows the stages; logs say only what matters,
    // and a command that prints its own error report does not log it a second time.
    let terminal = std::io::stderr().is_terminal();
    let default = if terminal { "warn" } else { "info" };
    let quiet = if terminal && reports_its_own_errors {
        ",winback::schedule::retries=off"
    } else if cluster {
        // A cluster process says what Ballista does (listening, executors, jobs).
        ",ballista_scheduler=info,ballista_executor=info"
    } else {
        ""
    };
    let filter = EnvFilter::try_from_env("WINBACK_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("winback={default},warn{quiet}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() {
    let cli = Cli::parse();
    let reports_own = matches!(
        cli.command,
        Command::Run(_) | Command::Backfill(_) | Command::Demo(_)
    );
    init_logging(
        &cli.log_format,
        reports_own,
        matches!(cli.command, Command::Cluster(_)),
    );
    // This process is the run's: a run stops cleanly when it passes its memory cap.
    winback::memory_cap::enable_process_guard();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Validate(args) => commands::validate::validate(args).await,
            Command::Demo(args) => commands::demo::demo(args).await,
            Command::Explain(args) => commands::explain::explain(args).await,
            Command::Serve(args) => commands::schedule::serve(args).await,
            Command::Listen(args) => commands::listen::listen(args).await,
            Command::Backfill(args) => commands::schedule::backfill(args).await,
            Command::Runs(args) => commands::schedule::runs(args).await,
            Command::Status(args) => commands::schedule::status(args).await,
            Command::Sends(args) => commands::sends::sends(args).await,
            Command::SendTest(args) => commands::send_test::send_test(args).await,
            Command::Report(args) => commands::report::report(args).await,
            Command::Ltv(LtvCommand::Backtest(args)) => commands::ltv::backtest(args).await,
            Command::Cluster(command) => commands::cluster::cluster(command).await,
        }
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // A progress line may still hold the cursor: start the report on a line of its own.
            let gap = if std::io::stderr().is_terminal() {
                "\n"
            } else {
                ""
            };
            // The chain of causes, each once: most errors already quote their cause.
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            eprintln!("{gap}error: {message}");
            if let Some(p) = e.downcast_ref::<PipelineError>() {
                p.exit_code()
            } else if e.downcast_ref::<ConfigError>().is_some() {
                EXIT_CONFIG
            } else {
                EXIT_FAILED
            }
        }
    };
    // An exit runs no destructors: the spill and work folders of a run stopped by an error
    // would stay behind (gigabytes at scale).
    winback::spill::remove_folders();
    std::process::exit(code);
}
