//! The rows the send ledger (table `sends`) is written with: a request's outcome, a
//! planning decision, the run that reserves rows. `sends.rs` reads and settles the ledger,
//! `ledger_batches.rs` writes it on the hot path; both use these.

use chrono::NaiveDate;
use serde::Serialize;

use super::StateError;
use crate::message::{Message, SendState};

/// States after which a row is never sent again (`unknown` unless the campaign says resend).
pub(crate) const FINAL_SQL: &str = "('delivered', 'rejected', 'holdout', 'in_flight')";

/// The outcome of one request for one recipient, as the ledger stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerOutcome {
    pub idempotency_key: String,
    pub state: SendState,
    pub provider_message_id: Option<String>,
    pub reason: Option<String>,
    /// The provider refused the recipient because they opted out: recorded beside.
    pub suppression: Option<super::suppressions::Suppression>,
}

/// The run that reserves rows: its lock and the lock's holder. Recovery marks `unknown`
/// only the `in_flight` rows whose run no longer holds its lock (or whose holder is a dead
/// process on this host), never a live run's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOwner {
    pub lock: String,
    pub holder: String,
}

/// A planning decision about one recipient that is not a send: `planned`, `holdout`,
/// `suppressed` or `deferred`, with the lapse (entry date) the sequence belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerDecision {
    pub message: Message,
    pub entry_date: NaiveDate,
    pub state: SendState,
    pub reason: Option<String>,
    pub tags: Tags,
}

/// What was said of a recipient when the decision was made: the audience row's segment,
/// treatment and value, and for a holdout row what the rules would have done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tags {
    pub segment: Option<String>,
    pub treatment: Option<String>,
    /// The campaign's value column (SLTV or CLV): the value predicted at decision time.
    pub value: Option<f64>,
    /// A holdout row only: the first rule that would have stopped tonight's message had
    /// the customer not been held out (`no_consent`, `unsubscribed`, `missing_address`,
    /// `invalid_address`, or the deferrals `frequency_cap`, `quiet_hours`); None when it
    /// would have been sent. Results compare like with like on it.
    pub would_be_suppressed: Option<String>,
}

pub(crate) fn parse_state(s: &str) -> Result<SendState, StateError> {
    SendState::parse(s).ok_or_else(|| StateError::InvalidValue {
        column: "sends.state",
        value: s.to_string(),
    })
}
