//! Sending test messages (`winback send-test`) through a real channel, outside the ledger:
//! each request once (a test that fails is run again by hand), no reservation, no retry,
//! no opt-out recorded for a test address, and every outcome turned into a `test_sends`
//! row with the recipient masked.

use chrono::{DateTime, Utc};

use crate::channels::{Channel, ChannelError, Outcome};
use crate::mask;
use crate::message::Message;
use crate::state::TestSend;

/// One test message and the audience row it was rendered from.
#[derive(Debug, Clone)]
pub struct TestMessage {
    pub sample_customer_id: String,
    pub message: Message,
}

/// Send every message through `channel` in the channel's batches; after a batch that
/// stopped the channel (refused credentials, a refused sender, a 429), the rest is not
/// attempted. One row per message, in order, and the error that stopped the channel.
pub async fn send(
    channel: &dyn Channel,
    tests: &[TestMessage],
    sandbox: bool,
    now: DateTime<Utc>,
) -> (Vec<TestSend>, Option<ChannelError>) {
    let mut rows = Vec::with_capacity(tests.len());
    let mut halt: Option<ChannelError> = None;
    for chunk in tests.chunks(channel.settings().batch_size.max(1)) {
        let batch: Vec<Message> = chunk.iter().map(|t| t.message.clone()).collect();
        let outcomes = match &halt {
            Some(e) => vec![Outcome::retriable(format!("not attempted: {e}"), None); chunk.len()],
            None => {
                let sent = channel.send(&batch).await;
                halt = sent.halt;
                sent.outcomes
            }
        };
        let addresses: Vec<&str> = batch.iter().map(|m| m.to.as_str()).collect();
        for (t, outcome) in chunk.iter().zip(outcomes) {
            let (what, reason, id) = match outcome {
                Outcome::Delivered { provider_id } => ("delivered", None, provider_id),
                Outcome::Rejected { reason } | Outcome::OptedOut { reason } => {
                    ("rejected", Some(reason), None)
                }
                Outcome::Retriable { reason, .. } => ("failed", Some(reason), None),
                Outcome::Unknown { reason } => ("unknown", Some(reason), None),
            };
            let m = &t.message;
            let row = TestSend {
                campaign: m.campaign.clone(),
                step: m.step,
                channel: m.channel.clone(),
                medium: m.medium.as_str().to_string(),
                sample_customer_id: t.sample_customer_id.clone(),
                recipient_masked: mask::address(Some(m.medium), &m.to),
                sandbox,
                sent_at: now,
                outcome: what.to_string(),
                // Providers quote the address they refuse: never kept, never printed.
                reason: reason.map(|r| mask::scrub_addresses(&r, addresses.iter().copied())),
                provider_message_id: id,
            };
            tracing::info!(campaign = %row.campaign, step = row.step, channel = %row.channel,
                recipient = %row.recipient_masked, outcome = %row.outcome, "test send");
            rows.push(row);
        }
    }
    (rows, halt)
}
