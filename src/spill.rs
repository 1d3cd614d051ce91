//! Spill files: where DataFusion writes them and how much a run spilled.
//!
//! Sorts, sort-merge joins and aggregations spill when the memory pool is full, which
//! happens under `memory_limit_mib` (tens of gigabytes at 100M rows). They go to this
//! process's own folder, `<temp>/winback-spill-<pid>`, which the binary removes before it
//! exits (an exit skips the destructors that would remove DataFusion's folders), and which
//! the next process removes if this one was killed. The bytes on disk are sampled while the
//! stages run, as a peak per stage and for the run (in the manifest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use datafusion::execution::disk_manager::DiskManager;
use datafusion::prelude::SessionContext;

use crate::progress::Progress;

const SPILL_PREFIX: &str = "winback-spill-";
/// The prefix of a run's work folder (intermediate tables), followed by the process id.
pub const WORK_PREFIX: &str = "winback-work-";

/// This process's spill folder, created on first use; folders that processes which are
/// gone left behind (spill and work folders) are removed then.
pub fn folder() -> PathBuf {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER
        .get_or_init(|| {
            let temp = std::env::temp_dir();
            remove_stale(&temp);
            let folder = temp.join(format!("{SPILL_PREFIX}{}", std::process::id()));
            // Made here, once: DataFusion creates a missing folder itself, and sessions
            // built side by side then race to create it (the loser fails to start).
            if let Err(e) = std::fs::create_dir_all(&folder) {
                tracing::warn!(folder = %folder.display(), error = %e, "cannot create the spill folder");
            }
            folder
        })
        .clone()
}

/// The work folder prefix of this process: `winback-work-<pid>-`.
pub fn work_prefix() -> String {
    format!("{WORK_PREFIX}{}-", std::process::id())
}

/// Remove this process's spill and work folders (the binary, just before it exits).
pub fn remove_folders() {
    remove_of(&std::env::temp_dir(), |pid| pid == std::process::id());
}

/// Remove the spill and work folders of processes that no longer run.
fn remove_stale(temp: &Path) {
    if !Path::new("/proc/self").exists() {
        return; // no way to tell a live process here
    }
    remove_of(temp, |pid| !Path::new(&format!("/proc/{pid}")).exists());
}

/// Remove the spill and work folders in `temp` whose process id `whose` picks.
fn remove_of(temp: &Path, whose: impl Fn(u32) -> bool) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner) else {
            continue;
        };
        if whose(pid) && std::fs::remove_dir_all(entry.path()).is_ok() {
            tracing::debug!(folder = %entry.path().display(), "removed a spill or work folder");
        }
    }
}

/// The process id in a spill (`winback-spill-<pid>`) or work (`winback-work-<pid>-…`)
/// folder's name.
fn owner(name: &str) -> Option<u32> {
    if let Some(pid) = name.strip_prefix(SPILL_PREFIX) {
        return pid.parse().ok();
    }
    let rest = name.strip_prefix(WORK_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

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

/// Samples the session's spill files from `start` until it is dropped.
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

    /// The peaks seen, with a last sample (sampling stops when the watch is dropped).
    pub fn finish(self) -> SpillPeaks {
        sample(&self.disk, &self.peaks, &self.progress);
        let peaks = self.peaks.lock().unwrap_or_else(|p| p.into_inner());
        peaks.clone()
    }
}

/// A run that stops early (an error between start and finish) stops the sampling too:
/// the scheduler's process would otherwise poll a finished run's disk forever.
impl Drop for SpillWatch {
    fn drop(&mut self) {
        self.task.abort();
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
    fn folders_are_told_apart_by_their_process() {
        assert_eq!(owner("winback-spill-123"), Some(123));
        assert_eq!(owner("winback-work-77-Ab3xQz"), Some(77));
        assert_eq!(owner("winback-work-Ab3xQz"), None);
        assert_eq!(owner("winback-spill-"), None);
        assert_eq!(owner(".tmp123"), None);
        let temp = tempfile::tempdir().unwrap();
        for name in [
            "winback-spill-1",
            "winback-work-1-x",
            "winback-spill-2",
            "other-1",
        ] {
            std::fs::create_dir(temp.path().join(name)).unwrap();
        }
        remove_of(temp.path(), |pid| pid == 1);
        let mut left: Vec<String> = std::fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["other-1", "winback-spill-2"]);
    }

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
