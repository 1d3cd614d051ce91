//! The contract between campaign planning (who gets what) and delivery (getting it there):
//! one rendered message to one recipient, and the states a send can be in.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What kind of address a channel delivers to; decides the address column and the consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Medium {
    Email,
    Sms,
}

impl Medium {
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Email => "email",
            Medium::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Medium> {
        match s {
            "email" => Some(Medium::Email),
            "sms" => Some(Medium::Sms),
            _ => None,
        }
    }
}

/// One message to one recipient, fully rendered, ready for a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub campaign: String,
    /// 1-based step of the campaign's sequence.
    pub step: u32,
    pub customer_id: String,
    /// The `[channels.NAME]` this goes out through.
    pub channel: String,
    pub medium: Medium,
    /// E-mail address or E.164 phone number. Never logged: use `mask::address`.
    pub to: String,
    /// Stable across retries and reruns: hash of (campaign, step, customer, channel, entry).
    pub idempotency_key: String,
    /// The as_of this send was decided for.
    pub as_of: NaiveDate,
    /// The lapse (alert date) whose sequence this message belongs to.
    pub entry_date: NaiveDate,
    /// E-mail subject (None for SMS).
    pub subject: Option<String>,
    /// E-mail HTML body (None for SMS).
    pub html: Option<String>,
    /// E-mail plain-text body, or the SMS text.
    pub text: String,
    /// https one-click unsubscribe URL for `List-Unsubscribe` (e-mail).
    pub unsubscribe_url: Option<String>,
    /// Optional `mailto:` for `List-Unsubscribe`.
    pub unsubscribe_mailto: Option<String>,
    /// What this message is expected to cost: the channel's cost_per_message plus the
    /// step's offer_cost.
    pub cost: f64,
    /// The recipient's timezone: delivery checks the channel's quiet hours in it when the
    /// batch is sent (None: not checked). Planning sets it (the customer's, inferred, or
    /// the pipeline's).
    #[serde(skip)]
    pub timezone: Option<chrono_tz::Tz>,
    /// When the provider is to deliver it (`defer = "schedule"` in quiet hours: the
    /// opening of the recipient's window); None = at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<DateTime<Utc>>,
}

impl Message {
    /// A message of `medium` for the night `as_of` and the lapse `entry_date` with nothing
    /// rendered, addressed to nobody and free: the fields who and where are set with struct
    /// update syntax (`Message { campaign, ..Message::unrendered(..) }`), the content by
    /// rendering.
    pub fn unrendered(medium: Medium, as_of: NaiveDate, entry_date: NaiveDate) -> Message {
        Message {
            campaign: String::new(),
            step: 0,
            customer_id: String::new(),
            channel: String::new(),
            medium,
            to: String::new(),
            idempotency_key: String::new(),
            as_of,
            entry_date,
            subject: None,
            html: None,
            text: String::new(),
            unsubscribe_url: None,
            unsubscribe_mailto: None,
            cost: 0.0,
            timezone: None,
            send_at: None,
        }
    }
}

/// Where one (campaign, step, customer, channel) stands in the send ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    /// Decided, not yet attempted.
    Planned,
    /// Written before the request; the outcome is not yet known.
    InFlight,
    /// The provider accepted it.
    Delivered,
    /// The provider refused it for good (bad address, ...).
    Rejected,
    /// Retries used up, or the channel stopped (401/403): not delivered, may be retried by a later run.
    Failed,
    /// Not sent this run (quiet hours, daily cap): the next run tries again.
    Deferred,
    /// Not sent, for a reason (consent, unsubscribed, cap, budget, ...).
    Suppressed,
    /// In the holdout: never contacted, recorded as "would have been sent".
    Holdout,
    /// May have been delivered (in flight when a process died, or the provider's answer
    /// was lost): never re-sent until reconciliation proves it was not (or
    /// `on_unknown = "resend"`).
    Unknown,
    /// Was `unknown`; the provider's own answer proved it never accepted it: the next run
    /// sends it, once.
    NotSent,
}

impl SendState {
    pub const ALL: [SendState; 10] = [
        SendState::Planned,
        SendState::InFlight,
        SendState::Delivered,
        SendState::Rejected,
        SendState::Failed,
        SendState::Deferred,
        SendState::Suppressed,
        SendState::Holdout,
        SendState::Unknown,
        SendState::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SendState::Planned => "planned",
            SendState::InFlight => "in_flight",
            SendState::Delivered => "delivered",
            SendState::Rejected => "rejected",
            SendState::Failed => "failed",
            SendState::Deferred => "deferred",
            SendState::Suppressed => "suppressed",
            SendState::Holdout => "holdout",
            SendState::Unknown => "unknown",
            SendState::NotSent => "not_sent",
        }
    }

    pub fn parse(s: &str) -> Option<SendState> {
        SendState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// A later run must never send this row again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SendState::Delivered | SendState::Rejected | SendState::Holdout | SendState::Unknown
        )
    }
}

/// One row of the ledger as planning needs it (frequency caps, sequences, entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub campaign: String,
    pub step: u32,
    pub customer_id: String,
    pub channel: String,
    pub medium: Medium,
    pub state: SendState,
    /// The lapse (alert date) this sequence entry belongs to.
    pub entry_date: NaiveDate,
    pub as_of: NaiveDate,
    /// When it was delivered (or would have been, for holdout); None if never.
    pub sent_at: Option<DateTime<Utc>>,
}
