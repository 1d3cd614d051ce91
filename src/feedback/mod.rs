//! What the providers tell winback after a send: bounces, complaints, unsubscribes and
//! deliveries, read from their event webhooks. Pure code: each provider's file checks the
//! request's signature by that provider's own scheme and turns the body into
//! [`FeedbackEvent`]s; the HTTP listener (`winback listen`) calls it with the raw request
//! and records the events, deduplicated by [`FeedbackEvent::event_id`].
//!
//! - [`sendgrid`]: the Signed Event Webhook (ECDSA P-256 over timestamp ++ body);
//! - [`mailgun`]: HMAC-SHA256 of timestamp ++ token with the webhook signing key;
//! - [`twilio`]: `X-Twilio-Signature`, HMAC-SHA1 of the URL and the sorted form parameters;
//! - [`signing`]: the same signatures made the providers' way, for tests.
//!
//! Nothing here logs, and nothing an error says quotes an address: addresses stay in
//! [`FeedbackEvent::address`], which `Debug` masks.

pub mod mailgun;
pub mod sendgrid;
pub mod signing;
pub mod twilio;

#[cfg(test)]
mod mailgun_tests;
#[cfg(test)]
mod sendgrid_tests;
#[cfg(test)]
mod signing_tests;
#[cfg(test)]
mod twilio_tests;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::mask;
use crate::message::Medium;

/// How old (or how far in the future) a signed timestamp may be: older requests are
/// refused as [`FeedbackError::Stale`], so a captured request cannot be replayed later.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// What a provider reports about one message to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedbackKind {
    /// The address does not work and will not: never send to it again.
    HardBounce,
    /// A temporary failure (mailbox full, blocked, handset off): counts towards a limit.
    SoftBounce,
    /// The recipient marked the message as spam.
    Complaint,
    /// The recipient unsubscribed through the provider (link, group, SMS STOP).
    Unsubscribe,
    /// The recipient's server (or handset) received the message.
    Delivered,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::HardBounce => "hard_bounce",
            FeedbackKind::SoftBounce => "soft_bounce",
            FeedbackKind::Complaint => "complaint",
            FeedbackKind::Unsubscribe => "unsubscribe",
            FeedbackKind::Delivered => "delivered",
        }
    }
}

/// One event a provider reported, in winback's terms.
#[derive(Clone, PartialEq)]
pub struct FeedbackEvent {
    /// `"sendgrid"`, `"mailgun"` or `"twilio"`.
    pub provider: &'static str,
    /// The provider's own unique id of this event: the dedupe key (providers repeat
    /// events). SendGrid `sg_event_id`; Mailgun `event-data.id`; Twilio
    /// `MessageSid:MessageStatus` for a status callback, the inbound `MessageSid` for a STOP.
    pub event_id: String,
    pub kind: FeedbackKind,
    /// E-mail for SendGrid and Mailgun, SMS for Twilio.
    pub medium: Medium,
    /// The recipient's e-mail address or phone number. Never logged: `Debug` masks it.
    pub address: Option<String>,
    /// winback's idempotency key, echoed back by the provider (SendGrid `custom_args`,
    /// Mailgun `user-variables`); Twilio does not echo it.
    pub idempotency_key: Option<String>,
    /// The provider's id of the message, in the form winback's ledger records it: SendGrid's
    /// `X-Message-Id` (the part of `sg_message_id` before the first `.`), Mailgun's
    /// `<message-id>` with its angle brackets, Twilio's `MessageSid`.
    pub provider_message_id: Option<String>,
    /// When it happened (the provider's time where it gives one, else when it was received).
    pub at: DateTime<Utc>,
    /// A short explanation (bounce classification, error code); never an address.
    pub detail: Option<String>,
}

impl std::fmt::Debug for FeedbackEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackEvent")
            .field("provider", &self.provider)
            .field("event_id", &self.event_id)
            .field("kind", &self.kind)
            .field("medium", &self.medium)
            .field(
                "address",
                &mask::optional_address(Some(self.medium), self.address.as_deref()),
            )
            .field("idempotency_key", &self.idempotency_key)
            .field("provider_message_id", &self.provider_message_id)
            .field("at", &self.at)
            .field("detail", &self.detail)
            .finish()
    }
}

/// Why a webhook request was refused. The messages never quote the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    /// No signature, or one that does not match: not from the provider (or altered).
    #[error("the request's signature is missing or does not match")]
    BadSignature,
    /// Correctly signed, but its timestamp is outside the allowed age: a replay.
    #[error("the request's signed timestamp is too old or too far in the future")]
    Stale,
    /// Signed, but not the shape the provider documents.
    #[error("malformed webhook request: {0}")]
    Malformed(String),
}

/// A verification key that cannot be used (a configuration error, found at start-up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook verification key: {0}")]
pub struct InvalidKey(pub String);

/// Refuses a signed Unix timestamp more than `max_age` away from `now`, either way.
pub(crate) fn check_fresh(
    timestamp_secs: i64,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(), FeedbackError> {
    let max = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let skew = now.timestamp().saturating_sub(timestamp_secs);
    if skew.checked_abs().is_none_or(|s| s > max) {
        return Err(FeedbackError::Stale);
    }
    Ok(())
}

/// A JSON error as `Malformed`, by category and position only: serde's own messages
/// quote the offending value, which may be an address.
pub(crate) fn json_error(what: &str, e: &serde_json::Error) -> FeedbackError {
    let category = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "not the documented structure",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    FeedbackError::Malformed(format!(
        "{what}: {category} (line {}, column {})",
        e.line(),
        e.column()
    ))
}

/// Seconds (with a fraction) since the epoch as a time; `None` if out of range.
pub(crate) fn from_unix(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_allows_max_age_either_way_and_no_more() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let ten_min = Duration::from_secs(600);
        assert_eq!(check_fresh(1_000_000 - 600, now, ten_min), Ok(()));
        assert_eq!(check_fresh(1_000_000 + 600, now, ten_min), Ok(()));
        assert_eq!(
            check_fresh(1_000_000 - 601, now, ten_min),
            Err(FeedbackError::Stale)
        );
        assert_eq!(
            check_fresh(1_000_000 + 601, now, ten_min),
            Err(FeedbackError::Stale)
        );
        assert_eq!(
            check_fresh(i64::MIN, now, ten_min),
            Err(FeedbackError::Stale)
        );
    }

    #[test]
    fn json_errors_do_not_quote_the_value() {
        let e = serde_json::from_str::<Vec<u32>>(r#"["carol@example.com"]"#).unwrap_err();
        let msg = json_error("body", &e).to_string();
        assert!(!msg.contains("carol"), "{msg}");
        assert!(msg.contains("not the documented structure"), "{msg}");
    }

    #[test]
    fn unix_seconds_with_a_fraction() {
        let t = from_unix(1_521_472_262.908_181).unwrap();
        assert_eq!(t.timestamp(), 1_521_472_262);
        // An f64 of this size holds the fraction to about 0.2 µs: the milliseconds are exact.
        assert_eq!(t.timestamp_subsec_millis(), 908);
        assert_eq!(from_unix(f64::NAN), None);
    }
}
