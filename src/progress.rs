//! Progress on long work: a line per stage on a terminal, structured logs otherwise.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Shows stages as they run. Quiet (log lines only) when stderr is not a terminal.
#[derive(Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
    /// The stages started and not yet finished (named when a run stops on its memory cap).
    running: Arc<Mutex<BTreeSet<String>>>,
}

pub struct StageBar {
    bar: Option<ProgressBar>,
    name: String,
    running: Arc<Mutex<BTreeSet<String>>>,
}

impl Progress {
    pub fn new() -> Self {
        let on =
            std::io::stderr().is_terminal() && std::env::var_os("WINBACK_NO_PROGRESS").is_none();
        Progress {
            bars: on.then(MultiProgress::new),
            running: Arc::default(),
        }
    }

    pub fn hidden() -> Self {
        Progress {
            bars: None,
            running: Arc::default(),
        }
    }

    /// The stages running now, by name.
    pub fn running(&self) -> Vec<String> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.iter().cloned().collect()
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
        let running = self.running.clone();
        running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        StageBar {
            bar,
            name: name.to_string(),
            running,
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for StageBar {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&self.name);
    }
}

impl StageBar {
    pub fn done(self, rows: u64, seconds: f64) {
        tracing::info!(stage = %self.name, rows, seconds, "stage finished");
        if let Some(bar) = &self.bar {
            bar.set_style(
                ProgressStyle::with_template("✓ {prefix:<24} {msg}").expect("static template"),
            );
            bar.finish_with_message(format!("{rows} rows in {seconds:.2}s"));
        }
    }

    pub fn failed(self) {
        if let Some(bar) = &self.bar {
            bar.abandon_with_message("failed");
        }
    }
}
