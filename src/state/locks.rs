//! Leased run locks (table `locks`): at most one process at a time runs a pipeline for a given as_of, and a lock whose holder died without releasing it frees itself when its lease runs out.
//!
//! Every change is a single IMMEDIATE transaction, so SQLite's write lock makes
//! acquiring atomic across processes sharing the state directory. Locks are not
//! re-entrant: a second acquire of a live lock fails even for the same holder.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::{State, StateError, fmt_ts, parse_ts};
use crate::clock::add_std;

/// The lock key of a pipeline run: pipeline (as written in the schedule or on
/// the command line) and as_of date.
pub fn lock_key(pipeline: &str, as_of: NaiveDate) -> String {
    format!("{pipeline}@{as_of}")
}

/// An id for this process as a lock holder: `hostname/pid/random`.
pub fn holder_id() -> String {
    let host = this_host();
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// This host's name, as holder ids record it.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// Whether `holder` (`host/pid/nonce`, as [`holder_id`] makes it) names a process of this
/// host that no longer runs. False whenever that cannot be known (another host, a holder
/// id of another shape, no `/proc`): then only the lease decides.
pub fn process_is_dead_here(holder: &str) -> bool {
    let mut parts = holder.split('/');
    let (Some(host), Some(pid), Some(_nonce), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != this_host() || !std::path::Path::new("/proc/self").exists() {
        return false;
    }
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A row of `locks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub key: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl State {
    /// Takes the lock `key` for `holder` for `lease`, if nobody holds a live
    /// lease on it. A lock whose lease has expired, or whose holder is a dead process
    /// of this host (a rerun right after a SIGKILL), is taken over, and the previous
    /// holder's `running` runs under it are marked `interrupted`.
    pub fn try_acquire(
        &self,
        key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let now = self.now();
        let (now_s, until) = (fmt_ts(now), fmt_ts(add_std(now, lease)));
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<(String, String)> = tx
            .query_row(
                "SELECT holder, expires_at FROM locks WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((old_holder, expires_at)) = current {
            let dead = process_is_dead_here(&old_holder);
            if expires_at > now_s && !dead {
                return Ok(false);
            }
            let interrupted = tx.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ?3, error = COALESCE(error, \
                 'its process stopped renewing the lock lease (crashed or killed)') \
                 WHERE status = 'running' AND lock_key = ?1 AND holder = ?2",
                params![key, old_holder, now_s],
            )?;
            tracing::warn!(%key, %old_holder, %expires_at, interrupted_runs = interrupted,
                holder_process_dead = dead, "taking over a lock whose holder is gone");
        }
        tx.execute(
            "INSERT INTO locks (key, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, \
             acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            params![key, holder, now_s, until],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Extends `holder`'s lease on `key` to `lease` from now. Returns false if
    /// `holder` no longer holds the lock (another process took it over).
    pub fn renew(&self, key: &str, holder: &str, lease: Duration) -> Result<bool, StateError> {
        let until = fmt_ts(add_std(self.now(), lease));
        let changed = self.conn().execute(
            "UPDATE locks SET expires_at = ?3 WHERE key = ?1 AND holder = ?2",
            params![key, holder, until],
        )?;
        Ok(changed == 1)
    }

    /// Whether `holder` holds a live lease on `key` and is not a dead process of this host.
    pub fn holds_live_lock(
        &self,
        key: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StateError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT holder, expires_at FROM locks WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.is_some_and(|(h, expires)| {
            h == holder && expires > fmt_ts(now) && !process_is_dead_here(&h)
        }))
    }

    /// Releases `holder`'s lock on `key`. Returns false if it did not hold it.
    pub fn release(&self, key: &str, holder: &str) -> Result<bool, StateError> {
        let changed = self.conn().execute(
            "DELETE FROM locks WHERE key = ?1 AND holder = ?2",
            params![key, holder],
        )?;
        Ok(changed == 1)
    }

    /// Releases every lock of `holder`; returns how many.
    pub fn release_all(&self, holder: &str) -> Result<usize, StateError> {
        Ok(self
            .conn()
            .execute("DELETE FROM locks WHERE holder = ?1", [holder])?)
    }

    /// Marks as `interrupted` every `running` run whose holder no longer holds a
    /// live lease on its lock (its process died, or hung past the lease).
    /// Returns how many rows changed.
    pub fn recover_interrupted(&self) -> Result<usize, StateError> {
        let now = fmt_ts(self.now());
        Ok(self.conn().execute(
            "UPDATE runs SET status = 'interrupted', ended_at = ?1, error = COALESCE(error, \
             'the process running it stopped renewing its lock lease (it crashed or was killed)') \
             WHERE status = 'running' AND NOT EXISTS (SELECT 1 FROM locks l \
             WHERE l.key = runs.lock_key AND l.holder = runs.holder AND l.expires_at > ?1)",
            [now],
        )?)
    }

    pub(crate) fn recover_quietly(&self) {
        if let Err(e) = self.recover_interrupted() {
            tracing::warn!(error = %e, "could not mark dead runs as interrupted");
        }
    }

    /// Marks every `running` run of `holder` as `interrupted` with `reason`
    /// (used by a stopping process for runs it could not finish).
    pub fn interrupt_runs_of(&self, holder: &str, reason: &str) -> Result<usize, StateError> {
        Ok(self.conn().execute(
            "UPDATE runs SET status = 'interrupted', ended_at = ?2, error = ?3 \
             WHERE status = 'running' AND holder = ?1",
            params![holder, fmt_ts(self.now()), reason],
        )?)
    }

    /// The current row of lock `key`, live or expired.
    pub fn lock_info(&self, key: &str) -> Result<Option<LockInfo>, StateError> {
        let row: Option<(String, String, String)> = self
            .conn()
            .query_row(
                "SELECT holder, acquired_at, expires_at FROM locks WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(holder, acquired, expires)| {
            Ok(LockInfo {
                key: key.to_string(),
                holder,
                acquired_at: parse_ts("acquired_at", &acquired)?,
                expires_at: parse_ts("expires_at", &expires)?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::state::{NewRun, RunStatus};
    use chrono::TimeZone;
    use std::sync::Arc;

    const LEASE: Duration = Duration::from_secs(60);

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, 2, 30, 0).unwrap()
    }

    #[test]
    fn holder_ids_differ() {
        let (a, b) = (holder_id(), holder_id());
        assert_ne!(a, b);
        assert!(a.contains(&format!("/{}/", std::process::id())), "{a}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_lease_blocks_and_an_expired_one_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::new(start());
        let state = State::open_with_clock(dir.path(), Arc::new(clock.clone())).unwrap();
        let as_of = NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
        let key = lock_key("pipelines/p.toml", as_of);

        assert!(state.try_acquire(&key, "killed", LEASE).unwrap());
        let run = state
            .start_run(&NewRun {
                schedule: None,
                pipeline: "pipelines/p.toml",
                as_of,
                fire_time: None,
                attempt: 1,
                holder: "killed",
                lock_key: &key,
            })
            .unwrap();
        // Live lease: a second holder is refused, and so is the same holder again.
        assert!(!state.try_acquire(&key, "other", LEASE).unwrap());
        assert!(!state.try_acquire(&key, "killed", LEASE).unwrap());
        clock.advance(Duration::from_secs(40));
        assert!(state.renew(&key, "killed", LEASE).unwrap());
        clock.advance(Duration::from_secs(40));
        // Renewed 40 s ago for 60 s: still live.
        assert!(!state.try_acquire(&key, "other", LEASE).unwrap());
        assert_eq!(
            state.get_run(run).unwrap().unwrap().status,
            RunStatus::Running
        );

        // "killed" stops renewing (SIGKILL): after the lease another holder gets it.
        clock.advance(Duration::from_secs(21));
        assert!(state.try_acquire(&key, "other", LEASE).unwrap());
        let dead = state.get_run(run).unwrap().unwrap();
        assert_eq!(dead.status, RunStatus::Interrupted);
        assert!(dead.ended_at.is_some());
        assert_eq!(state.lock_info(&key).unwrap().unwrap().holder, "other");
        // The old holder can no longer renew or release it.
        assert!(!state.renew(&key, "killed", LEASE).unwrap());
        assert!(!state.release(&key, "killed").unwrap());
        assert!(state.release(&key, "other").unwrap());
        assert!(state.lock_info(&key).unwrap().is_none());
    }

    #[test]
    fn two_handles_on_one_db_never_both_acquire() {
        let dir = tempfile::tempdir().unwrap();
        let a = State::open(dir.path()).unwrap();
        let b = State::open(dir.path()).unwrap();
        assert!(a.try_acquire("p@2025-05-01", "a", LEASE).unwrap());
        assert!(!b.try_acquire("p@2025-05-01", "b", LEASE).unwrap());
        assert!(b.try_acquire("p@2025-05-02", "b", LEASE).unwrap());
        assert!(a.release("p@2025-05-01", "a").unwrap());
        assert!(b.try_acquire("p@2025-05-01", "b", LEASE).unwrap());
        assert_eq!(b.release_all("b").unwrap(), 2);
    }

    #[test]
    fn concurrent_handles_race_for_one_lock() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..5 {
            let key = format!("p@2025-05-0{}", round + 1);
            let barrier = Arc::new(std::sync::Barrier::new(4));
            let winners: usize = (0..4)
                .map(|i| {
                    let (path, key, barrier) =
                        (dir.path().to_path_buf(), key.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        // Opening races too (a new database); the barrier is passed
                        // either way, so a failure fails the test instead of hanging it.
                        let state = State::open(&path);
                        barrier.wait();
                        let state = state.unwrap();
                        state.try_acquire(&key, &format!("t{i}"), LEASE).unwrap() as usize
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum();
            assert_eq!(winners, 1, "round {round}");
        }
    }

    #[test]
    fn running_rows_without_a_live_lease_become_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let as_of = NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
        let run = |holder, lock_key| NewRun {
            schedule: None,
            pipeline: "p",
            as_of,
            fire_time: None,
            attempt: 1,
            holder,
            lock_key,
        };
        assert!(state.try_acquire("live", "a", LEASE).unwrap());
        let alive = state.start_run(&run("a", "live")).unwrap();
        // Nobody holds lock "gone": the run's process died and the lock was cleaned up.
        let dead = state.start_run(&run("b", "gone")).unwrap();
        assert_eq!(state.recover_interrupted().unwrap(), 1);
        let status = |id| state.get_run(id).unwrap().unwrap().status;
        assert_eq!(
            (status(alive), status(dead)),
            (RunStatus::Running, RunStatus::Interrupted)
        );
        let runs = state.last_runs(5).unwrap();
        assert!(runs[0].error.as_deref().unwrap().contains("lease"));
    }
}
