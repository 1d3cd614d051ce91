//! Group commit for the send ledger: every worker's reserve / record / retry count goes to
//! one writer thread, which runs whatever has queued up in a single SQLite transaction and
//! then answers each caller. A worker still waits for its own rows to be committed before
//! its request goes out, so the crash guarantees are per batch, while one-recipient
//! channels (Twilio) do not pay one transaction per SMS.

use tokio::sync::{mpsc, oneshot};

use crate::message::Message;
use crate::state::ledger_batches::{attempt_tx, decide_tx, record_tx, reserve_tx};
use crate::state::{LedgerDecision, LedgerOutcome, RunOwner, State, StateError};

/// Most operations folded into one transaction.
const MAX_GROUP: usize = 512;

type Reply<T> = oneshot::Sender<Result<T, String>>;

enum Op {
    Reserve(Vec<Message>, Reply<Vec<Message>>),
    Record(Vec<LedgerOutcome>, Reply<()>),
    Attempt(Vec<String>, Reply<()>),
    Decide(Vec<LedgerDecision>, Reply<()>),
}

/// A handle on the writer thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::UnboundedSender<Op>,
}

impl LedgerWriter {
    /// Starts the writer; rows it reserves are owned by `owner` (the run's lock).
    pub fn start(state: State, resend_unknown: bool, owner: Option<RunOwner>) -> LedgerWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("winback-ledger".into())
            .spawn(move || writer(state, resend_unknown, owner, rx))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the ledger writer"));
        LedgerWriter { tx }
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Result<T, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .map_err(|_| "the ledger writer stopped".to_string())?;
        rx.await
            .map_err(|_| "the ledger writer stopped".to_string())?
    }

    /// Marks the batch in flight; returns the messages to send (others are final already).
    pub async fn reserve(&self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        self.call(|r| Op::Reserve(batch, r)).await
    }

    pub async fn record(&self, records: Vec<LedgerOutcome>) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        self.call(|r| Op::Record(records, r)).await
    }

    pub async fn count_attempt(&self, keys: Vec<String>) -> Result<(), String> {
        self.call(|r| Op::Attempt(keys, r)).await
    }

    pub async fn decide(&self, decisions: Vec<LedgerDecision>) -> Result<(), String> {
        if decisions.is_empty() {
            return Ok(());
        }
        self.call(|r| Op::Decide(decisions, r)).await
    }
}

/// Page cache of the shared connection while delivering (SQLite's default is 2 MiB, too
/// small for the key b-tree of a million-recipient run).
const CACHE_SIZE_KIB: i64 = 64 * 1024;

fn writer(
    state: State,
    resend_unknown: bool,
    owner: Option<RunOwner>,
    mut rx: mpsc::UnboundedReceiver<Op>,
) {
    // Statement journals in memory, not in a temp file; room for the batch statements.
    state.conn().set_prepared_statement_cache_capacity(64);
    let tuned = state.conn().execute_batch(&format!(
        "PRAGMA cache_size = -{CACHE_SIZE_KIB}; PRAGMA temp_store = MEMORY;"
    ));
    if let Err(e) = tuned {
        tracing::warn!(error = %e, "cannot enlarge the state database cache");
    }
    while let Some(first) = rx.blocking_recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let result = run_group(&state, resend_unknown, owner.as_ref(), &ops);
        match result {
            Ok(mut kept) => {
                for op in ops {
                    match op {
                        Op::Reserve(batch, reply) => {
                            let keep = kept.remove(0);
                            let send: Vec<Message> = batch
                                .into_iter()
                                .zip(keep)
                                .filter_map(|(m, k)| k.then_some(m))
                                .collect();
                            let _ = reply.send(Ok(send));
                        }
                        Op::Record(_, reply) | Op::Attempt(_, reply) | Op::Decide(_, reply) => {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            }
            Err(e) => {
                let reason = format!("send ledger: {e}");
                tracing::error!(error = %reason, "a ledger transaction failed");
                for op in ops {
                    match op {
                        Op::Reserve(_, reply) => drop(reply.send(Err(reason.clone()))),
                        Op::Record(_, reply) | Op::Attempt(_, reply) | Op::Decide(_, reply) => {
                            drop(reply.send(Err(reason.clone())))
                        }
                    }
                }
            }
        }
    }
}

/// Runs every queued operation in one transaction; returns the reserve verdicts in order.
fn run_group(
    state: &State,
    resend_unknown: bool,
    owner: Option<&RunOwner>,
    ops: &[Op],
) -> Result<Vec<Vec<bool>>, StateError> {
    let now = crate::state::fmt_ts(state.now());
    let mut conn = state.conn();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut kept = Vec::new();
    for op in ops {
        match op {
            Op::Reserve(batch, _) => {
                kept.push(reserve_tx(&tx, batch, resend_unknown, owner, &now)?)
            }
            Op::Record(records, _) => record_tx(&tx, records, &now)?,
            Op::Attempt(keys, _) => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                attempt_tx(&tx, &keys, &now)?
            }
            Op::Decide(decisions, _) => decide_tx(&tx, decisions, &now)?,
        }
    }
    tx.commit()?;
    Ok(kept)
}
