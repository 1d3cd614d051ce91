//! Twilio's messaging webhooks: `X-Twilio-Signature`, status callbacks and STOP replies.

use chrono::{DateTime, Utc};

use super::signing::twilio_signature;
use super::twilio::{self, form_params};
use super::{FeedbackError, FeedbackEvent, FeedbackKind};
use crate::message::Medium;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const URL: &str = "https://winback.example.com/events/twilio";
const SID: &str = "SM1f0e8ae6ade43cb3c0ce4525424e404f";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_765_000_000, 0).unwrap()
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A request signed as Twilio signs it, parsed.
fn signed(pairs: &[(&str, &str)]) -> Result<Vec<FeedbackEvent>, FeedbackError> {
    let p = params(pairs);
    let sig = twilio_signature(TOKEN, URL, &p);
    twilio::parse(TOKEN, URL, &p, Some(&sig), now())
}

fn status(status: &str, code: Option<&str>) -> Result<Vec<FeedbackEvent>, FeedbackError> {
    let mut p = vec![
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("MessageSid", SID),
        ("SmsSid", SID),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("To", "+15551234567"),
        ("From", "+15557654321"),
        ("ApiVersion", "2010-04-01"),
    ];
    if let Some(c) = code {
        p.push(("ErrorCode", c));
    }
    signed(&p)
}

fn kind(r: Result<Vec<FeedbackEvent>, FeedbackError>) -> Option<FeedbackKind> {
    let events = r.unwrap();
    assert!(events.len() <= 1);
    events.first().map(|e| e.kind)
}

/// The worked example of Twilio's "Webhooks security" page.
#[test]
fn twilios_published_vector() {
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    // Written out of order on purpose: the signature sorts them.
    let body = b"To=%2B18005551212&CallSid=CA1234567890ABCDE&Digits=1234&From=%2B12349013030&Caller=%2B12349013030";
    let p = form_params(body);
    assert_eq!(p[0], ("To".to_string(), "+18005551212".to_string()));
    assert_eq!(
        twilio_signature("12345", url, &p),
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    );
    // It verifies (a voice request is then no message event: malformed for this endpoint)...
    assert!(matches!(
        twilio::parse(
            "12345",
            url,
            &p,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            now()
        ),
        Err(FeedbackError::Malformed(_))
    ));
    // ...and a changed parameter or URL does not.
    let mut changed = p.clone();
    changed[2].1 = "9999".into();
    assert_eq!(
        twilio::parse(
            "12345",
            url,
            &changed,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            now()
        ),
        Err(FeedbackError::BadSignature)
    );
    let other_url = "https://mycompany.com/myapp.php?foo=1&bar=3";
    assert_eq!(
        twilio::parse(
            "12345",
            other_url,
            &p,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            now()
        ),
        Err(FeedbackError::BadSignature)
    );
}

#[test]
fn status_callbacks_read_into_kinds_by_status_and_error_code() {
    use FeedbackKind::*;
    assert_eq!(kind(status("delivered", None)), Some(Delivered));
    assert_eq!(kind(status("undelivered", Some("30005"))), Some(HardBounce));
    assert_eq!(kind(status("failed", Some("30006"))), Some(HardBounce));
    assert_eq!(kind(status("failed", Some("21211"))), Some(HardBounce));
    assert_eq!(kind(status("undelivered", Some("30003"))), Some(SoftBounce));
    assert_eq!(kind(status("undelivered", Some("30007"))), Some(SoftBounce));
    assert_eq!(kind(status("undelivered", None)), Some(SoftBounce));
    assert_eq!(kind(status("failed", Some("21610"))), Some(Unsubscribe));
    for ignored in ["queued", "sending", "sent", "accepted", "scheduled", "read"] {
        assert_eq!(kind(status(ignored, None)), None, "{ignored}");
    }
}

#[test]
fn a_status_callback_names_the_message_and_its_recipient() {
    let events = status("undelivered", Some("30005")).unwrap();
    let e = &events[0];
    assert_eq!(e.provider, "twilio");
    assert_eq!(e.event_id, format!("{SID}:undelivered"));
    assert_eq!(e.medium, Medium::Sms);
    assert_eq!(e.address.as_deref(), Some("+15551234567"));
    assert_eq!(e.provider_message_id.as_deref(), Some(SID));
    assert_eq!(e.idempotency_key, None);
    assert_eq!(e.at, now());
    assert_eq!(e.detail.as_deref(), Some("undelivered: error 30005"));
    // The same message delivered later is another event.
    let delivered = status("delivered", None).unwrap();
    assert_eq!(delivered[0].event_id, format!("{SID}:delivered"));
    let shown = format!("{events:?}");
    assert!(!shown.contains("+15551234567"), "{shown}");
    assert!(shown.contains("+1555***4567"), "{shown}");
}

#[test]
fn an_opt_out_reply_unsubscribes_the_sender_of_the_reply() {
    let inbound = |body: &str, opt_out_type: Option<&str>| {
        let mut p = vec![
            ("MessageSid", "SM99999999999999999999999999999999"),
            ("SmsSid", "SM99999999999999999999999999999999"),
            ("AccountSid", "AC00000000000000000000000000000001"),
            ("From", "+15551234567"),
            ("To", "+15557654321"),
            ("Body", body),
            ("NumMedia", "0"),
        ];
        if let Some(t) = opt_out_type {
            p.push(("OptOutType", t));
        }
        signed(&p)
    };
    let events = inbound(" stop ", None).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.kind, FeedbackKind::Unsubscribe);
    assert_eq!(e.event_id, "SM99999999999999999999999999999999");
    assert_eq!(e.address.as_deref(), Some("+15551234567"));
    assert_eq!(e.medium, Medium::Sms);
    for word in [
        "STOPALL",
        "Unsubscribe",
        "cancel",
        "END",
        "quit",
        "REVOKE",
        "optout",
    ] {
        assert_eq!(
            kind(inbound(word, None)),
            Some(FeedbackKind::Unsubscribe),
            "{word}"
        );
    }
    assert_eq!(kind(inbound("stop sending me these", None)), None);
    // A picture with no text is an incoming message too, not a malformed callback.
    assert_eq!(kind(inbound("", None)), None);
    assert_eq!(kind(inbound("Thanks!", None)), None);
    // With Advanced Opt-Out, Twilio's classification decides (custom keywords too).
    assert_eq!(
        kind(inbound("ARRET", Some("STOP"))),
        Some(FeedbackKind::Unsubscribe)
    );
    assert_eq!(kind(inbound("START", Some("START"))), None);
    assert_eq!(kind(inbound("HELP", Some("HELP"))), None);
}

#[test]
fn a_wrong_token_a_changed_parameter_or_no_header_is_refused() {
    let p = params(&[
        ("MessageSid", SID),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30005"),
        ("To", "+15551234567"),
    ]);
    let sig = twilio_signature(TOKEN, URL, &p);
    assert!(twilio::parse(TOKEN, URL, &p, Some(&sig), now()).is_ok());
    let forged = twilio_signature("another-token", URL, &p);
    assert_eq!(
        twilio::parse(TOKEN, URL, &p, Some(&forged), now()),
        Err(FeedbackError::BadSignature)
    );
    let mut changed = p.clone();
    changed[1].1 = "delivered".into();
    assert_eq!(
        twilio::parse(TOKEN, URL, &changed, Some(&sig), now()),
        Err(FeedbackError::BadSignature)
    );
    let mut added = p.clone();
    added.push(("Body".into(), "STOP".into()));
    assert_eq!(
        twilio::parse(TOKEN, URL, &added, Some(&sig), now()),
        Err(FeedbackError::BadSignature)
    );
    assert_eq!(
        twilio::parse(TOKEN, URL, &p, None, now()),
        Err(FeedbackError::BadSignature)
    );
    assert_eq!(
        twilio::parse(TOKEN, URL, &p, Some("%%%"), now()),
        Err(FeedbackError::BadSignature)
    );
}

#[test]
fn a_signed_request_without_a_message_is_malformed() {
    assert!(matches!(
        signed(&[("MessageStatus", "delivered")]),
        Err(FeedbackError::Malformed(_))
    ));
    assert!(matches!(
        signed(&[("MessageSid", SID)]),
        Err(FeedbackError::Malformed(_))
    ));
}
