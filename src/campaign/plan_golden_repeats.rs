//! The golden cases of `repeat_every_days` (keep in touch with the long lost): after the
//! last step, the last step again every N days, each repeat its own step number and key.

use super::*;
use SendState::Suppressed;

/// A long-term campaign: e-mails on day 0 and day 21, then the day-21 one every 90 days.
fn long_term() -> World {
    let toml = campaign_toml("long", 10, 0.0, None, &[(0, "email"), (21, "email")]).replacen(
        "holdout_share = 0\n",
        "holdout_share = 0\nrepeat_every_days = 90\n",
        1,
    );
    assert!(toml.contains("repeat_every_days = 90"), "{toml}");
    World::new(&toml)
}

/// Every lapse entered on 2026-01-01. c1 got step 1 on 01-01 and step 2 on 01-22 (day
/// 21). Its first repeat (step 3) is due on entry + 21 + 90 = 2026-04-22 (Jan 1 + 111
/// days: 30 to Jan 31, 28 to Feb 28, 31 to Mar 31, 22 to Apr 22), which is also 90 days
/// after step 2's night (01-22 + 9 + 28 + 31 + 22): not on 04-21, sent on 04-22. The
/// second repeat (step 4) is due 90 days after that one went out: 04-22 + 8 + 31 + 30 + 21
/// = 07-21 (= entry + 201): not on 07-20, sent on 07-21.
/// c2's step 2 went out late, on 03-01: its repeat waits 90 days after it, 03-01 + 30 +
/// 30 + 30 = 05-30, not entry + 111 (04-22).
/// c3 bought on 02-10, after its step 2 (01-22): the repeat is `purchased` on 04-22 (only
/// if no purchase, like the step it repeats), and that ends the sequence.
/// Nights run every day from 04-20 to 07-22; each night's plan is recorded as sent.
#[test]
fn golden_long_lost_customer_is_contacted_again_after_the_cadence_and_not_before() {
    let mut w = long_term();
    for id in ["c1", "c2", "c3"] {
        w.add("long", id, "2026-01-01", 1.0);
        w.past(
            "long",
            1,
            id,
            "email",
            "2026-01-01",
            SendState::Delivered,
            "2026-01-01",
        );
    }
    for (id, night) in [
        ("c1", "2026-01-22"),
        ("c2", "2026-03-01"),
        ("c3", "2026-01-22"),
    ] {
        w.past(
            "long",
            2,
            id,
            "email",
            "2026-01-01",
            SendState::Delivered,
            night,
        );
    }
    w.last_purchase.insert("c1".into(), d("2025-06-01"));
    w.last_purchase.insert("c2".into(), d("2025-06-01"));
    w.last_purchase.insert("c3".into(), d("2026-02-10"));

    let mut sent_on = Vec::new();
    let mut decided_on = Vec::new();
    let mut night = d("2026-04-20");
    while night <= d("2026-07-22") {
        w.as_of = night;
        w.now = night.and_hms_opt(12, 0, 0).unwrap().and_utc();
        let p = w.plan();
        for m in &p.send {
            sent_on.push((m.message.customer_id.clone(), m.message.step, night));
        }
        for x in &p.decisions {
            decided_on.push((
                x.customer_id.clone(),
                x.step,
                x.state,
                x.reason.clone(),
                night,
            ));
        }
        w.record(&p);
        night = night.succ_opt().unwrap();
    }
    assert_eq!(
        sent_on,
        vec![
            ("c1".to_string(), 3, d("2026-04-22")),
            ("c2".to_string(), 3, d("2026-05-30")),
            ("c1".to_string(), 4, d("2026-07-21")),
        ]
    );
    assert_eq!(
        decided_on,
        vec![(
            "c3".to_string(),
            3,
            Suppressed,
            "purchased".to_string(),
            d("2026-04-22")
        )]
    );
}

/// Each repeat is its own message: step 3 and step 4 of one entry have different
/// idempotency keys, made like any step's (campaign, step number, customer, channel,
/// entry date), and the repeat is rendered from the last step's templates.
#[test]
fn golden_each_repeat_has_its_own_idempotency_key() {
    let mut w = long_term();
    w.add("long", "c1", "2026-01-01", 1.0);
    w.past(
        "long",
        1,
        "c1",
        "email",
        "2026-01-01",
        SendState::Delivered,
        "2026-01-01",
    );
    w.past(
        "long",
        2,
        "c1",
        "email",
        "2026-01-01",
        SendState::Delivered,
        "2026-01-22",
    );
    w.past(
        "long",
        3,
        "c1",
        "email",
        "2026-01-01",
        SendState::Delivered,
        "2026-04-22",
    );
    w.as_of = d("2026-07-21");
    w.now = at("2026-07-21T12:00:00Z");
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("long", 4, "c1")]));
    let m = &p.send[0].message;
    let key = idempotency_key("long", 4, "c1", "email", d("2026-01-01"));
    assert_eq!(m.idempotency_key, key);
    assert_ne!(
        key,
        idempotency_key("long", 3, "c1", "email", d("2026-01-01"))
    );
    let rendered = p.send[0].clone().render().unwrap();
    assert_eq!(rendered.subject.as_deref(), Some("We miss you"));
    // Without repeat_every_days the sequence ends with its last step.
    w.campaigns[0].repeat_every_days = None;
    assert!(w.plan().send.is_empty());
}
