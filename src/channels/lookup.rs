//! What reconciliation asks a provider: for each `unknown` recipient (a request that may
//! have been processed), did the provider accept it? Only a conclusive "never accepted"
//! makes a recipient sendable again.

use chrono::{DateTime, NaiveDate, Utc};

/// One recipient whose request may have been processed.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    pub idempotency_key: String,
    pub campaign: String,
    /// The run date the message was decided for.
    pub as_of: NaiveDate,
    /// The address the request went to (never logged).
    pub to: String,
    /// When the request was reserved (`in_flight`): the provider's record, if any, is later.
    pub attempted_at: DateTime<Utc>,
}

/// What the provider's answer proves about one recipient.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The provider accepted it: `delivered`, with its id.
    Accepted {
        provider_id: Option<String>,
        reason: String,
    },
    /// The provider accepted it and then failed it (undelivered): `rejected`.
    AcceptedFailed {
        provider_id: Option<String>,
        reason: String,
    },
    /// The provider's answer is conclusive that it never accepted it: `not_sent`, which
    /// the next run sends once.
    NotAccepted { reason: String },
    /// Not conclusive (several candidates, a look-up the provider refuses, a lag): stays
    /// `unknown`, with the reason.
    Open { reason: String },
}

impl Settlement {
    pub fn open(reason: impl Into<String>) -> Settlement {
        Settlement::Open {
            reason: reason.into(),
        }
    }
}

/// Margin around an attempt's time when matching a provider's records to it (clocks differ).
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);
