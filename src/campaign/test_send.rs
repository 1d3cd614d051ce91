//! Test sends before a campaign goes live (`winback send-test`): a few sample rows of a
//! campaign's audience rendered with one step's templates, exactly as a run renders them,
//! and addressed to internal recipients instead of the customers. Pure.
//!
//! A test message is marked three ways: its subject (or, for SMS, its text) starts with
//! [`TEST_PREFIX`]; its `customer_id` is `test:<sample customer>` and its idempotency key
//! starts with `test-`, so a webhook receiver or an outbox reader never takes it for a
//! customer's; and its unsubscribe token is [`TEST_TOKEN`], which names no customer, so
//! clicking its unsubscribe link unsubscribes nobody.

use sha2::{Digest, Sha256};

use super::address::{valid_e164, valid_email};
use super::config::{Campaign, Step};
use super::draft::Draft;
use super::plan_input::AudienceRow;
use super::step::StepChannel;
use super::template::TemplateError;
use crate::message::{Medium, Message};

/// What a test message's subject (e-mail) or text (SMS) starts with.
pub const TEST_PREFIX: &str = "[TEST] ";
/// The unsubscribe token test messages are rendered with: no customer's.
pub const TEST_TOKEN: &str = "test-send";
/// The most sample rows one test send renders.
pub const MAX_ROWS: usize = 50;

/// One sample row's test messages: one per recipient, or the reason it did not render.
#[derive(Debug, Clone, PartialEq)]
pub struct TestMessages {
    /// The audience row rendered (a customer id; the customer is not messaged).
    pub sample_customer_id: String,
    pub messages: Result<Vec<Message>, TemplateError>,
}

/// Each `--to` that is not an address of `medium` (an e-mail address, or an E.164 number
/// for SMS), by position and masked: the problems, empty when all are.
pub fn check_recipients(medium: Medium, to: &[String]) -> Vec<String> {
    let (valid, what): (fn(&str) -> bool, &str) = match medium {
        Medium::Email => (valid_email, "an e-mail address"),
        Medium::Sms | Medium::Call => (valid_e164, "an E.164 phone number (+ and 8 to 15 digits)"),
    };
    let mut problems: Vec<String> = to
        .iter()
        .enumerate()
        .filter(|(_, a)| !valid(a))
        .map(|(i, a)| {
            format!(
                "--to #{} ({}) is not {what}: this step sends {}",
                i + 1,
                crate::mask::address(None, a),
                medium.as_str()
            )
        })
        .collect();
    if to.is_empty() {
        problems.push("give at least one --to address".into());
    }
    if medium == Medium::Call {
        problems.push(
            "a call is not sent: it is a row of the call list (try `winback run --dry-run` and read the list)".into(),
        );
    }
    problems
}

/// The step channel a test send goes through: `requested` when the step lists it, else
/// the first listed channel whose medium the recipients are (E.164 numbers: SMS, anything
/// else: e-mail). The problem, when there is none.
pub fn choose_channel(
    step: &Step,
    requested: Option<&str>,
    to: &[String],
) -> Result<StepChannel, String> {
    let listed: Vec<&str> = step.channels.iter().map(|c| c.name.as_str()).collect();
    let usable = |c: &&StepChannel| step.templates_for(c.medium).is_some();
    if let Some(name) = requested {
        return step
            .channels
            .iter()
            .filter(usable)
            .find(|c| c.name == name)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "--channel {name}: step {} sends through {}",
                    step.number,
                    listed.join(", ")
                )
            });
    }
    let medium = match to.first() {
        Some(a) if valid_e164(a) => Medium::Sms,
        _ => Medium::Email,
    };
    step.channels
        .iter()
        .filter(usable)
        .find(|c| c.medium == medium)
        .cloned()
        .ok_or_else(|| {
            format!(
                "step {} has no {} channel for these --to addresses (it sends through {}); give addresses of its medium or --channel",
                step.number,
                medium.as_str(),
                listed.join(", ")
            )
        })
}

/// The `k` sample rows: the lowest customer ids (the same rows every time for the same
/// audience).
pub fn sample(mut rows: Vec<AudienceRow>, k: usize) -> Vec<AudienceRow> {
    rows.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    rows.dedup_by(|a, b| a.customer_id == b.customer_id);
    rows.truncate(k);
    rows
}

/// What a test send of one step is made of.
pub struct TestSendInput<'a> {
    pub campaign: &'a Campaign,
    pub step: &'a Step,
    /// The step's channel the test goes through (see [`choose_channel`]).
    pub channel: &'a StepChannel,
    pub samples: &'a [AudienceRow],
    pub to: &'a [String],
    pub as_of: chrono::NaiveDate,
    /// Makes this test send's idempotency keys its own (e.g. the time it starts).
    pub stamp: &'a str,
}

/// Every sample row rendered with the step's templates and addressed to every recipient.
pub fn test_messages(input: &TestSendInput<'_>) -> Vec<TestMessages> {
    let (campaign, step) = (input.campaign, input.step);
    let Some(templates) = step.templates_for(input.channel.medium) else {
        // choose_channel only picks a channel whose medium the step has templates for.
        return Vec::new();
    };
    input
        .samples
        .iter()
        .map(|row| {
            // Internal recipients: free, no quiet hours, delivered at once.
            let base = Message {
                campaign: campaign.name.clone(),
                step: step.number,
                customer_id: row.customer_id.clone(),
                channel: input.channel.name.clone(),
                ..Message::unrendered(input.channel.medium, input.as_of, row.entry_date)
            };
            let draft = Draft::new(
                base,
                row.fields.clone(),
                row.value,
                (TEST_TOKEN.to_string(), TEST_TOKEN.to_string()),
                std::sync::Arc::clone(templates),
            );
            let messages = draft.render().map(|rendered| {
                let marked = mark(rendered);
                input
                    .to
                    .iter()
                    .enumerate()
                    .map(|(i, to)| Message {
                        to: to.clone(),
                        idempotency_key: key(input, &row.customer_id, i),
                        ..marked.clone()
                    })
                    .collect()
            });
            TestMessages {
                sample_customer_id: row.customer_id.clone(),
                messages,
            }
        })
        .collect()
}

/// The message marked as a test: the prefix on the subject (on the text of an SMS), the
/// customer id `test:<id>`.
fn mark(mut m: Message) -> Message {
    match m.medium {
        Medium::Email | Medium::Call => {
            m.subject = Some(format!(
                "{TEST_PREFIX}{}",
                m.subject.as_deref().unwrap_or_default()
            ));
        }
        Medium::Sms => m.text = format!("{TEST_PREFIX}{}", m.text),
    }
    m.customer_id = format!("test:{}", m.customer_id);
    m
}

/// `test-` and 32 hex digits of SHA-256 over the stamp, campaign, step, sample and
/// recipient position: never a customer's key, and new for every test send.
fn key(input: &TestSendInput<'_>, customer_id: &str, recipient: usize) -> String {
    let mut h = Sha256::new();
    for part in [
        input.stamp,
        &input.campaign.name,
        &input.step.number.to_string(),
        customer_id,
        &recipient.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("test-{}", hex::encode(&h.finalize()[..16]))
}

#[cfg(test)]
#[path = "test_send_tests.rs"]
mod tests;
