//! Soft bounces: N within M days suppress the address, counted by when they happened.

use super::*;

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
