//! Complaints and unsubscribes: who and which medium each suppresses.

use super::*;

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
