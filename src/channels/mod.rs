//! Channels: the providers a rendered message can go out through (a JSONL outbox, SendGrid,
//! Mailgun, Twilio, a signed webhook), behind one trait that answers with one outcome per
//! recipient, so the delivery loop can retry, reject and record each recipient on its own,
//! and that looks up what the provider accepted when an answer was lost (reconciliation).

pub mod api;
pub mod channel;
pub mod classify;
pub mod file;
pub mod http;
pub mod lookup;
pub mod mailgun;
pub mod outcome;
pub mod rate_limit;
pub mod registry;
pub mod retry;
pub mod sendgrid;
pub mod settings;
pub mod split;
pub mod twilio;
pub mod webhook;

pub use channel::{Channel, LIST_UNSUBSCRIBE_POST, RequestPreview, list_unsubscribe};
pub use lookup::{Settlement, Unsettled};
pub use outcome::{ChannelError, Outcome, Sent};
pub use registry::{BuildContext, ChannelConfig, TYPES};
pub use retry::RetryPolicy;
pub use settings::{ChannelSettings, QuietHours};

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod lookup_tests;

#[cfg(test)]
mod sandbox_tests;
