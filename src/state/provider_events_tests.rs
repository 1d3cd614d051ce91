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
fn soft_bounces_suppress_at_the_limit_within_the_window() {
    let (_dir, state) = temp_state();
    let a = "soft-a@example.com";
    let soft = |id: &str, at| to(ev(FeedbackKind::SoftBounce, id, at), a);
    // Days 1 and 3: two, under the limit of 3.
    for (id, day) in [("a1", 1), ("a2", 3)] {
        assert_eq!(
            state
                .record_provider_events(&[soft(id, t(day, 0))], POLICY)
                .unwrap(),
            recorded(1, 0, 0),
            "{id}"
        );
    }
    assert!(state.suppressions().unwrap().is_empty());
    // A repeat of the second does not count as a third.
    assert_eq!(
        state
            .record_provider_events(&[soft("a2", t(3, 0))], POLICY)
            .unwrap(),
        recorded(0, 1, 0)
    );
    assert!(state.suppressions().unwrap().is_empty());
    // Day 6: the third within 7 days (days 1, 3, 6) suppresses the address.
    assert_eq!(
        state
            .record_provider_events(&[soft("a3", t(6, 0))], POLICY)
            .unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(
        rows(&state),
        [row(
            None,
            Some(Medium::Email),
            Some(a),
            "soft_bounces",
            "sendgrid",
            None,
        )]
    );
    // A fourth adds nothing: already suppressed.
    assert_eq!(
        state
            .record_provider_events(&[soft("a4", t(7, 0))], POLICY)
            .unwrap(),
        recorded(1, 0, 0)
    );

    // Another address, three soft bounces over more than 7 days (days 1, 5, 10: no 7 days
    // hold three): nothing.
    let b = "soft-b@example.com";
    let spread: Vec<_> = [("b1", 1), ("b2", 5), ("b3", 10)]
        .into_iter()
        .map(|(id, day)| to(ev(FeedbackKind::SoftBounce, id, t(day, 0)), b))
        .collect();
    assert_eq!(
        state.record_provider_events(&spread, POLICY).unwrap(),
        recorded(3, 0, 0)
    );
    assert_eq!(state.suppressions().unwrap().len(), 1);
    // The window holds its ends: days 5, 10 and 12 (7 days from 5 to 12) are three.
    assert_eq!(
        state
            .record_provider_events(
                &[to(ev(FeedbackKind::SoftBounce, "b4", t(12, 0)), b)],
                POLICY
            )
            .unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(rows(&state)[1].2.as_deref(), Some(b));
}

#[test]
fn soft_bounces_count_per_address_and_follow_the_policy() {
    let (_dir, state) = temp_state();
    // Three soft bounces on one day, of three addresses: one each, nothing suppressed.
    let three: Vec<_> = (0..3)
        .map(|i| {
            to(
                ev(FeedbackKind::SoftBounce, &format!("x{i}"), t(1, i)),
                &format!("x{i}@example.com"),
            )
        })
        .collect();
    assert_eq!(
        state.record_provider_events(&three, POLICY).unwrap(),
        recorded(3, 0, 0)
    );
    // A stricter policy: 2 in 1 day. x0 again 23 hours later is its second within a day.
    let strict = SoftBouncePolicy { limit: 2, days: 1 };
    let again = to(
        ev(FeedbackKind::SoftBounce, "x0-2", t(1, 23)),
        "x0@example.com",
    );
    assert_eq!(
        state.record_provider_events(&[again], strict).unwrap(),
        recorded(1, 0, 1)
    );
    // x1 again 2 days later: its first within a day.
    let later = to(
        ev(FeedbackKind::SoftBounce, "x1-2", t(3, 1)),
        "x1@example.com",
    );
    assert_eq!(
        state.record_provider_events(&[later], strict).unwrap(),
        recorded(1, 0, 0)
    );
    assert_eq!(rows(&state).len(), 1);
    assert_eq!(rows(&state)[0].2.as_deref(), Some("x0@example.com"));
}

/// Providers do not send events in the order they happened (SendGrid batches, retries of
/// a failed delivery of the webhook): the window is about when they happened.
#[test]
fn soft_bounces_out_of_order_count_by_when_they_happened() {
    let (_dir, state) = temp_state();
    // Days 10, 5, 1 (received latest first): no 7 days hold three.
    let c = "late-c@example.com";
    let spread: Vec<_> = [("c10", 10), ("c5", 5), ("c1", 1)]
        .into_iter()
        .map(|(id, day)| to(ev(FeedbackKind::SoftBounce, id, t(day, 0)), c))
        .collect();
    assert_eq!(
        state.record_provider_events(&spread, POLICY).unwrap(),
        recorded(3, 0, 0)
    );
    assert!(state.suppressions().unwrap().is_empty());
    // Days 6, 1, 3 (received in that order): three within days 1 to 6, suppressed when
    // the last of them arrives.
    let d = "late-d@example.com";
    let close: Vec<_> = [("d6", 6), ("d1", 1), ("d3", 3)]
        .into_iter()
        .map(|(id, day)| to(ev(FeedbackKind::SoftBounce, id, t(day, 0)), d))
        .collect();
    assert_eq!(
        state.record_provider_events(&close[..2], POLICY).unwrap(),
        recorded(2, 0, 0)
    );
    assert_eq!(
        state.record_provider_events(&close[2..], POLICY).unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(rows(&state)[0].2.as_deref(), Some(d));
}

#[test]
fn a_complaint_suppresses_the_customer_on_every_medium_and_the_address() {
    let (_dir, state) = temp_state();
    let m = sent(&state, 6, Medium::Email, "mail", "sg-6");
    let complaint = to(
        by_key(ev(FeedbackKind::Complaint, "sp6", t(4, 0)), &m),
        &email_of(6),
    );
    assert_eq!(
        state.record_provider_events(&[complaint], POLICY).unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(
        rows(&state),
        [row(
            Some("c6"),
            None,
            Some(&email_of(6)),
            "complaint",
            "sendgrid",
            Some("quick"),
        )]
    );
    assert_eq!(
        state.provider_status(&m.idempotency_key).unwrap(),
        None,
        "a complaint says nothing of delivery"
    );
    let index = next_run_index(&state);
    // The customer, on SMS too, whatever the number; and the address, whoever has it.
    assert_eq!(
        index.blocks("c6", Some(&phone_of(6)), Medium::Sms),
        Some("complaint")
    );
    assert_eq!(index.blocks("c6", None, Medium::Email), Some("complaint"));
    assert_eq!(
        index.blocks("c99", Some(&email_of(6)), Medium::Email),
        Some("complaint")
    );
    assert_eq!(index.blocks("c7", Some(&email_of(7)), Medium::Email), None);
}

#[test]
fn a_complaint_about_no_ledger_row_suppresses_the_address_on_every_medium() {
    let (_dir, state) = temp_state();
    let complaint = to(
        ev(FeedbackKind::Complaint, "sp-x", t(4, 0)),
        "Stranger@Example.com",
    );
    assert_eq!(
        state.record_provider_events(&[complaint], POLICY).unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(
        rows(&state),
        [row(
            None,
            None,
            Some("stranger@example.com"),
            "complaint",
            "sendgrid",
            None,
        )]
    );
}

#[test]
fn an_unsubscribe_suppresses_the_customer_on_that_medium_only() {
    let (_dir, state) = temp_state();
    // SendGrid's unsubscribe (a group, the list link), echoing our key.
    let mail = sent(&state, 8, Medium::Email, "mail", "sg-8");
    let unsub = by_key(ev(FeedbackKind::Unsubscribe, "u8", t(5, 0)), &mail);
    assert_eq!(
        state.record_provider_events(&[unsub], POLICY).unwrap(),
        recorded(1, 0, 1)
    );
    assert_eq!(
        rows(&state),
        [row(
            Some("c8"),
            Some(Medium::Email),
            Some(&email_of(8)),
            "unsubscribed",
            "sendgrid",
            Some("quick"),
        )]
    );
    assert_eq!(state.provider_status(&mail.idempotency_key).unwrap(), None);
    let index = next_run_index(&state);
    assert_eq!(
        index.blocks("c8", Some(&email_of(8)), Medium::Email),
        Some("unsubscribed")
    );
    assert_eq!(
        index.blocks("c8", Some(&email_of(80)), Medium::Email),
        Some("unsubscribed"),
        "the customer, whatever their address"
    );
    assert_eq!(
        index.blocks("c8", Some(&phone_of(8)), Medium::Sms),
        None,
        "SMS is another medium"
    );
}

#[test]
fn twilio_unsubscribes_by_status_callback_and_by_stop_reply() {
    let (_dir, state) = temp_state();
    let sms = sent(&state, 9, Medium::Sms, "sms", "SM0009");
    // Error 21610 on our message: the callback names our MessageSid and the number.
    let refused = FeedbackEvent {
        provider: "twilio",
        medium: Medium::Sms,
        provider_message_id: Some("SM0009".into()),
        ..to(
            ev(FeedbackKind::Unsubscribe, "SM0009:undelivered", t(5, 0)),
            &phone_of(9),
        )
    };
    // A STOP reply: the inbound message's own sid, which no ledger row has.
    let stop = FeedbackEvent {
        provider: "twilio",
        medium: Medium::Sms,
        provider_message_id: Some("SMinbound".into()),
        ..to(
            ev(FeedbackKind::Unsubscribe, "SMinbound", t(5, 1)),
            "+15550000010",
        )
    };
    assert_eq!(
        state
            .record_provider_events(&[refused, stop], POLICY)
            .unwrap(),
        recorded(2, 0, 2)
    );
    assert_eq!(
        rows(&state),
        [
            row(
                Some("c9"),
                Some(Medium::Sms),
                Some(&phone_of(9)),
                "unsubscribed",
                "twilio",
                Some("quick"),
            ),
            row(
                None,
                Some(Medium::Sms),
                Some("+15550000010"),
                "unsubscribed",
                "twilio",
                None,
            ),
        ]
    );
    assert_eq!(state.provider_status(&sms.idempotency_key).unwrap(), None);
    let index = next_run_index(&state);
    assert_eq!(
        index.blocks("c9", Some(&phone_of(9)), Medium::Sms),
        Some("unsubscribed")
    );
    assert_eq!(index.blocks("c9", Some(&email_of(9)), Medium::Email), None);
    assert_eq!(
        index.blocks("c10", Some("+15550000010"), Medium::Sms),
        Some("unsubscribed")
    );
    assert_eq!(
        index.blocks("c10", Some(&email_of(10)), Medium::Email),
        None
    );
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
