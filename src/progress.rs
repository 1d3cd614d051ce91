//! Progress on long work: a line per stage on a terminal, structured logs otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Shows stages as they run. Quiet (log lines only) when stderr is not a terminal.
#[derive(Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

pub struct StageBar {
    bar: Option<ProgressBar>,
    name: String,
}

impl Progress {
    pub fn new() -> Self {
        let on =
            std::io::stderr().is_terminal() && std::env::var_os("WINBACK_NO_PROGRESS").is_none();
        Progress {
            bars: on.then(MultiProgress::new),
        }
    }

    pub fn hidden() -> Self {
        Progress { bars: None }
    }

    pub fn start(&self, name: &str) -> StageBar {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<24} {msg} {elapsed}")
                    .expect("static template"),
            );
            bar.set_prefix(name.to_string());
            bar.set_message("running");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        tracing::info!(stage = name, "stage started");
        StageBar {
            bar,
            name: name.to_string(),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl StageBar {
    pub fn done(self, rows: u64, seconds: f64) {
        tracing::info!(stage = %self.name, rows, seconds, "stage finished");
        if let Some(bar) = self.bar {
            bar.set_style(
                ProgressStyle::with_template("✓ {prefix:<24} {msg}").expect("static template"),
            );
            bar.finish_with_message(format!("{rows} rows in {seconds:.2}s"));
        }
    }

    pub fn failed(self) {
        if let Some(bar) = self.bar {
            bar.abandon_with_message("failed");
        }
    }
}
