//! SendGrid's Signed Event Webhook: a POST of a JSON array of events, signed with ECDSA.
//!
//! Formats, from SendGrid's pages:
//! - the signature: "Getting Started with the Event Webhook Security Features"
//!   (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>):
//!   `X-Twilio-Email-Event-Webhook-Signature` is base64 of a DER ECDSA (P-256, SHA-256)
//!   signature of the `X-Twilio-Email-Event-Webhook-Timestamp` value followed by the raw
//!   body; the verification key is base64 of a DER SubjectPublicKeyInfo. SendGrid states no
//!   maximum age: winback refuses timestamps more than `max_age` away from now.
//! - the events: "Event Webhook Reference"
//!   (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event>): each has
//!   `event`, `email`, `timestamp` (Unix seconds), `sg_event_id`, `sg_message_id`, and the
//!   `custom_args` of the send at the top level (winback's `idempotency_key`). `bounce`
//!   has `type` `bounce` (permanent) or `blocked` (temporary); `dropped` has a `reason`
//!   (`Bounced Address`, `Spam Reporting Address`, `Unsubscribed Address`, `Invalid`, ...);
//!   `deferred` is a temporary delay SendGrid keeps retrying (up to 72 hours), not a bounce,
//!   so it is ignored, like `processed`, `open` and `click`.
//! - `sg_message_id` starts with the `X-Message-Id` of the send request, up to the first
//!   `.` (SendGrid support, "How To Filter results with Activity Feed API for X Message ID":
//!   `msg_id LIKE '<X-Message-ID>%'`); winback's ledger records the `X-Message-Id`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use p256::ecdsa::{Signature, VerifyingKey, signature::Verifier};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{FeedbackError, FeedbackEvent, FeedbackKind, InvalidKey, check_fresh, json_error};
use crate::message::Medium;

pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// Reads the verification key as SendGrid shows it (base64 DER), also accepted with PEM's
/// `-----BEGIN PUBLIC KEY-----` lines and line breaks around it.
pub fn public_key(text: &str) -> Result<VerifyingKey, InvalidKey> {
    let b64: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| InvalidKey("the SendGrid verification key is not base64".into()))?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| {
        InvalidKey("the SendGrid verification key is not a P-256 public key (DER)".into())
    })
}

/// Verifies one Event Webhook request (the two headers' values, if present, and the raw
/// body) and returns the events winback acts on, in the batch's order.
pub fn parse(
    key: &VerifyingKey,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<Vec<FeedbackEvent>, FeedbackError> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(FeedbackError::BadSignature);
    };
    let timestamp = timestamp.trim();
    verify_signature(key, signature.trim(), timestamp, body)?;
    let secs: i64 = timestamp.parse().map_err(|_| FeedbackError::BadSignature)?;
    check_fresh(secs, now, max_age)?;
    let events: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| json_error("SendGrid event batch", &e))?;
    let mut out = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if !event.is_object() {
            return Err(FeedbackError::Malformed(format!(
                "SendGrid event {i} is not an object"
            )));
        }
        if let Some(e) = one(event, now) {
            out.push(e);
        }
    }
    Ok(out)
}

/// Checks the signature alone (base64 DER ECDSA of timestamp ++ body), not the age.
pub fn verify_signature(
    key: &VerifyingKey,
    signature: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<(), FeedbackError> {
    let der = STANDARD
        .decode(signature)
        .map_err(|_| FeedbackError::BadSignature)?;
    let sig = Signature::from_der(&der).map_err(|_| FeedbackError::BadSignature)?;
    // (r, s) and (r, n - s) are the same ECDSA signature; accept either form.
    let sig = sig.normalize_s().unwrap_or(sig);
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    key.verify(&signed, &sig)
        .map_err(|_| FeedbackError::BadSignature)
}

fn text(event: &Value, field: &str) -> Option<String> {
    event
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The kind and detail of one event, or `None` for an event winback does not act on.
fn classify(event: &Value) -> Option<(FeedbackKind, Option<String>)> {
    let name = text(event, "event")?;
    match name.as_str() {
        "bounce" => {
            // `reason` is the receiving server's answer and often quotes the address:
            // only the classification and the status code go into the detail.
            let class = text(event, "bounce_classification");
            let status = text(event, "status");
            let kind = match text(event, "type").as_deref() {
                Some("blocked") => FeedbackKind::SoftBounce,
                _ => FeedbackKind::HardBounce,
            };
            let detail = [text(event, "type"), class, status]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            Some((kind, Some(detail).filter(|d| !d.is_empty())))
        }
        "dropped" => {
            let reason = text(event, "reason")?;
            let kind = match reason.as_str() {
                "Bounced Address" | "Invalid" => FeedbackKind::HardBounce,
                "Spam Reporting Address" => FeedbackKind::Complaint,
                "Unsubscribed Address" => FeedbackKind::Unsubscribe,
                _ => return None,
            };
            Some((kind, Some(format!("dropped: {reason}"))))
        }
        "spamreport" => Some((FeedbackKind::Complaint, None)),
        "unsubscribe" => Some((FeedbackKind::Unsubscribe, None)),
        "group_unsubscribe" => {
            let group = event.get("asm_group_id").map(Value::to_string);
            Some((
                FeedbackKind::Unsubscribe,
                group.map(|g| format!("unsubscribe group {g}")),
            ))
        }
        "delivered" => Some((FeedbackKind::Delivered, None)),
        _ => None,
    }
}

fn one(event: &Value, now: DateTime<Utc>) -> Option<FeedbackEvent> {
    let (kind, detail) = classify(event)?;
    let event_id = text(event, "sg_event_id").unwrap_or_else(|| {
        // Events have carried `sg_event_id` since 2014; without one, the same event
        // repeated still gets the same key.
        format!("sha256:{}", hex::encode(Sha256::digest(event.to_string())))
    });
    let at = event
        .get("timestamp")
        .and_then(Value::as_i64)
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(now);
    Some(FeedbackEvent {
        provider: "sendgrid",
        event_id,
        kind,
        medium: Medium::Email,
        address: text(event, "email"),
        idempotency_key: text(event, "idempotency_key"),
        provider_message_id: text(event, "sg_message_id")
            .and_then(|id| id.split('.').next().map(str::to_string))
            .filter(|id| !id.is_empty()),
        at,
        detail,
    })
}
