//! Mailgun's webhooks: the HMAC of timestamp and token, the age, and the events read.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::mailgun;
use super::signing::{mailgun_body, mailgun_hex};
use super::{DEFAULT_MAX_AGE, FeedbackError, FeedbackEvent, FeedbackKind};
use crate::message::Medium;

const KEY: &str = "key-0123456789abcdef0123456789abcdef";
const NOW: i64 = 1_765_000_000;
const TOKEN: &str = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

/// An `event-data` in the shape of Mailgun's "Webhook Payloads" page.
fn event(event: &str, id: &str, extra: Value) -> Value {
    let mut v = json!({
        "event": event,
        "id": id,
        "timestamp": 1_765_000_000.25_f64,
        "recipient": "carol@example.com",
        "message": {"headers": {
            "message-id": "20260203192638.000be97f99f8cea1@mg.example.com",
            "to": "carol@example.com",
        }},
        "user-variables": {"idempotency_key": "k-123"},
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn parse(body: &[u8]) -> Result<Vec<FeedbackEvent>, FeedbackError> {
    mailgun::parse(KEY, body, now(), DEFAULT_MAX_AGE)
}

fn kind_of(data: Value) -> Option<FeedbackKind> {
    let body = mailgun_body(KEY, NOW, TOKEN, data);
    parse(&body).unwrap().first().map(|e| e.kind)
}

#[test]
fn each_event_reads_into_the_right_kind() {
    use FeedbackKind::*;
    let failed = |severity: &str, reason: &str| {
        event(
            "failed",
            "f",
            json!({"severity": severity, "reason": reason,
                   "delivery-status": {"code": 550, "message": "carol@example.com unknown"}}),
        )
    };
    assert_eq!(kind_of(failed("permanent", "bounce")), Some(HardBounce));
    assert_eq!(
        kind_of(failed("permanent", "suppress-bounce")),
        Some(HardBounce)
    );
    assert_eq!(kind_of(failed("temporary", "generic")), Some(SoftBounce));
    assert_eq!(
        kind_of(failed("permanent", "suppress-unsubscribe")),
        Some(Unsubscribe)
    );
    assert_eq!(
        kind_of(failed("permanent", "suppress-complaint")),
        Some(Complaint)
    );
    assert_eq!(
        kind_of(event("complained", "c", json!({}))),
        Some(Complaint)
    );
    assert_eq!(
        kind_of(event("unsubscribed", "u", json!({}))),
        Some(Unsubscribe)
    );
    assert_eq!(kind_of(event("delivered", "d", json!({}))), Some(Delivered));
    for ignored in ["accepted", "opened", "clicked", "stored", "something-new"] {
        assert_eq!(kind_of(event(ignored, "x", json!({}))), None, "{ignored}");
    }
}

#[test]
fn a_signed_hard_bounce_carries_what_winback_matches_on() {
    let data = event(
        "failed",
        "CCXMjJ7nQi2N3BPigGOdgQ",
        json!({"severity": "permanent", "reason": "bounce",
               "delivery-status": {"code": 550, "message": "5.1.1 carol@example.com: no such user"}}),
    );
    let events = parse(&mailgun_body(KEY, NOW, TOKEN, data)).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.provider, "mailgun");
    assert_eq!(e.event_id, "CCXMjJ7nQi2N3BPigGOdgQ");
    assert_eq!(e.medium, Medium::Email);
    assert_eq!(e.address.as_deref(), Some("carol@example.com"));
    assert_eq!(e.idempotency_key.as_deref(), Some("k-123"));
    // The form winback's ledger records Mailgun's id in (the send answer's `<...>`).
    assert_eq!(
        e.provider_message_id.as_deref(),
        Some("<20260203192638.000be97f99f8cea1@mg.example.com>")
    );
    assert_eq!(e.at.timestamp(), NOW);
    assert_eq!(e.at.timestamp_subsec_millis(), 250);
    // The server's message quotes the address: only severity, reason and code are kept.
    assert_eq!(e.detail.as_deref(), Some("permanent bounce 550"));
    let shown = format!("{e:?}");
    assert!(!shown.contains("carol@example.com"), "{shown}");
    assert!(shown.contains("c***@example.com"), "{shown}");
}

#[test]
fn a_wrong_key_or_a_changed_token_or_timestamp_is_refused() {
    let data = event("complained", "c1", json!({}));
    let body = mailgun_body("another-key", NOW, TOKEN, data.clone());
    assert_eq!(parse(&body), Err(FeedbackError::BadSignature));

    let mut body: Value = serde_json::from_slice(&mailgun_body(KEY, NOW, TOKEN, data)).unwrap();
    let good = body.clone();
    body["signature"]["token"] = json!("f0b5477167110d68991efc6b9f89f0a11066af27834600e123");
    assert_eq!(
        parse(body.to_string().as_bytes()),
        Err(FeedbackError::BadSignature)
    );
    let mut body = good.clone();
    body["signature"]["timestamp"] = json!((NOW + 1).to_string());
    assert_eq!(
        parse(body.to_string().as_bytes()),
        Err(FeedbackError::BadSignature)
    );
    let mut body = good.clone();
    body["signature"]["signature"] = json!("not hex");
    assert_eq!(
        parse(body.to_string().as_bytes()),
        Err(FeedbackError::BadSignature)
    );
    let mut body = good.clone();
    body.as_object_mut().unwrap().remove("signature");
    assert_eq!(
        parse(body.to_string().as_bytes()),
        Err(FeedbackError::BadSignature)
    );
    assert_eq!(parse(good.to_string().as_bytes()).map(|e| e.len()), Ok(1));
}

#[test]
fn a_subaccounts_parent_signature_is_accepted() {
    let ts = NOW.to_string();
    let body = json!({
        "signature": {
            "timestamp": ts, "token": TOKEN,
            "signature": mailgun_hex("subaccount-key", &ts, TOKEN),
            "parent-signature": mailgun_hex(KEY, &ts, TOKEN),
        },
        "event-data": event("unsubscribed", "u1", json!({})),
    });
    assert_eq!(parse(body.to_string().as_bytes()).map(|e| e.len()), Ok(1));
}

#[test]
fn a_stale_or_future_timestamp_is_refused_even_when_signed() {
    let data = event("complained", "c1", json!({}));
    let at = |ts: i64| parse(&mailgun_body(KEY, ts, TOKEN, data.clone()));
    assert!(at(NOW - 600).is_ok(), "exactly the max age is accepted");
    assert_eq!(at(NOW - 601), Err(FeedbackError::Stale));
    assert_eq!(at(NOW + 601), Err(FeedbackError::Stale));
    let body = mailgun_body(KEY, NOW - 120, TOKEN, data);
    assert_eq!(
        mailgun::parse(KEY, &body, now(), Duration::from_secs(60)),
        Err(FeedbackError::Stale)
    );
}

#[test]
fn malformed_bodies_are_named_without_their_content() {
    assert!(matches!(
        parse(b"carol@example.com"),
        Err(FeedbackError::Malformed(m)) if !m.contains("carol")
    ));
    let ts = NOW.to_string();
    let signed_only = json!({"signature": {
        "timestamp": ts, "token": TOKEN, "signature": mailgun_hex(KEY, &ts, TOKEN),
    }});
    assert!(matches!(
        parse(signed_only.to_string().as_bytes()),
        Err(FeedbackError::Malformed(_))
    ));
    let mut no_id = event("complained", "c", json!({}));
    no_id.as_object_mut().unwrap().remove("id");
    assert!(matches!(
        parse(&mailgun_body(KEY, NOW, TOKEN, no_id)),
        Err(FeedbackError::Malformed(_))
    ));
}

/// The HMAC is the one Mailgun's page describes, checked against an independent
/// implementation: Python's `hmac.new(KEY, b"1770920772" + TOKEN, hashlib.sha256).hexdigest()`.
#[test]
fn the_signature_is_hex_hmac_sha256_of_timestamp_then_token() {
    assert_eq!(
        mailgun_hex(KEY, "1770920772", TOKEN),
        "6ae8ba140d2536fd21c45a0db161e962a424ed6ca953c96a63182621e118ee13"
    );
}
