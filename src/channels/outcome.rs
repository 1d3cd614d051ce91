//! What a channel answers: one [`Outcome`] per recipient, and a [`ChannelError`] for what
//! concerns the whole channel or the whole request.

use std::time::Duration;

use crate::error::Blame;

/// What became of one recipient of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider accepted the message.
    Delivered { provider_id: Option<String> },
    /// The provider did **not** process the request (no connection, a request not fully
    /// written, a 429): safe to try again.
    Retriable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The provider refused this recipient for good (invalid address, ...).
    Rejected { reason: String },
    /// The provider refused this recipient because they opted out (Twilio 21610, a STOP
    /// reply): rejected, and the opt-out is recorded for every later run.
    OptedOut { reason: String },
    /// The request may have been processed (a timeout or a reset after it was written, a
    /// 5xx, a 408): never repeated until the provider's own answer proves it was not.
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

    pub fn unknown(reason: impl Into<String>) -> Outcome {
        Outcome::Unknown {
            reason: reason.into(),
        }
    }
}

/// What one `send` of a batch came to: an outcome per recipient, in order, and the error
/// that halted the batch, if one did. Recipients the halt left without a request are
/// `Retriable` (nothing was sent to them); the others keep what their request earned, so a
/// recipient whose request may have gone out is never marked for a resend by a later halt.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub outcomes: Vec<Outcome>,
    pub halt: Option<ChannelError>,
}

impl Sent {
    pub fn settled(outcomes: Vec<Outcome>) -> Sent {
        Sent {
            outcomes,
            halt: None,
        }
    }

    /// The outcomes, or the error that halted the batch.
    pub fn into_result(self) -> Result<Vec<Outcome>, ChannelError> {
        match self.halt {
            Some(e) => Err(e),
            None => Ok(self.outcomes),
        }
    }

    /// Nothing was sent: every recipient waits for the error to pass.
    pub fn halted(n: usize, e: ChannelError) -> Sent {
        let reason = e.to_string();
        let wait = e.retry_after();
        Sent {
            outcomes: vec![Outcome::retriable(reason, wait); n],
            halt: Some(e),
        }
    }
}

/// A failure of a whole channel or a whole request (per-recipient failures are [`Outcome`]s).
/// Messages never contain a secret value, an e-mail address or a phone number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "channel {channel}: the provider refused the credentials (HTTP {status}); check the key in environment variable {env_var}"
    )]
    Auth {
        channel: String,
        env_var: String,
        status: u16,
    },
    /// The provider refused the sender's own configuration (a `from` it does not know, a
    /// wrong account or domain): the channel stops; no recipient is rejected for it.
    #[error("channel {channel}: the provider refused the setting `{setting}`: {reason}")]
    Sender {
        channel: String,
        setting: String,
        reason: String,
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
    /// A look-up the provider could not answer now (network, 5xx): a later run may.
    #[error("channel {channel}: {reason}")]
    Unavailable { channel: String, reason: String },
}

impl ChannelError {
    pub fn blame(&self) -> Blame {
        match self {
            ChannelError::Auth { .. }
            | ChannelError::Sender { .. }
            | ChannelError::MissingSecret { .. }
            | ChannelError::Config { .. } => Blame::User,
            ChannelError::RateLimited { .. } | ChannelError::Unavailable { .. } => Blame::External,
            ChannelError::Internal { .. } => Blame::Internal,
        }
    }

    /// The wait a 429 asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ChannelError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl crate::error::Blamed for ChannelError {
    fn blame(&self) -> Blame {
        ChannelError::blame(self)
    }
}
