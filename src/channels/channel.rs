//! The one trait every channel implements, and what all of them share about a message.

use futures::future::BoxFuture;
use serde::Serialize;

use super::lookup::{Settlement, Unsettled};
use super::outcome::{ChannelError, Sent};
use super::settings::ChannelSettings;
use crate::message::{Medium, Message};

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

/// A provider. `send` returns exactly one [`Outcome`] per message of `batch`, in order, and
/// the error that halted the batch if one did: bad credentials or a refused sender
/// configuration (stop the channel), a 429 (pause every worker, no attempt used up) or an
/// internal failure.
pub trait Channel: Send + Sync {
    fn name(&self) -> &str {
        &self.settings().name
    }

    fn medium(&self) -> Medium {
        self.settings().medium
    }

    fn settings(&self) -> &ChannelSettings;

    fn send<'a>(&'a self, batch: &'a [Message]) -> BoxFuture<'a, Sent>;

    /// The exact request(s) `send(batch)` would make, with secrets masked.
    fn preview(&self, batch: &[Message]) -> Vec<RequestPreview>;

    /// Asks the provider what it accepted of `sends` (recipients whose request may have
    /// been processed); one settlement each, in order. `Err` when the provider cannot be
    /// asked now (every recipient stays `unknown`).
    fn lookup<'a>(
        &'a self,
        sends: &'a [Unsettled],
    ) -> BoxFuture<'a, Result<Vec<Settlement>, ChannelError>>;
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
