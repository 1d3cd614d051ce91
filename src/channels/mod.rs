//! Channels: the providers a rendered message can go out through (a JSONL outbox, SendGrid,
//! Mailgun, Twilio, a signed webhook), behind one trait that answers with one outcome per
//! recipient, so the delivery loop can retry, reject and record each recipient on its own.

pub mod config;
pub mod file;
pub mod http;
pub mod mailgun;
pub mod rate_limit;
pub mod retry;
pub mod sendgrid;
pub mod split;
pub mod twilio;
pub mod webhook;

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::campaign::message::{Medium, Message};

pub use config::{ChannelConfig, QuietHours, TYPES};
pub use retry::RetryPolicy;

/// What became of one recipient of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider accepted the message.
    Delivered { provider_id: Option<String> },
    /// A transient failure (5xx, 408, timeout, connection error): try again later.
    Retriable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The provider refused this recipient for good (invalid address, ...).
    Rejected { reason: String },
    /// The request may or may not have been accepted (never re-sent automatically).
    Unknown { reason: String },
}

impl Outcome {
    pub fn retriable(reason: impl Into<String>, retry_after: Option<Duration>) -> Outcome {
        Outcome::Retriable {
            reason: reason.into(),
            retry_after,
        }
    }

    pub fn rejected(reason: impl Into<String>) -> Outcome {
        Outcome::Rejected {
            reason: reason.into(),
        }
    }
}

/// Whose fault an error is: decides the exit code and whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The configuration or the environment is wrong: fix it, then rerun.
    User,
    /// The provider or the network: a later run may succeed.
    External,
    /// A bug or a local resource problem in winback.
    Internal,
}

/// A failure of a whole channel or a whole request (per-recipient failures are [`Outcome`]s).
/// Messages never contain a secret value, an e-mail address or a phone number.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "channel {channel}: the provider refused the credentials (HTTP {status}); check the key in environment variable {env_var}"
    )]
    Auth {
        channel: String,
        env_var: String,
        status: u16,
    },
    #[error("channel {channel}: rate limited by the provider (HTTP 429)")]
    RateLimited {
        channel: String,
        retry_after: Option<Duration>,
    },
    #[error("channel {channel}: environment variable {env_var} is not set or empty")]
    MissingSecret { channel: String, env_var: String },
    #[error("channel {channel}: invalid configuration: {reason}")]
    Config { channel: String, reason: String },
    #[error("channel {channel}: {reason}")]
    Internal { channel: String, reason: String },
}

impl ChannelError {
    pub fn fault(&self) -> Fault {
        match self {
            ChannelError::Auth { .. }
            | ChannelError::MissingSecret { .. }
            | ChannelError::Config { .. } => Fault::User,
            ChannelError::RateLimited { .. } => Fault::External,
            ChannelError::Internal { .. } => Fault::Internal,
        }
    }

    /// Whether trying the same request again later can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, ChannelError::RateLimited { .. })
    }
}

/// The resolved per-channel settings every channel shares.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSettings {
    /// The `[channels.NAME]` key.
    pub name: String,
    pub medium: Medium,
    /// Requests per second (not recipients: providers limit API calls).
    pub rate_per_sec: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Recipients per request.
    pub batch_size: usize,
    /// Quiet hours in the recipient's local time.
    pub quiet_hours: QuietHours,
    pub daily_cap: Option<u64>,
    pub cost_per_message: f64,
    /// Attempts per recipient per run, and the backoff between them.
    pub retry: RetryPolicy,
}

impl ChannelSettings {
    /// What campaign planning needs to know of this channel.
    pub fn rules(&self) -> crate::campaign::ChannelRules {
        crate::campaign::ChannelRules {
            medium: self.medium,
            quiet_hours: self.quiet_hours,
            daily_cap: self.daily_cap.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
            cost_per_message: self.cost_per_message,
        }
    }
}

/// The request a channel would make, secrets masked: what `--dry-run` writes to the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestPreview {
    pub channel: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    /// Idempotency keys of the recipients this request carries.
    pub idempotency_keys: Vec<String>,
}

/// A provider. `send` returns exactly one [`Outcome`] per message of `batch`, in order.
///
/// `Err` is reserved for what concerns the whole channel or the whole request: bad
/// credentials (stop the channel), a 429 (pause every worker, no attempt used up) or an
/// internal failure.
pub trait Channel: Send + Sync {
    fn name(&self) -> &str {
        &self.settings().name
    }

    fn medium(&self) -> Medium {
        self.settings().medium
    }

    fn settings(&self) -> &ChannelSettings;

    fn send<'a>(
        &'a self,
        batch: &'a [Message],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ChannelError>>;

    /// The exact request(s) `send(batch)` would make, with secrets masked.
    fn preview(&self, batch: &[Message]) -> Vec<RequestPreview>;
}

/// The `List-Unsubscribe` header value (RFC 2369): the https URL, then the optional mailto.
pub fn list_unsubscribe(m: &Message) -> Option<String> {
    let parts: Vec<String> = [
        m.unsubscribe_url.as_deref(),
        m.unsubscribe_mailto.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(|u| format!("<{u}>"))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The RFC 8058 one-click header value, sent whenever an https unsubscribe URL is present.
pub const LIST_UNSUBSCRIBE_POST: &str = "List-Unsubscribe=One-Click";

#[cfg(test)]
pub(crate) mod test_support;
