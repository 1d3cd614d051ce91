//! SendGrid's Signed Event Webhook: the signature, the age, and the events read.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::sendgrid::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::signing::{sendgrid_headers, sendgrid_test_keys};
use super::{DEFAULT_MAX_AGE, FeedbackError, FeedbackKind};
use crate::message::Medium;

const NOW: i64 = 1_765_000_000;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

/// One event of each kind SendGrid documents, in the shape of the Event Webhook
/// Reference, with winback's `custom_args` (`idempotency_key`) at the top level.
fn batch() -> Vec<u8> {
    let ev = |event: &str, id: &str, email: &str, extra: serde_json::Value| {
        let mut v = json!({
            "email": email,
            "timestamp": NOW - 60,
            "event": event,
            "sg_event_id": id,
            "sg_message_id": "W86EgYT6SQKk0lRflfLRsA.filter0425p1las1-27153-5C1A1FA3-30.0",
            "smtp-id": "<W86EgYT6SQKk0lRflfLRsA@ismtpd0001p1las1.sendgrid.net>",
            "idempotency_key": format!("key-{id}"),
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let events = json!([
        ev("processed", "e01", "ann@example.com", json!({})),
        ev(
            "bounce",
            "e02",
            "bob@example.com",
            json!({
                "type": "bounce", "status": "5.1.1", "bounce_classification": "Invalid Address",
                "reason": "550 5.1.1 <bob@example.com>: Recipient address rejected",
            })
        ),
        ev(
            "bounce",
            "e03",
            "cy@example.com",
            json!({
                "type": "blocked", "status": "4.2.2", "bounce_classification": "Mailbox Unavailable",
                "reason": "452 mailbox of cy@example.com full",
            })
        ),
        ev(
            "dropped",
            "e04",
            "dee@example.com",
            json!({"reason": "Bounced Address"})
        ),
        ev(
            "dropped",
            "e05",
            "eve@example.com",
            json!({"reason": "Spam Reporting Address"})
        ),
        ev(
            "dropped",
            "e06",
            "fay@example.com",
            json!({"reason": "Unsubscribed Address"})
        ),
        ev(
            "dropped",
            "e07",
            "gus@example.com",
            json!({"reason": "Spam Content (if spam checker app enabled)"})
        ),
        ev("spamreport", "e08", "hal@example.com", json!({})),
        ev("unsubscribe", "e09", "ida@example.com", json!({})),
        ev(
            "group_unsubscribe",
            "e10",
            "jo@example.com",
            json!({"asm_group_id": 42})
        ),
        ev(
            "delivered",
            "e11",
            "kim@example.com",
            json!({"response": "250 OK"})
        ),
        ev(
            "deferred",
            "e12",
            "lu@example.com",
            json!({"response": "400 try again later", "attempt": "5"})
        ),
        ev(
            "open",
            "e13",
            "mo@example.com",
            json!({"useragent": "Mozilla/5.0"})
        ),
        ev(
            "click",
            "e14",
            "ned@example.com",
            json!({"url": "https://example.com"})
        ),
    ]);
    events.to_string().into_bytes()
}

fn signed(seed: u64, timestamp: i64, body: &[u8]) -> (String, String) {
    let keys = sendgrid_test_keys(seed);
    let [(sig_name, sig), (ts_name, ts)] = sendgrid_headers(&keys.signing_key, timestamp, body);
    assert_eq!((sig_name, ts_name), (SIGNATURE_HEADER, TIMESTAMP_HEADER));
    (sig, ts)
}

fn parse(
    seed_of_key: u64,
    sig: &str,
    ts: &str,
    body: &[u8],
) -> Result<Vec<super::FeedbackEvent>, FeedbackError> {
    let key = sendgrid::public_key(&sendgrid_test_keys(seed_of_key).public_key).unwrap();
    sendgrid::parse(&key, Some(sig), Some(ts), body, now(), DEFAULT_MAX_AGE)
}

#[test]
fn a_signed_batch_reads_into_the_events_winback_acts_on() {
    let body = batch();
    let (sig, ts) = signed(7, NOW, &body);
    let events = parse(7, &sig, &ts, &body).unwrap();
    let got: Vec<(&str, FeedbackKind, Option<&str>)> = events
        .iter()
        .map(|e| (e.event_id.as_str(), e.kind, e.address.as_deref()))
        .collect();
    use FeedbackKind::*;
    assert_eq!(
        got,
        vec![
            ("e02", HardBounce, Some("bob@example.com")),
            ("e03", SoftBounce, Some("cy@example.com")),
            ("e04", HardBounce, Some("dee@example.com")),
            ("e05", Complaint, Some("eve@example.com")),
            ("e06", Unsubscribe, Some("fay@example.com")),
            ("e08", Complaint, Some("hal@example.com")),
            ("e09", Unsubscribe, Some("ida@example.com")),
            ("e10", Unsubscribe, Some("jo@example.com")),
            ("e11", Delivered, Some("kim@example.com")),
        ]
    );
    let bounce = &events[0];
    assert_eq!(bounce.provider, "sendgrid");
    assert_eq!(bounce.medium, Medium::Email);
    assert_eq!(bounce.idempotency_key.as_deref(), Some("key-e02"));
    // The X-Message-Id winback recorded: sg_message_id up to its first '.'.
    assert_eq!(
        bounce.provider_message_id.as_deref(),
        Some("W86EgYT6SQKk0lRflfLRsA")
    );
    assert_eq!(bounce.at.timestamp(), NOW - 60);
    assert_eq!(
        bounce.detail.as_deref(),
        Some("bounce Invalid Address 5.1.1")
    );
    assert_eq!(
        events[1].detail.as_deref(),
        Some("blocked Mailbox Unavailable 4.2.2")
    );
    assert_eq!(
        events[3].detail.as_deref(),
        Some("dropped: Spam Reporting Address")
    );
    assert_eq!(events[7].detail.as_deref(), Some("unsubscribe group 42"));
    for e in &events {
        let detail = e.detail.as_deref().unwrap_or("");
        assert!(!detail.contains('@'), "an address in {detail}");
    }
}

#[test]
fn addresses_are_masked_in_debug_output() {
    let body = batch();
    let (sig, ts) = signed(7, NOW, &body);
    let events = parse(7, &sig, &ts, &body).unwrap();
    let shown = format!("{events:?}");
    assert!(!shown.contains("bob@example.com"), "{shown}");
    assert!(shown.contains("b***@example.com"), "{shown}");
}

#[test]
fn a_signature_from_another_key_is_refused() {
    let body = batch();
    let (sig, ts) = signed(8, NOW, &body);
    assert_eq!(parse(7, &sig, &ts, &body), Err(FeedbackError::BadSignature));
}

#[test]
fn a_body_changed_after_signing_is_refused() {
    let body = batch();
    let (sig, ts) = signed(7, NOW, &body);
    let changed = String::from_utf8(body)
        .unwrap()
        .replace("\"bounce\"", "\"delivered\"")
        .into_bytes();
    assert_eq!(
        parse(7, &sig, &ts, &changed),
        Err(FeedbackError::BadSignature)
    );
    // The timestamp is signed too: moving it forward breaks the signature.
    let later = (NOW + 1).to_string();
    assert_eq!(
        parse(7, &sig, &later, &batch()),
        Err(FeedbackError::BadSignature)
    );
}

#[test]
fn missing_or_garbled_headers_are_refused() {
    let body = batch();
    let (sig, ts) = signed(7, NOW, &body);
    let key = sendgrid::public_key(&sendgrid_test_keys(7).public_key).unwrap();
    let max = DEFAULT_MAX_AGE;
    assert_eq!(
        sendgrid::parse(&key, None, Some(&ts), &body, now(), max),
        Err(FeedbackError::BadSignature)
    );
    assert_eq!(
        sendgrid::parse(&key, Some(&sig), None, &body, now(), max),
        Err(FeedbackError::BadSignature)
    );
    assert_eq!(
        parse(7, "not base64!", &ts, &body),
        Err(FeedbackError::BadSignature)
    );
    assert_eq!(
        parse(7, "AAAA", &ts, &body),
        Err(FeedbackError::BadSignature)
    );
}

#[test]
fn a_stale_or_future_timestamp_is_refused_even_when_signed() {
    let body = batch();
    let ten_min = 600;
    let (sig, ts) = signed(7, NOW - ten_min, &body);
    assert!(
        parse(7, &sig, &ts, &body).is_ok(),
        "exactly the max age is accepted"
    );
    let (sig, ts) = signed(7, NOW - ten_min - 1, &body);
    assert_eq!(parse(7, &sig, &ts, &body), Err(FeedbackError::Stale));
    let (sig, ts) = signed(7, NOW + ten_min + 1, &body);
    assert_eq!(parse(7, &sig, &ts, &body), Err(FeedbackError::Stale));
    // A shorter max age is honoured.
    let (sig, ts) = signed(7, NOW - 120, &body);
    let key = sendgrid::public_key(&sendgrid_test_keys(7).public_key).unwrap();
    let short = Duration::from_secs(60);
    assert_eq!(
        sendgrid::parse(&key, Some(&sig), Some(&ts), &body, now(), short),
        Err(FeedbackError::Stale)
    );
}

#[test]
fn a_signed_body_that_is_not_an_event_array_is_malformed() {
    for body in [&b"{\"event\":\"bounce\"}"[..], b"[1, 2]", b"not json"] {
        let (sig, ts) = signed(7, NOW, body);
        assert!(
            matches!(parse(7, &sig, &ts, body), Err(FeedbackError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let (sig, ts) = signed(7, NOW, b"[]");
    assert_eq!(parse(7, &sig, &ts, b"[]"), Ok(vec![]));
}

#[test]
fn an_event_without_sg_event_id_gets_a_stable_key() {
    let body = json!([{"email": "x@example.com", "timestamp": NOW, "event": "spamreport"}])
        .to_string()
        .into_bytes();
    let (sig, ts) = signed(7, NOW, &body);
    let first = parse(7, &sig, &ts, &body).unwrap();
    let again = parse(7, &sig, &ts, &body).unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].event_id.starts_with("sha256:"));
    assert_eq!(first[0].event_id, again[0].event_id);
    assert_eq!(first[0].idempotency_key, None);
    assert_eq!(first[0].provider_message_id, None);
}
