//! How much a run spills: the bytes of DataFusion's spill files on disk, sampled while the
//! stages run, as a peak per stage and for the run (in the manifest). Sorts, sort-merge
//! joins and aggregations spill when the memory pool is full, which happens under
//! `memory_limit_mib`; without a cap a run rarely spills at all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::execution::disk_manager::DiskManager;
use datafusion::prelude::SessionContext;

use crate::progress::Progress;

/// How often the spill files are measured.
const POLL: Duration = Duration::from_millis(100);

/// The peaks seen so far: for the run, and for each stage running when they were seen.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SpillPeaks {
    pub run: u64,
    pub by_stage: BTreeMap<String, u64>,
}

impl SpillPeaks {
    /// Note `bytes` on disk while `running` stages ran.
    fn sample(&mut self, bytes: u64, running: &[String]) {
        self.run = self.run.max(bytes);
        for stage in running {
            let peak = self.by_stage.entry(stage.clone()).or_default();
            *peak = (*peak).max(bytes);
        }
    }
}

/// Samples the session's spill files until [`SpillWatch::finish`].
pub struct SpillWatch {
    peaks: Arc<Mutex<SpillPeaks>>,
    disk: Arc<DiskManager>,
    progress: Progress,
    task: tokio::task::JoinHandle<()>,
}

impl SpillWatch {
    /// Start sampling `ctx`'s spill files (stages attributed through `progress`).
    pub fn start(ctx: &SessionContext, progress: &Progress) -> SpillWatch {
        let disk = Arc::clone(&ctx.runtime_env().disk_manager);
        let peaks = Arc::new(Mutex::new(SpillPeaks::default()));
        let task = {
            let (disk, peaks, progress) = (Arc::clone(&disk), Arc::clone(&peaks), progress.clone());
            tokio::spawn(async move {
                loop {
                    sample(&disk, &peaks, &progress);
                    tokio::time::sleep(POLL).await;
                }
            })
        };
        SpillWatch {
            peaks,
            disk,
            progress: progress.clone(),
            task,
        }
    }

    /// Stop sampling; the peaks seen.
    pub fn finish(self) -> SpillPeaks {
        self.task.abort();
        sample(&self.disk, &self.peaks, &self.progress);
        let peaks = self.peaks.lock().unwrap_or_else(|p| p.into_inner());
        peaks.clone()
    }
}

fn sample(disk: &DiskManager, peaks: &Mutex<SpillPeaks>, progress: &Progress) {
    let bytes = disk.used_disk_space();
    if bytes > 0 {
        let running = progress.running();
        let mut peaks = peaks.lock().unwrap_or_else(|p| p.into_inner());
        peaks.sample(bytes, &running);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_raises_the_run_and_every_running_stage() {
        let mut p = SpillPeaks::default();
        p.sample(10, &["a".to_string()]);
        p.sample(30, &["a".to_string(), "b".to_string()]);
        p.sample(20, &["b".to_string()]);
        p.sample(5, &[]);
        assert_eq!(p.run, 30);
        assert_eq!(p.by_stage["a"], 30);
        assert_eq!(p.by_stage["b"], 30);
        p.sample(40, &["c".to_string()]);
        assert_eq!((p.run, p.by_stage["c"], p.by_stage["a"]), (40, 40, 30));
    }
}
