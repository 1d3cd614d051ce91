//! PLACEHOLDER (replaced by the i24-feedback branch): the interface the listener codes against.
use chrono::{DateTime, Utc};

use crate::message::Medium;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackKind {
    HardBounce,
    SoftBounce,
    Complaint,
    Unsubscribe,
    Delivered,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackEvent {
    pub provider: &'static str,
    pub event_id: String,
    pub kind: FeedbackKind,
    pub medium: Medium,
    pub address: Option<String>,
    pub idempotency_key: Option<String>,
    pub provider_message_id: Option<String>,
    pub at: DateTime<Utc>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    #[error("bad signature")]
    BadSignature,
    #[error("stale")]
    Stale,
    #[error("malformed: {0}")]
    Malformed(String),
}
