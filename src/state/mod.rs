//! The embedded state database `<state_dir>/winback.db`: run history, run locks, the send
//! ledger and suppressions in one SQLite file that every winback process pointing at the same
//! state directory shares safely.
//!
//! The database is opened in WAL mode (readers never block the writer) with a
//! busy timeout (writers from other processes wait instead of failing), and its
//! schema is migrated forward with `PRAGMA user_version`. A [`State`] is a cheap,
//! cloneable handle; its calls are short synchronous SQLite statements.

pub mod ledger;
pub mod ledger_batches;
pub mod ledger_migrations;
mod ledger_reads;
pub mod ledger_rows;
pub mod locks;
pub mod provider_events;
pub mod runs;
pub mod suppressions;
pub mod test_sends;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, TransactionBehavior};

use crate::clock::{Clock, SystemClock};

pub use ledger::{LedgerRow, SendCount};
pub use ledger_migrations::{
    SENDS_CALL_MIGRATION, SENDS_MIGRATION, SENDS_OWNER_MIGRATION, SENDS_TAGS_MIGRATION,
    SENDS_WOULD_BE_MIGRATION,
};
pub use ledger_rows::{LedgerDecision, LedgerOutcome, RunOwner, Tags};
pub use locks::{LockInfo, holder_id, lock_key};
pub use runs::{NewRun, RunId, RunRecord, RunStatus};
pub use test_sends::{TEST_SENDS_MIGRATION, TestSend};

/// File name of the state database inside the state directory.
pub const DB_FILE: &str = "winback.db";

/// How long a statement waits for another process's write before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Schema migrations; migration `i` takes `user_version` from `i` to `i + 1`.
/// Never edit a released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule      TEXT,
    pipeline      TEXT NOT NULL,
    as_of         TEXT NOT NULL,
    fire_time     TEXT,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    status        TEXT NOT NULL CHECK (status IN
                    ('running', 'succeeded', 'failed', 'interrupted', 'skipped')),
    attempt       INTEGER NOT NULL,
    error         TEXT,
    rows_written  INTEGER NOT NULL DEFAULT 0,
    messages_sent INTEGER NOT NULL DEFAULT 0,
    holder        TEXT,
    lock_key      TEXT
);
CREATE INDEX runs_pipeline_as_of ON runs (pipeline, as_of, status);
CREATE INDEX runs_schedule_fire ON runs (schedule, fire_time);
CREATE INDEX runs_status ON runs (status);
CREATE TABLE locks (
    key         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
"#,
    SENDS_MIGRATION,
    SENDS_TAGS_MIGRATION,
    SENDS_OWNER_MIGRATION,
    suppressions::SUPPRESSIONS_MIGRATION,
    TEST_SENDS_MIGRATION,
    SENDS_WOULD_BE_MIGRATION,
    SENDS_CALL_MIGRATION,
];

/// A failure of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open state database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state database {} has schema version {found}, newer than this winback supports ({supported}): upgrade winback",
        path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state database: column {column} holds an invalid value {value:?}")]
    InvalidValue { column: &'static str, value: String },
    #[error("state database: run {0} not found")]
    RunNotFound(i64),
}

impl crate::error::Blamed for StateError {
    /// The database's folder, file and SQLite are outside winback (a full disk, a lock
    /// held too long: a retry may help); a database from a newer winback is the user's to
    /// upgrade; a value winback cannot read back is its own fault.
    fn blame(&self) -> crate::error::Blame {
        use crate::error::Blame;
        match self {
            StateError::CreateDir { .. } | StateError::Open { .. } | StateError::Sqlite(_) => {
                Blame::External
            }
            StateError::SchemaTooNew { .. } => Blame::User,
            StateError::InvalidValue { .. } | StateError::RunNotFound(_) => Blame::Internal,
        }
    }
}

/// A handle on the state database. Clones share one connection.
#[derive(Clone)]
pub struct State {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    dir: PathBuf,
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Opens (creating if needed) `<state_dir>/winback.db` with the system clock.
    pub fn open(state_dir: &Path) -> Result<State, StateError> {
        State::open_with_clock(state_dir, Arc::new(SystemClock))
    }

    /// Opens the state database with the given clock; every timestamp it records
    /// and every lease it checks uses that clock, and so does everything that
    /// schedules runs through this handle.
    pub fn open_with_clock(state_dir: &Path, clock: Arc<dyn Clock>) -> Result<State, StateError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StateError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // 16 KiB pages for a new database (no effect on an existing one): the send ledger
        // writes 1000-row batches, about a third faster than with the 4 KiB default.
        conn.execute_batch("PRAGMA page_size = 16384;")
            .map_err(open_err)?;
        let mode = wal_mode(&conn).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), %mode, "state database is not in WAL mode");
        }
        // FULL: every commit is on disk before it returns. With NORMAL, WAL mode may roll
        // back the last commits after a power cut or an OS crash: the `in_flight`
        // reservation of a request that already left could vanish, and the message be sent
        // again. Group commit (`delivery::Ledger`) shares each sync among the batches
        // queued behind it.
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(open_err)?;
        migrate(&mut conn, &path)?;
        Ok(State {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                dir: state_dir.to_path_buf(),
                path,
                clock,
            }),
        })
    }

    /// The database in `state_dir` if there is one; `None` without a folder or a database
    /// (a reader, such as a table SQL can read, never creates one).
    pub fn open_existing(state_dir: Option<&Path>) -> Result<Option<State>, StateError> {
        match state_dir {
            Some(dir) if dir.join(DB_FILE).exists() => State::open(dir).map(Some),
            _ => Ok(None),
        }
    }

    /// The state directory this database lives in.
    pub fn state_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Path of the database file.
    pub fn db_path(&self) -> &Path {
        &self.inner.path
    }

    /// The clock this handle records time with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The current time of [`State::clock`].
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The schema version (`PRAGMA user_version`) of the open database.
    pub fn schema_version(&self) -> Result<i64, StateError> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the guard cannot leave SQLite inconsistent: the
        // connection rolls back any open transaction when it is dropped or reused.
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Switch to WAL. Switching takes an exclusive lock for which SQLite does not call the busy
/// handler, so processes opening a new database together retry here.
fn wal_mode(conn: &Connection) -> rusqlite::Result<String> {
    let started = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    // IMMEDIATE: two processes opening a fresh database migrate one after the other.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if found > supported {
        return Err(StateError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    if found < supported {
        tx.pragma_update(None, "user_version", supported)?;
    }
    tx.commit()?;
    Ok(())
}

/// Formats a timestamp the way the database stores it: RFC 3339 in UTC with
/// milliseconds, fixed width, so text order is time order.
pub(crate) fn fmt_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A value read from column `i` that does not parse, as rusqlite reports a column it cannot
/// convert (so a row can be built inside `query_map`).
pub(crate) fn bad_column(i: usize, e: StateError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

pub(crate) fn parse_ts(column: &'static str, value: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StateError::InvalidValue {
            column,
            value: value.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        assert_eq!(state.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mode: String = state
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(state);
        let again = State::open(dir.path()).unwrap();
        assert_eq!(again.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert!(dir.path().join(DB_FILE).exists());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(State::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = State::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StateError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn timestamps_round_trip_and_sort() {
        let a = DateTime::parse_from_rfc3339("2025-03-09T07:30:00.5Z")
            .unwrap()
            .to_utc();
        let b = DateTime::parse_from_rfc3339("2025-03-10T01:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(fmt_ts(a), "2025-03-09T07:30:00.500Z");
        assert_eq!(parse_ts("t", &fmt_ts(a)).unwrap(), a);
        assert!(fmt_ts(a) < fmt_ts(b));
    }
}
