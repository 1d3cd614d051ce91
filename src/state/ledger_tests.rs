use chrono::NaiveDate;

use super::*;
use crate::channels::test_support::{message, messages, temp_state};
use crate::message::{Medium, SendState};
use crate::state::RunOwner;

fn rec(key: &str, state: SendState) -> LedgerOutcome {
    LedgerOutcome {
        idempotency_key: key.to_string(),
        state,
        provider_message_id: Some("p1".into()),
        reason: None,
        suppression: None,
    }
}

#[test]
fn reserve_skips_final_rows_and_counts_attempts() {
    let (_dir, state) = temp_state();
    let batch = messages(5, Medium::Email, "mail");
    assert_eq!(state.reserve(&batch, false).unwrap().len(), 5);
    // In flight: not reserved twice.
    assert!(state.reserve(&batch, false).unwrap().is_empty());
    let k: Vec<&str> = batch.iter().map(|m| m.idempotency_key.as_str()).collect();
    state
        .record(&[
            rec(k[0], SendState::Delivered),
            rec(k[1], SendState::Rejected),
            rec(k[2], SendState::Failed),
            rec(k[3], SendState::Unknown),
        ])
        .unwrap();
    let again = state.reserve(&batch, false).unwrap();
    // Failed goes again; delivered, rejected, unknown and in-flight (4) do not.
    assert_eq!(
        again
            .iter()
            .map(|m| m.customer_id.as_str())
            .collect::<Vec<_>>(),
        ["c2"]
    );
    let row = state.send_row(k[2]).unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (SendState::InFlight, 2));
    assert_eq!(
        state.reserve(&batch[3..4], true).unwrap().len(),
        1,
        "resend_unknown"
    );
    let delivered = state.send_row(k[0]).unwrap().unwrap();
    assert!(delivered.sent_at.is_some());
    assert_eq!(delivered.provider_message_id.as_deref(), Some("p1"));
    assert_eq!(delivered.masked_address(), "c***@example.com");
}

#[test]
fn recover_turns_in_flight_into_unknown() {
    let (dir, state) = temp_state();
    let batch = messages(3, Medium::Sms, "sms");
    state.reserve(&batch, false).unwrap();
    state
        .record(&[rec(&batch[0].idempotency_key, SendState::Delivered)])
        .unwrap();
    drop(state); // the process dies
    let state = crate::state::State::open(dir.path()).unwrap();
    let rows = state.recover_in_flight().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.state == SendState::Unknown));
    assert!(state.recover_in_flight().unwrap().is_empty());
    assert_eq!(state.unknown_rows().unwrap().len(), 2);
    assert!(state.reserve(&batch, false).unwrap().is_empty());
}

#[test]
fn decisions_never_overwrite_final_rows() {
    let (_dir, state) = temp_state();
    let entry = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
    let m = messages(3, Medium::Email, "mail");
    let d = |m: &crate::message::Message, s| LedgerDecision {
        tags: Default::default(),
        message: m.clone(),
        entry_date: entry,
        state: s,
        reason: Some("why".into()),
    };
    state.reserve(&m[..1], false).unwrap();
    state
        .record(&[rec(&m[0].idempotency_key, SendState::Delivered)])
        .unwrap();
    state
        .record_decisions(&[
            d(&m[0], SendState::Suppressed),
            d(&m[1], SendState::Holdout),
            d(&m[2], SendState::Planned),
        ])
        .unwrap();
    let rows = state.all_rows().unwrap();
    assert_eq!(rows[0].state, SendState::Delivered);
    assert_eq!(rows[1].state, SendState::Holdout);
    assert!(rows[1].sent_at.is_some(), "holdout: would have been sent");
    assert_eq!(rows[2].entry_date, entry);
    // A planned row keeps its entry date when reserved.
    state.reserve(&m[2..], false).unwrap();
    assert_eq!(
        state
            .send_row(&m[2].idempotency_key)
            .unwrap()
            .unwrap()
            .entry_date,
        entry
    );
    // Holdout is final: never reserved.
    assert!(state.reserve(&m[1..2], true).unwrap().is_empty());
}

#[test]
fn counts_and_past_sends() {
    let (_dir, state) = temp_state();
    let mut batch = messages(3, Medium::Email, "mail");
    batch.push(message(9, Medium::Email, "mail", "amends"));
    state.reserve(&batch, false).unwrap();
    state
        .record(&[rec(&batch[0].idempotency_key, SendState::Delivered)])
        .unwrap();
    let counts = state.counts(Some("quick"), None).unwrap();
    let n = |s| counts.iter().find(|c| c.state == s).map_or(0, |c| c.n);
    assert_eq!((n(SendState::Delivered), n(SendState::InFlight)), (1, 2));
    assert_eq!(state.counts(None, None).unwrap().len(), 3);
    let as_of = batch[0].as_of;
    assert!(state.counts(None, as_of.succ_opt()).unwrap().is_empty());
    let past = state.ledger_entries(as_of).unwrap();
    assert_eq!(past.len(), 4);
    let c0 = past.iter().find(|p| p.customer_id == "c0").unwrap();
    assert_eq!(c0.state, SendState::Delivered);
    assert!(c0.sent_at.is_some());
    assert!(
        state
            .ledger_entries(as_of.succ_opt().unwrap())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sendable_matches_reserve_without_writing() {
    let (_dir, state) = temp_state();
    let batch = messages(2, Medium::Email, "mail");
    state.reserve(&batch[..1], false).unwrap();
    assert_eq!(state.sendable(&batch, false).unwrap(), vec![false, true]);
    assert_eq!(state.all_rows().unwrap().len(), 1);
}

/// The ledger's transactions read (which rows are final) before they write. Begun as a
/// plain (deferred) transaction, one that read while another process's connection
/// committed (the scheduler renewing its run lock) failed at once with "database is
/// locked", whatever the busy timeout: it happened to a 30M-row run's deliveries. Begun
/// IMMEDIATE, it takes the write lock first and waits its turn.
#[test]
fn ledger_writes_wait_for_another_connection_instead_of_failing() {
    let (dir, state) = temp_state();
    let other = State::open(dir.path()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renewer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let lease = std::time::Duration::from_secs(60);
            other.try_acquire("run", "scheduler", lease).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                other.renew("run", "scheduler", lease).unwrap();
            }
        })
    };
    for round in 0..200 {
        let batch: Vec<_> = (0..20)
            .map(|i| message(round * 20 + i, Medium::Email, "mail", "quick"))
            .collect();
        state
            .reserve(&batch, false)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    renewer.join().unwrap();
}

#[test]
fn recovery_leaves_a_live_runs_rows_alone() {
    let (_dir, state) = temp_state();
    let batch = messages(4, Medium::Email, "mail");
    let lease = std::time::Duration::from_secs(600);
    let me = crate::state::holder_id();
    // Run A (as_of 1) is alive and holds its lock; run B (as_of 2) died (its lock is gone).
    assert!(state.try_acquire("p@2025-03-01", &me, lease).unwrap());
    let mut conn = state.conn();
    let tx = conn.transaction().unwrap();
    let a = RunOwner {
        lock: "p@2025-03-01".into(),
        holder: me.clone(),
    };
    let b = RunOwner {
        lock: "p@2025-03-02".into(),
        holder: "otherhost/1/abc".into(),
    };
    let now = "2025-03-10T02:30:00.000Z";
    super::super::ledger_batches::reserve_tx(&tx, &batch[..2], false, Some(&a), now).unwrap();
    super::super::ledger_batches::reserve_tx(&tx, &batch[2..], false, Some(&b), now).unwrap();
    tx.commit().unwrap();
    drop(conn);
    let recovered = state.recover_in_flight().unwrap();
    let keys: Vec<&str> = recovered
        .iter()
        .map(|r| r.idempotency_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            batch[2].idempotency_key.as_str(),
            batch[3].idempotency_key.as_str()
        ]
    );
    let live = state.send_row(&batch[0].idempotency_key).unwrap().unwrap();
    assert_eq!(
        live.state,
        SendState::InFlight,
        "the live run's row is left alone"
    );
    // Once A's lock is released, its rows are recoverable too.
    state.release("p@2025-03-01", &me).unwrap();
    assert_eq!(state.recover_in_flight().unwrap().len(), 2);
}

#[test]
fn a_lock_held_by_a_dead_process_of_this_host_is_taken_at_once() {
    let (_dir, state) = temp_state();
    let lease = std::time::Duration::from_secs(600);
    // A child process that has exited: its pid is free.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let mine = crate::state::holder_id();
    let host = mine.split('/').next().unwrap();
    let dead = format!("{host}/{pid}/0000dead");
    assert!(crate::state::locks::process_is_dead_here(&dead));
    assert!(state.try_acquire("k", &dead, lease).unwrap());
    assert!(
        state.try_acquire("k", &mine, lease).unwrap(),
        "taken over although the lease runs for 10 more minutes"
    );
    // A live holder (this very process) is never taken over before its lease ends.
    assert!(!state.try_acquire("k", "someone-else", lease).unwrap());
    assert!(!crate::state::locks::process_is_dead_here(&mine));
    assert!(!crate::state::locks::process_is_dead_here("otherhost/1/x"));
}

#[test]
fn a_rerun_marks_the_rows_it_did_not_plan_again_replanned() {
    let (_dir, state) = temp_state();
    let entry = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
    let d = |m: &crate::message::Message, s| LedgerDecision {
        tags: Default::default(),
        message: m.clone(),
        entry_date: entry,
        state: s,
        reason: None,
    };
    // The first attempt of the night plans c0 and c1 by e-mail, c2 is delivered, and
    // campaign amends plans c9.
    let mut first = messages(3, Medium::Email, "mail");
    let amends = message(9, Medium::Email, "mail", "amends");
    first.push(amends.clone());
    state
        .record_decisions(
            &first
                .iter()
                .map(|m| d(m, SendState::Planned))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    state.reserve(&first[2..3], false).unwrap();
    state
        .record(&[rec(&first[2].idempotency_key, SendState::Delivered)])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    // The rerun plans c1 by e-mail again and c0 on another channel (a call).
    let since = state.now();
    let call = message(0, Medium::Sms, "calls", "quick");
    state
        .record_decisions(&[
            d(&first[1], SendState::Planned),
            d(&call, SendState::Planned),
        ])
        .unwrap();
    // Only campaign quick is in the rerun's pipeline: amends is left as it is.
    assert_eq!(
        state
            .supersede_planned(first[0].as_of, &["quick"], since)
            .unwrap(),
        1
    );
    let row = |k: &str| state.send_row(k).unwrap().unwrap();
    let c0 = row(&first[0].idempotency_key);
    assert_eq!(
        (c0.state, c0.reason.as_deref()),
        (SendState::NotSent, Some("replanned"))
    );
    assert_eq!(row(&first[1].idempotency_key).state, SendState::Planned);
    assert_eq!(row(&first[2].idempotency_key).state, SendState::Delivered);
    assert_eq!(row(&call.idempotency_key).state, SendState::Planned);
    assert_eq!(row(&amends.idempotency_key).state, SendState::Planned);
    // Another night's rows are never touched.
    let later = first[0].as_of.succ_opt().unwrap();
    assert_eq!(
        state
            .supersede_planned(later, &["quick"], state.now())
            .unwrap(),
        0
    );
}
