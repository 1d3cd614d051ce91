//! Mailgun's webhooks: one event per POST, a JSON body holding its own signature.
//!
//! Formats, from Mailgun's pages:
//! - "Securing Webhooks"
//!   (<https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks>):
//!   `signature: {timestamp, token, signature}`, the signature the hex HMAC-SHA256 of
//!   timestamp ++ token with the webhook signing key (a subaccount's event also carries
//!   `parent-signature`, made with the primary account's key: either is accepted). The
//!   signature does not cover `event-data`; the timestamp is refused when more than
//!   `max_age` from now, and events are deduplicated by their id.
//! - "Webhook Payloads"
//!   (<https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads>):
//!   `event-data` has `event`, `id`, `timestamp` (Unix seconds with a fraction),
//!   `recipient`, `message.headers.message-id` (without angle brackets), `user-variables`
//!   (the `v:` variables of the send: winback's `idempotency_key`) and, for `failed`,
//!   `severity` (`permanent` or `temporary`), `reason` and `delivery-status.code`.
//!   `failed` with the reasons `suppress-unsubscribe` / `suppress-complaint` (a send
//!   dropped because the address is on that suppression list) count as the unsubscribe or
//!   complaint they stand for.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::Mac;
use serde_json::Value;

use super::signing::mailgun_mac;
use super::{FeedbackError, FeedbackEvent, FeedbackKind, check_fresh, from_unix, json_error};
use crate::message::Medium;

/// Verifies one webhook request body with the webhook signing key and returns the event,
/// if it is one winback acts on.
pub fn parse(
    signing_key: &str,
    body: &[u8],
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<Vec<FeedbackEvent>, FeedbackError> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| json_error("Mailgun webhook", &e))?;
    let signature = body
        .get("signature")
        .filter(|s| s.is_object())
        .ok_or(FeedbackError::BadSignature)?;
    let timestamp = field(signature, "timestamp").ok_or(FeedbackError::BadSignature)?;
    let token = field(signature, "token").ok_or(FeedbackError::BadSignature)?;
    let signed = ["signature", "parent-signature"]
        .iter()
        .filter_map(|f| field(signature, f))
        .any(|s| matches(signing_key, &timestamp, &token, &s));
    if !signed {
        return Err(FeedbackError::BadSignature);
    }
    let secs: i64 = timestamp.parse().map_err(|_| FeedbackError::BadSignature)?;
    check_fresh(secs, now, max_age)?;
    let data = body
        .get("event-data")
        .filter(|d| d.is_object())
        .ok_or_else(|| FeedbackError::Malformed("no `event-data` object".into()))?;
    one(data, now).map(|e| e.into_iter().collect())
}

/// A string field, or a number written as one (Mailgun's `timestamp` is a string in its
/// examples; a number is read the same).
fn field(v: &Value, name: &str) -> Option<String> {
    match v.get(name)? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Constant-time comparison of `hex_signature` with the HMAC of timestamp ++ token.
fn matches(signing_key: &str, timestamp: &str, token: &str, hex_signature: &str) -> bool {
    let Ok(bytes) = hex::decode(hex_signature) else {
        return false;
    };
    mailgun_mac(signing_key, timestamp, token)
        .verify_slice(&bytes)
        .is_ok()
}

fn classify(data: &Value) -> Option<(FeedbackKind, Option<String>)> {
    let event = field(data, "event")?;
    match event.as_str() {
        "failed" => {
            let reason = field(data, "reason");
            let code = data.pointer("/delivery-status/code").and_then(|c| match c {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            });
            let severity = field(data, "severity");
            let kind = match (severity.as_deref(), reason.as_deref()) {
                (_, Some("suppress-unsubscribe")) => FeedbackKind::Unsubscribe,
                (_, Some("suppress-complaint")) => FeedbackKind::Complaint,
                (Some("permanent"), _) => FeedbackKind::HardBounce,
                (Some("temporary"), _) => FeedbackKind::SoftBounce,
                _ => return None,
            };
            // `delivery-status.message` is the receiving server's answer and may quote
            // the address: only the severity, the reason and the code are kept.
            let detail = [severity, reason, code]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            Some((kind, Some(detail).filter(|d| !d.is_empty())))
        }
        "complained" => Some((FeedbackKind::Complaint, None)),
        "unsubscribed" => Some((FeedbackKind::Unsubscribe, None)),
        "delivered" => Some((FeedbackKind::Delivered, None)),
        _ => None,
    }
}

fn one(data: &Value, now: DateTime<Utc>) -> Result<Option<FeedbackEvent>, FeedbackError> {
    let Some((kind, detail)) = classify(data) else {
        return Ok(None);
    };
    let event_id = field(data, "id")
        .ok_or_else(|| FeedbackError::Malformed("`event-data` has no `id`".into()))?;
    Ok(Some(FeedbackEvent {
        provider: "mailgun",
        event_id,
        kind,
        medium: Medium::Email,
        address: field(data, "recipient"),
        idempotency_key: data
            .get("user-variables")
            .and_then(|v| field(v, "idempotency_key")),
        provider_message_id: data
            .pointer("/message/headers/message-id")
            .and_then(Value::as_str)
            .map(|m| m.trim().trim_matches(['<', '>']))
            .filter(|m| !m.is_empty())
            .map(|m| format!("<{m}>")),
        at: data
            .get("timestamp")
            .and_then(Value::as_f64)
            .and_then(from_unix)
            .unwrap_or(now),
        detail,
    }))
}
