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

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_string_contains, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::channels::test_support::*;
    use crate::message::Medium;

    fn tests_of(batch: Vec<Message>) -> Vec<TestMessage> {
        batch
            .into_iter()
            .map(|message| TestMessage {
                sample_customer_id: "C1".into(),
                message,
            })
            .collect()
    }

    #[tokio::test]
    async fn each_outcome_becomes_a_masked_row_and_a_refusal_quotes_no_number() {
        let server = MockServer::start().await;
        let refused = phone_of(0);
        Mock::given(method("POST"))
            .and(body_string_contains("To=%2B15550000000"))
            .respond_with(ResponseTemplate::new(400).set_body_string(format!(
                r#"{{"code": 21211, "message": "The 'To' number {refused} is not a valid phone number."}}"#
            )))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid": "SM42"}"#))
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
        let now = chrono::Utc::now();
        let (rows, halt) = send(
            ch.as_ref(),
            &tests_of(messages(2, Medium::Sms, "sms")),
            false,
            now,
        )
        .await;
        assert!(halt.is_none());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].outcome, "rejected");
        let reason = rows[0].reason.as_deref().unwrap();
        assert!(
            reason.contains("21211") || reason.contains("not a valid"),
            "{reason}"
        );
        assert!(!reason.contains(&refused), "{reason}");
        assert_eq!(rows[0].recipient_masked, "+1555***0000");
        assert_eq!(
            (
                rows[1].outcome.as_str(),
                rows[1].provider_message_id.as_deref()
            ),
            ("delivered", Some("SM42"))
        );
        assert_eq!(rows[1].recipient_masked, "+1555***0001");
        assert!(
            rows.iter()
                .all(|r| r.sent_at == now && r.sample_customer_id == "C1")
        );
    }

    #[tokio::test]
    async fn refused_credentials_stop_the_rest_unattempted() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let ch = build(
            "mail",
            &sendgrid_toml(&server.uri(), "batch_size = 1\n"),
            dir.path(),
        );
        let (rows, halt) = send(
            ch.as_ref(),
            &tests_of(messages(3, Medium::Email, "mail")),
            true,
            chrono::Utc::now(),
        )
        .await;
        let halt = halt.expect("the channel stopped");
        assert_eq!(halt.blame(), crate::error::Blame::User);
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        assert!(rows.iter().all(|r| r.outcome == "failed" && r.sandbox));
        for r in &rows[1..] {
            assert!(
                r.reason.as_deref().unwrap().starts_with("not attempted: "),
                "{r:?}"
            );
        }
    }
}
