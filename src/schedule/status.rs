//! The status file `<state_dir>/status.json`, rewritten atomically by `winback serve` after every change and on a heartbeat, so an operator or a monitor can see what the scheduler is doing without touching the database.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::config::Schedule;
use crate::state::{RunRecord, RunStatus, State};

/// File name of the status file inside the state directory.
pub const STATUS_FILE: &str = "status.json";

/// The whole status file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusFile {
    /// Process id of the serve process.
    pub pid: u32,
    /// Its lock holder id (`host/pid/random`).
    pub holder: String,
    /// `running`, `stopping` or `stopped`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    /// Last time the file was written; refreshed at least every heartbeat
    /// interval while serving. An old heartbeat with `state = "running"` means
    /// the process died or hangs.
    pub heartbeat: DateTime<Utc>,
    pub schedules: Vec<ScheduleStatus>,
}

/// One schedule in the status file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    pub name: String,
    pub pipeline: String,
    pub cron: String,
    pub timezone: String,
    pub next_fire: Option<DateTime<Utc>>,
    /// `next_fire` in the schedule's timezone, for people.
    pub next_fire_local: Option<String>,
    pub last_run: Option<LastRun>,
}

/// The latest run-history row of a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub id: i64,
    pub as_of: NaiveDate,
    pub status: RunStatus,
    pub attempt: u32,
    pub fire_time: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl From<RunRecord> for LastRun {
    fn from(r: RunRecord) -> Self {
        LastRun {
            id: r.id.0,
            as_of: r.as_of,
            status: r.status,
            attempt: r.attempt,
            fire_time: r.fire_time,
            started_at: r.started_at,
            ended_at: r.ended_at,
            error: r.error,
        }
    }
}

/// Reads `<state_dir>/status.json`.
pub fn read_status(state_dir: &Path) -> std::io::Result<StatusFile> {
    let text = std::fs::read_to_string(state_dir.join(STATUS_FILE))?;
    serde_json::from_str(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Keeps the status file of one serve process up to date.
pub(crate) struct StatusWriter {
    path: PathBuf,
    pid: u32,
    holder: String,
    started_at: DateTime<Utc>,
    inner: Mutex<Inner>,
}

struct Inner {
    state: &'static str,
    next_fire: BTreeMap<String, Option<DateTime<Utc>>>,
}

impl StatusWriter {
    pub fn new(state: &State, holder: &str) -> Self {
        StatusWriter {
            path: state.state_dir().join(STATUS_FILE),
            pid: std::process::id(),
            holder: holder.to_string(),
            started_at: state.now(),
            inner: Mutex::new(Inner {
                state: "running",
                next_fire: BTreeMap::new(),
            }),
        }
    }

    pub fn set_next_fire(&self, schedule: &str, next: Option<DateTime<Utc>>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next_fire.insert(schedule.to_string(), next);
    }

    pub fn set_state(&self, state: &'static str) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).state = state;
    }

    /// Rebuilds and rewrites the file; failures are logged, never fatal.
    pub fn write(&self, state: &State, schedules: &[Schedule]) {
        // Holding the lock while writing keeps concurrent writers from interleaving.
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut entries = Vec::with_capacity(schedules.len());
        for s in schedules {
            let last_run = match state.last_run_of_schedule(&s.name) {
                Ok(r) => r.map(LastRun::from),
                Err(e) => {
                    tracing::warn!(schedule = %s.name, error = %e, "status: cannot read last run");
                    None
                }
            };
            let next_fire = inner.next_fire.get(&s.name).copied().flatten();
            entries.push(ScheduleStatus {
                name: s.name.clone(),
                pipeline: super::pipeline_key(&s.pipeline),
                cron: s.cron.expr().to_string(),
                timezone: s.cron.timezone().to_string(),
                next_fire,
                next_fire_local: next_fire.map(|t| s.cron.local_display(t)),
                last_run,
            });
        }
        let file = StatusFile {
            pid: self.pid,
            holder: self.holder.clone(),
            state: inner.state.to_string(),
            started_at: self.started_at,
            heartbeat: state.now(),
            schedules: entries,
        };
        let written = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| write_atomic(&self.path, &bytes));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write status file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_support::{fake_state, utc};
    use crate::state::NewRun;

    #[tokio::test(start_paused = true)]
    async fn writes_last_run_and_next_fire_atomically() {
        let (dir, _clock, state) = fake_state("2025-05-01T03:00:00Z");
        let schedule = Schedule::from_toml_str(
            "pipeline = \"p.toml\"\ncron = \"30 2 * * *\"",
            Path::new("schedules/nightly.toml"),
        )
        .unwrap();
        let as_of = NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
        let id = state
            .start_run(&NewRun {
                schedule: Some("nightly"),
                pipeline: "p.toml",
                as_of,
                fire_time: Some(utc("2025-05-01T02:30:00Z")),
                attempt: 1,
                holder: "h",
                lock_key: "k",
            })
            .unwrap();
        state
            .finish_run(id, RunStatus::Succeeded, None, 1, 1)
            .unwrap();

        let writer = StatusWriter::new(&state, "h");
        writer.set_next_fire("nightly", Some(utc("2025-05-02T02:30:00Z")));
        writer.write(&state, std::slice::from_ref(&schedule));
        let status = read_status(dir.path()).unwrap();
        assert_eq!(status.pid, std::process::id());
        assert_eq!(status.state, "running");
        assert_eq!(status.heartbeat, utc("2025-05-01T03:00:00Z"));
        let s = &status.schedules[0];
        assert_eq!(s.next_fire, Some(utc("2025-05-02T02:30:00Z")));
        assert_eq!(
            s.next_fire_local.as_deref(),
            Some("2025-05-02 02:30:00 UTC")
        );
        let last = s.last_run.as_ref().unwrap();
        assert_eq!((last.as_of, last.status), (as_of, RunStatus::Succeeded));
        assert!(last.ended_at.is_some());

        writer.set_state("stopped");
        writer.write(&state, &[schedule]);
        assert_eq!(read_status(dir.path()).unwrap().state, "stopped");
        // Only the status file and the database remain: no temporary files.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
