use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::campaign::suppress::UnsubscribeIndex;
use crate::campaign::{Unsubscribe, suppression_reason};
use crate::channels::test_support::{email_of, message, phone_of, temp_state};
use crate::message::{Medium, Message, SendState};
use crate::state::LedgerOutcome;

const POLICY: SoftBouncePolicy = SoftBouncePolicy { limit: 3, days: 7 };

/// Noon on 2025-03-`day` (UTC), plus `hours`.
fn t(day: u32, hours: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, day, 12, 0, 0).unwrap() + chrono::Duration::hours(hours.into())
}

/// A SendGrid (e-mail) event with no address, key or message id: tests fill in what they need.
fn ev(kind: FeedbackKind, event_id: &str, at: DateTime<Utc>) -> FeedbackEvent {
    FeedbackEvent {
        provider: "sendgrid",
        event_id: event_id.to_string(),
        kind,
        medium: Medium::Email,
        address: None,
        idempotency_key: None,
        provider_message_id: None,
        at,
        detail: None,
    }
}

fn by_key(e: FeedbackEvent, m: &Message) -> FeedbackEvent {
    FeedbackEvent {
        idempotency_key: Some(m.idempotency_key.clone()),
        ..e
    }
}

fn to(e: FeedbackEvent, address: &str) -> FeedbackEvent {
    FeedbackEvent {
        address: Some(address.to_string()),
        ..e
    }
}

/// Message `i` of campaign "quick" reserved and accepted by the provider as `pmid`: a
/// `sends` row in state `delivered` (accepted), provider_status still unknown.
fn sent(state: &State, i: usize, medium: Medium, channel: &str, pmid: &str) -> Message {
    let m = message(i, medium, channel, "quick");
    assert_eq!(
        state
            .reserve(std::slice::from_ref(&m), false)
            .unwrap()
            .len(),
        1
    );
    state
        .record(&[LedgerOutcome {
            idempotency_key: m.idempotency_key.clone(),
            state: SendState::Delivered,
            provider_message_id: Some(pmid.to_string()),
            reason: None,
            suppression: None,
        }])
        .unwrap();
    m
}

fn recorded(new: u32, repeated: u32, suppressed: u32) -> EventsRecorded {
    EventsRecorded {
        new,
        repeated,
        suppressed,
    }
}

/// The suppressions without their recording time: (customer, medium, address, reason,
/// source, campaign).
type Row = (
    Option<String>,
    Option<Medium>,
    Option<String>,
    String,
    String,
    Option<String>,
);

fn rows(state: &State) -> Vec<Row> {
    state
        .suppressions()
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.customer_id,
                s.medium,
                s.address,
                s.reason,
                s.source,
                s.campaign,
            )
        })
        .collect()
}

fn row(
    customer: Option<&str>,
    medium: Option<Medium>,
    address: Option<&str>,
    reason: &str,
    source: &str,
    campaign: Option<&str>,
) -> Row {
    (
        customer.map(String::from),
        medium,
        address.map(String::from),
        reason.to_string(),
        source.to_string(),
        campaign.map(String::from),
    )
}

/// The idempotency key `provider_events` recorded for an event (the ledger row it matched).
fn matched_key(state: &State, provider: &str, event_id: &str) -> Option<String> {
    state
        .conn()
        .query_row(
            "SELECT idempotency_key FROM provider_events WHERE provider = ?1 AND event_id = ?2",
            [provider, event_id],
            |r| r.get(0),
        )
        .unwrap()
}

/// What the next run's planning would block, built from the recorded suppressions the way
/// `pipeline::plan` does.
fn next_run_index(state: &State) -> UnsubscribeIndex {
    let rows: Vec<Unsubscribe> = state
        .suppressions()
        .unwrap()
        .into_iter()
        .map(|s| Unsubscribe {
            customer_id: s.customer_id,
            address: s.address,
            medium: s.medium,
            at: s.at,
            reason: suppression_reason(&s.reason),
        })
        .collect();
    UnsubscribeIndex::new(&rows)
}

#[test]
fn an_event_repeated_twenty_times_is_recorded_and_acted_on_once() {
    let (_dir, state) = temp_state();
    let m = sent(&state, 0, Medium::Email, "mail", "sg-0");
    let bounce = to(
        by_key(ev(FeedbackKind::HardBounce, "sg-ev-1", t(2, 0)), &m),
        &email_of(0),
    );
    // 10 copies in one batch (the first new, 9 repeats within the same transaction) ...
    let batch = vec![bounce.clone(); 10];
    assert_eq!(
        state.record_provider_events(&batch, POLICY).unwrap(),
        recorded(1, 9, 1)
    );
    // ... and 10 more, one request each: all repeats.
    let mut total = recorded(1, 9, 1);
    for _ in 0..10 {
        let r = state
            .record_provider_events(std::slice::from_ref(&bounce), POLICY)
            .unwrap();
        assert_eq!(r, recorded(0, 1, 0));
        total.new += r.new;
        total.repeated += r.repeated;
        total.suppressed += r.suppressed;
    }
    assert_eq!(total, recorded(1, 19, 1));
    assert_eq!(state.suppressions().unwrap().len(), 1);
    let n: i64 = state
        .conn()
        .query_row("SELECT count(*) FROM provider_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    // The same event id from another provider is another event.
    let other = FeedbackEvent {
        provider: "mailgun",
        ..bounce
    };
    assert_eq!(
        state.record_provider_events(&[other], POLICY).unwrap(),
        recorded(1, 0, 1),
        "a new event; its suppression has another source"
    );
    assert_eq!(state.suppressions().unwrap().len(), 2);
}

#[test]
fn a_hard_bounce_by_key_marks_the_row_bounced_and_suppresses_the_address() {
    let (_dir, state) = temp_state();
    let m0 = sent(&state, 0, Medium::Email, "mail", "sg-0");
    let m1 = sent(&state, 1, Medium::Email, "mail", "sg-1");
    let (k0, k1) = (m0.idempotency_key.as_str(), m1.idempotency_key.as_str());
    assert_eq!(k0, "quick-1-c0-mail-2025-03-01");
    assert_eq!(
        state.provider_status(k0).unwrap(),
        None,
        "accepted, no word yet"
    );
    assert_eq!(state.provider_status("no-such-key").unwrap(), None);

    // The address as the provider spells it: blanks and capitals are not another address.
    let bounce = to(
        by_key(ev(FeedbackKind::HardBounce, "b0", t(2, 0)), &m0),
        "  Customer00000@Example.COM ",
    );
    assert_eq!(
        state.record_provider_events(&[bounce], POLICY).unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(
        state.provider_status(k0).unwrap().as_deref(),
        Some("bounced")
    );
    assert_eq!(matched_key(&state, "sendgrid", "b0").as_deref(), Some(k0));
    // The address is gone, not the customer: no customer id, this medium only.
    assert_eq!(
        rows(&state),
        [row(
            None,
            Some(Medium::Email),
            Some("customer00000@example.com"),
            "hard_bounce",
            "sendgrid",
            Some("quick"),
        )]
    );

    // A delivery reported after the bounce (another event) does not undo it.
    let late = by_key(ev(FeedbackKind::Delivered, "d0", t(2, 1)), &m0);
    assert_eq!(
        state.record_provider_events(&[late], POLICY).unwrap(),
        recorded(1, 0, 0)
    );
    assert_eq!(
        state.provider_status(k0).unwrap().as_deref(),
        Some("bounced")
    );

    // Another row's delivery is recorded, and a bounce after a delivery wins.
    let delivered = by_key(ev(FeedbackKind::Delivered, "d1", t(2, 0)), &m1);
    assert_eq!(
        state.record_provider_events(&[delivered], POLICY).unwrap(),
        recorded(1, 0, 0)
    );
    assert_eq!(
        state.provider_status(k1).unwrap().as_deref(),
        Some("delivered")
    );
    assert_eq!(
        state.suppressions().unwrap().len(),
        1,
        "a delivery suppresses nothing"
    );
    let bounce1 = by_key(ev(FeedbackKind::HardBounce, "b1", t(2, 5)), &m1);
    assert_eq!(
        state.record_provider_events(&[bounce1], POLICY).unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(
        state.provider_status(k1).unwrap().as_deref(),
        Some("bounced")
    );
    // No address in the event: the ledger row's.
    assert_eq!(
        rows(&state)[1],
        row(
            None,
            Some(Medium::Email),
            Some(&email_of(1)),
            "hard_bounce",
            "sendgrid",
            Some("quick"),
        )
    );
    // The ledger row itself is left as it was.
    let r0 = state.send_row(k0).unwrap().unwrap();
    assert_eq!(r0.state, SendState::Delivered);
    assert_eq!(r0.provider_status.as_deref(), Some("bounced"));
}

#[test]
fn an_unknown_key_falls_back_to_the_provider_message_id() {
    let (_dir, state) = temp_state();
    let m = sent(&state, 3, Medium::Email, "mail", "sg-3");
    let e = FeedbackEvent {
        idempotency_key: Some("not-in-the-ledger".into()),
        provider_message_id: Some("sg-3".into()),
        ..ev(FeedbackKind::Delivered, "d3", t(2, 0))
    };
    assert_eq!(
        state.record_provider_events(&[e], POLICY).unwrap(),
        recorded(1, 0, 0)
    );
    assert_eq!(
        state
            .provider_status(&m.idempotency_key)
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
}

#[test]
fn twilio_events_match_the_ledger_by_message_sid() {
    let (_dir, state) = temp_state();
    let m4 = sent(&state, 4, Medium::Sms, "sms", "SM0004");
    let m5 = sent(&state, 5, Medium::Sms, "sms", "SM0005");
    let tw = |kind, id: &str, sid: &str| FeedbackEvent {
        provider: "twilio",
        medium: Medium::Sms,
        provider_message_id: Some(sid.to_string()),
        ..ev(kind, id, t(3, 0))
    };
    let r = state
        .record_provider_events(
            &[
                tw(FeedbackKind::HardBounce, "SM0004:undelivered", "SM0004"),
                tw(FeedbackKind::Delivered, "SM0005:delivered", "SM0005"),
            ],
            POLICY,
        )
        .unwrap();
    assert_eq!(r, recorded(2, 0, 1));
    assert_eq!(
        state
            .provider_status(&m4.idempotency_key)
            .unwrap()
            .as_deref(),
        Some("bounced")
    );
    assert_eq!(
        state
            .provider_status(&m5.idempotency_key)
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
    assert_eq!(
        matched_key(&state, "twilio", "SM0004:undelivered").as_deref(),
        Some(m4.idempotency_key.as_str())
    );
    // The phone number comes from the ledger row (the callback carried none).
    assert_eq!(
        rows(&state),
        [row(
            None,
            Some(Medium::Sms),
            Some(&phone_of(4)),
            "hard_bounce",
            "twilio",
            Some("quick"),
        )]
    );
    // A message id is matched on its own medium only: an e-mail event naming "SM0005"
    // is about no ledger row, and without an address it suppresses nothing.
    let email = FeedbackEvent {
        provider_message_id: Some("SM0005".into()),
        ..ev(FeedbackKind::HardBounce, "e-SM0005", t(3, 1))
    };
    assert_eq!(
        state.record_provider_events(&[email], POLICY).unwrap(),
        recorded(1, 0, 0)
    );
    assert_eq!(matched_key(&state, "sendgrid", "e-SM0005"), None);
    assert_eq!(
        state
            .provider_status(&m5.idempotency_key)
            .unwrap()
            .as_deref(),
        Some("delivered")
    );
    assert_eq!(state.suppressions().unwrap().len(), 1);
}

#[test]
fn an_event_about_no_ledger_row_still_suppresses_the_address() {
    let (_dir, state) = temp_state();
    // Sent by some other system (or a ledger pruned since): no row has this key or id.
    let bounce = FeedbackEvent {
        idempotency_key: Some("elsewhere-1".into()),
        provider_message_id: Some("sg-elsewhere".into()),
        ..to(
            ev(FeedbackKind::HardBounce, "bx", t(6, 0)),
            " Gone@Example.com",
        )
    };
    assert_eq!(
        state.record_provider_events(&[bounce], POLICY).unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(matched_key(&state, "sendgrid", "bx"), None);
    assert_eq!(state.provider_status("elsewhere-1").unwrap(), None);
    assert_eq!(
        rows(&state),
        [row(
            None,
            Some(Medium::Email),
            Some("gone@example.com"),
            "hard_bounce",
            "sendgrid",
            None,
        )]
    );
    // The next run blocks whichever customer now has that address, by e-mail only.
    let index = next_run_index(&state);
    assert_eq!(
        index.blocks("c1", Some("gone@example.com"), Medium::Email),
        Some("hard_bounce")
    );
    assert_eq!(index.blocks("c1", Some("+15550000001"), Medium::Sms), None);
    // An unsubscribe with neither a ledger row nor an address has nothing to suppress.
    let nothing = ev(FeedbackKind::Unsubscribe, "ux", t(6, 1));
    assert_eq!(
        state.record_provider_events(&[nothing], POLICY).unwrap(),
        recorded(1, 0, 0)
    );
    assert_eq!(state.suppressions().unwrap().len(), 1);
}

#[path = "provider_events_soft_bounce_tests.rs"]
mod soft_bounces;

#[path = "provider_events_suppression_tests.rs"]
mod suppression;
