//! Run history (table `runs`): one row per attempt of a pipeline run, scheduled or not, which catch-up, backfill, the status file and SQL queries read back.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{State, StateError, fmt_ts, parse_ts};

/// The id of a row in `runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not finished (or its process died and nobody noticed yet).
    Running,
    Succeeded,
    /// The runner returned an error, timed out or lost its lock.
    Failed,
    /// Stopped by a shutdown, or its process died (lease expired).
    Interrupted,
    /// Not attempted (lock held elsewhere, pipeline busy, already succeeded);
    /// `error` says why and `attempt` is 0.
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            "skipped" => RunStatus::Skipped,
            other => return Err(format!("unknown run status {other:?}")),
        })
    }
}

/// A run about to start. The caller must hold the lock `lock_key` as `holder`
/// (see [`State::try_acquire`]) and keep renewing it while the run is going:
/// a `running` row whose lock lease has expired is taken for a dead process's
/// run and marked `interrupted` by [`State::recover_interrupted`].
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub schedule: Option<&'a str>,
    pub pipeline: &'a str,
    pub as_of: NaiveDate,
    pub fire_time: Option<DateTime<Utc>>,
    pub attempt: u32,
    pub holder: &'a str,
    pub lock_key: &'a str,
}

/// One row of `runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    /// `None` for manual runs and backfills.
    pub schedule: Option<String>,
    pub pipeline: String,
    pub as_of: NaiveDate,
    pub fire_time: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    /// 1 for the first attempt, 2 for the first retry...; 0 for a skipped fire.
    pub attempt: u32,
    pub error: Option<String>,
    pub rows_written: u64,
    pub messages_sent: u64,
    /// The process (`host/pid/random`) that ran it.
    pub holder: Option<String>,
}

const COLUMNS: &str = "id, schedule, pipeline, as_of, fire_time, started_at, ended_at, status, \
                       attempt, error, rows_written, messages_sent, holder";

/// Reads text column `idx` and parses it, failing like a type mismatch would.
fn text<T>(r: &Row<'_>, idx: usize, parse: impl FnOnce(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    parse(&s).ok_or_else(|| {
        let msg = format!("invalid value {s:?}");
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, msg.into())
    })
}

fn opt_text<T>(
    r: &Row<'_>,
    idx: usize,
    parse: impl Fn(&str) -> Option<T>,
) -> rusqlite::Result<Option<T>> {
    match r.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => text(r, idx, parse).map(Some),
    }
}

fn ts(s: &str) -> Option<DateTime<Utc>> {
    parse_ts("", s).ok()
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let count = |idx| r.get::<_, i64>(idx).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(RunRecord {
        id: RunId(r.get(0)?),
        schedule: r.get(1)?,
        pipeline: r.get(2)?,
        as_of: text(r, 3, |s| s.parse().ok())?,
        fire_time: opt_text(r, 4, ts)?,
        started_at: text(r, 5, ts)?,
        ended_at: opt_text(r, 6, ts)?,
        status: text(r, 7, |s| s.parse().ok())?,
        attempt: r.get(8)?,
        error: r.get(9)?,
        rows_written: count(10)?,
        messages_sent: count(11)?,
        holder: r.get(12)?,
    })
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl State {
    /// Records the start of a run (status `running`) and returns its id.
    pub fn start_run(&self, run: &NewRun<'_>) -> Result<RunId, StateError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (schedule, pipeline, as_of, fire_time, started_at, status, attempt, \
             holder, lock_key) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8)",
            params![
                run.schedule,
                run.pipeline,
                run.as_of.to_string(),
                run.fire_time.map(fmt_ts),
                fmt_ts(self.now()),
                run.attempt,
                run.holder,
                run.lock_key,
            ],
        )?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    /// Records the end of a run.
    pub fn finish_run(
        &self,
        id: RunId,
        status: RunStatus,
        error: Option<&str>,
        rows_written: u64,
        messages_sent: u64,
    ) -> Result<(), StateError> {
        let changed = self.conn().execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, error = ?4, rows_written = ?5, \
             messages_sent = ?6 WHERE id = ?1",
            params![
                id.0,
                status.as_str(),
                fmt_ts(self.now()),
                error,
                as_i64(rows_written),
                as_i64(messages_sent)
            ],
        )?;
        if changed == 0 {
            return Err(StateError::RunNotFound(id.0));
        }
        Ok(())
    }

    /// Records a fire that was not attempted (status `skipped`, attempt 0), with why.
    pub fn record_skipped(
        &self,
        schedule: Option<&str>,
        pipeline: &str,
        as_of: NaiveDate,
        fire_time: Option<DateTime<Utc>>,
        reason: &str,
    ) -> Result<RunId, StateError> {
        let conn = self.conn();
        let now = fmt_ts(self.now());
        conn.execute(
            "INSERT INTO runs (schedule, pipeline, as_of, fire_time, started_at, ended_at, status, \
             attempt, error) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'skipped', 0, ?6)",
            params![
                schedule,
                pipeline,
                as_of.to_string(),
                fire_time.map(fmt_ts),
                now,
                reason
            ],
        )?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    fn query_runs(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<RunRecord>, StateError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(args, from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The `n` most recent runs, newest first (after [`State::recover_interrupted`]).
    pub fn last_runs(&self, n: usize) -> Result<Vec<RunRecord>, StateError> {
        self.recover_quietly();
        let sql = format!("SELECT {COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1");
        self.query_runs(&sql, [as_i64(n as u64)])
    }

    /// Every run, oldest first (after [`State::recover_interrupted`]).
    pub fn all_runs(&self) -> Result<Vec<RunRecord>, StateError> {
        self.recover_quietly();
        self.query_runs(&format!("SELECT {COLUMNS} FROM runs ORDER BY id"), [])
    }

    /// One run by id.
    pub fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, StateError> {
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE id = ?1");
        Ok(self.query_runs(&sql, [id.0])?.pop())
    }

    /// The latest row recorded for a schedule, if any.
    pub fn last_run_of_schedule(&self, schedule: &str) -> Result<Option<RunRecord>, StateError> {
        let sql =
            format!("SELECT {COLUMNS} FROM runs WHERE schedule = ?1 ORDER BY id DESC LIMIT 1");
        Ok(self.query_runs(&sql, [schedule])?.pop())
    }

    /// Whether `pipeline` has a succeeded run for `as_of`.
    pub fn succeeded(&self, pipeline: &str, as_of: NaiveDate) -> Result<bool, StateError> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE pipeline = ?1 AND as_of = ?2 \
                 AND status = 'succeeded')",
            params![pipeline, as_of.to_string()],
            |r| r.get(0),
        )?)
    }

    /// The latest fire time of `schedule` that was dealt with: its last row
    /// is `succeeded`, `failed` or `skipped`. A fire whose last row is
    /// `interrupted` (shutdown, crash) or still `running` does not count, so
    /// catch-up after a restart considers it missed.
    pub fn last_fire_time(&self, schedule: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let found: Option<String> = self
            .conn()
            .query_row(
                "SELECT r.fire_time FROM runs r WHERE r.schedule = ?1 AND r.fire_time IS NOT NULL \
                 AND r.status IN ('succeeded', 'failed', 'skipped') \
                 AND r.id = (SELECT MAX(id) FROM runs WHERE schedule = ?1 \
                             AND fire_time = r.fire_time) \
                 ORDER BY r.fire_time DESC LIMIT 1",
                [schedule],
                |r| r.get(0),
            )
            .optional()?;
        found.map(|t| parse_ts("fire_time", &t)).transpose()
    }

    /// The earliest fire time recorded for `schedule`, whatever its status.
    pub fn first_fire_time(&self, schedule: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        let found: Option<String> = self.conn().query_row(
            "SELECT MIN(fire_time) FROM runs WHERE schedule = ?1",
            [schedule],
            |r| r.get(0),
        )?;
        found.map(|t| parse_ts("fire_time", &t)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use chrono::TimeZone;
    use std::sync::Arc;

    fn state() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::new(Utc.with_ymd_and_hms(2025, 5, 1, 3, 0, 0).unwrap());
        let state = State::open_with_clock(dir.path(), Arc::new(clock)).unwrap();
        (dir, state)
    }

    fn new_run<'a>(schedule: Option<&'a str>, fire: Option<DateTime<Utc>>) -> NewRun<'a> {
        NewRun {
            schedule,
            pipeline: "pipelines/p.toml",
            as_of: NaiveDate::from_ymd_opt(2025, 5, 1).unwrap(),
            fire_time: fire,
            attempt: 1,
            holder: "h",
            lock_key: "k",
        }
    }

    #[test]
    fn records_and_lists_runs() {
        let (_dir, state) = state();
        let fire = Utc.with_ymd_and_hms(2025, 5, 1, 2, 30, 0).unwrap();
        let a = state
            .start_run(&new_run(Some("nightly"), Some(fire)))
            .unwrap();
        state
            .finish_run(a, RunStatus::Failed, Some("boom"), 0, 0)
            .unwrap();
        let b = state.start_run(&new_run(None, None)).unwrap();
        state
            .finish_run(b, RunStatus::Succeeded, None, 10, 3)
            .unwrap();

        let last = state.last_runs(1).unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].id, b);
        assert_eq!((last[0].rows_written, last[0].messages_sent), (10, 3));
        let all = state.all_runs().unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(all[0].error.as_deref(), Some("boom"));
        assert_eq!(all[0].fire_time, Some(fire));
        assert!(state.succeeded("pipelines/p.toml", all[0].as_of).unwrap());
        assert!(!state.succeeded("other", all[0].as_of).unwrap());
        assert_eq!(state.last_fire_time("nightly").unwrap(), Some(fire));
        assert_eq!(state.last_fire_time("none").unwrap(), None);
        assert!(
            state
                .finish_run(RunId(999), RunStatus::Failed, None, 0, 0)
                .is_err()
        );
    }

    #[test]
    fn interrupted_fires_do_not_count_as_dealt_with() {
        let (_dir, state) = state();
        let day1 = Utc.with_ymd_and_hms(2025, 4, 30, 2, 30, 0).unwrap();
        let day2 = Utc.with_ymd_and_hms(2025, 5, 1, 2, 30, 0).unwrap();
        let a = state.start_run(&new_run(Some("s"), Some(day1))).unwrap();
        state
            .finish_run(a, RunStatus::Succeeded, None, 0, 0)
            .unwrap();
        let b = state.start_run(&new_run(Some("s"), Some(day2))).unwrap();
        state
            .finish_run(b, RunStatus::Failed, Some("x"), 0, 0)
            .unwrap();
        let c = state.start_run(&new_run(Some("s"), Some(day2))).unwrap();
        state
            .finish_run(c, RunStatus::Interrupted, Some("stop"), 0, 0)
            .unwrap();
        assert_eq!(state.last_fire_time("s").unwrap(), Some(day1));
    }
}
