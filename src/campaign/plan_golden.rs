//! The golden cases (hand-worked expectations) of the planner.

use super::*;
use SendState::{Deferred, Holdout, Suppressed};

const QUICK: &[(u32, &str)] = &[(0, "email"), (3, "sms"), (10, "email")];

/// Each suppression reason, on step 1 (e-mail) of a campaign without holdout.
#[test]
fn golden_suppression_reasons() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, QUICK));
    let entry = "2026-06-04";
    for id in [
        "ok",
        "no_row",
        "null_consent",
        "refused",
        "unsub_id",
        "unsub_addr",
        "unsub_sms_only",
        "no_email",
        "bad_email",
        "capped",
        "cap_expired",
    ] {
        w.add("quick", id, entry, 10.0);
    }
    w.contacts.remove("no_row");
    w.contacts.get_mut("null_consent").unwrap().consent_email = None;
    w.contacts.get_mut("refused").unwrap().consent_email = Some(false);
    w.contacts.get_mut("no_email").unwrap().email = Some("  ".into());
    w.contacts.get_mut("bad_email").unwrap().email = Some("bad.example.com".into());
    let unsub = |c: Option<&str>, a: Option<&str>, m| Unsubscribe {
        customer_id: c.map(String::from),
        address: a.map(String::from),
        medium: m,
        at: at("2026-05-01T00:00:00Z"),
        reason: "unsubscribed",
    };
    w.unsubscribes = vec![
        unsub(Some("unsub_id"), None, None),
        // the address differs in case and blanks from the contact's: still a match
        unsub(None, Some(" UNSUB_ADDR@Example.com"), Some(Medium::Email)),
        unsub(Some("unsub_sms_only"), None, Some(Medium::Sms)),
    ];
    // Another campaign e-mailed `capped` 3 days ago (in the 7-day window) and
    // `cap_expired` 7 days ago (2026-05-28 is not after 2026-06-04 - 7 days).
    w.past(
        "amends",
        1,
        "capped",
        "email",
        "2026-05-30",
        SendState::Delivered,
        "2026-06-01",
    );
    w.past(
        "amends",
        1,
        "cap_expired",
        "email",
        "2026-05-20",
        SendState::Delivered,
        "2026-05-28",
    );

    let p = w.plan();
    assert_eq!(
        sent(&p),
        BTreeSet::from([
            s("quick", 1, "ok"),
            s("quick", 1, "unsub_sms_only"),
            s("quick", 1, "cap_expired")
        ])
    );
    let expect = BTreeMap::from([
        (
            "bad_email".to_string(),
            x("quick", 1, Suppressed, "invalid_address"),
        ),
        (
            "capped".to_string(),
            x("quick", 1, Deferred, "frequency_cap"),
        ),
        (
            "no_email".to_string(),
            x("quick", 1, Suppressed, "missing_address"),
        ),
        (
            "no_row".to_string(),
            x("quick", 1, Suppressed, "no_consent"),
        ),
        (
            "null_consent".to_string(),
            x("quick", 1, Suppressed, "no_consent"),
        ),
        (
            "refused".to_string(),
            x("quick", 1, Suppressed, "no_consent"),
        ),
        (
            "unsub_addr".to_string(),
            x("quick", 1, Suppressed, "unsubscribed"),
        ),
        (
            "unsub_id".to_string(),
            x("quick", 1, Suppressed, "unsubscribed"),
        ),
    ]);
    assert_eq!(decided(&p), expect);
    // The message is rendered for its recipient, with the token in the unsubscribe link.
    // Planning renders to check; delivery renders again, to the same text.
    let draft = p
        .send
        .iter()
        .find(|d| d.message.customer_id == "ok")
        .unwrap();
    let m = draft.clone().render().unwrap();
    assert_eq!(m, draft.clone().render().unwrap());
    assert_eq!(
        (draft.message.text.as_str(), draft.message.html.as_ref()),
        ("", None)
    );
    assert_eq!(m.to, "ok@example.com");
    assert_eq!(
        m.text,
        "Hello ok, At Risk. Leave: https://shop.example/u/tok-ok"
    );
    assert_eq!(m.html.as_deref(), Some("<p>Hello At Risk</p>"));
    assert_eq!(
        m.unsubscribe_url.as_deref(),
        Some("https://shop.example/u/tok-ok")
    );
    assert_eq!((m.cost, m.as_of), (0.01, d("2026-06-04")));
    assert_eq!(
        m.idempotency_key,
        idempotency_key("quick", 1, "ok", "email", d(entry))
    );
    // Addresses go into decisions (for the ledger) but a missing one is None.
    let bad = p
        .decisions
        .iter()
        .find(|x| x.customer_id == "bad_email")
        .unwrap();
    assert_eq!(bad.address.as_deref(), Some("bad.example.com"));
    assert_eq!(p.summary.suppressed("quick", "no_consent"), 3);
    assert_eq!(p.summary.channels["quick"]["email"].send, 3);
    assert_eq!(p.summary.audience["quick"], 11);
}

/// 1000 customers, holdout 30%: about 300 held out, the same ones on step 2 three nights
/// later, and never in `send`.
#[test]
fn golden_holdout_share_and_stability() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.3, None, QUICK));
    for i in 0..1000 {
        w.add("quick", &format!("C{i:04}"), "2026-06-04", 1.0);
    }
    let night1 = w.plan();
    let held: BTreeSet<String> = night1
        .decisions
        .iter()
        .filter(|x| x.state == Holdout)
        .map(|x| x.customer_id.clone())
        .collect();
    // Binomial(1000, 0.3): sd 14.5; 240..360 is over 4 sd.
    assert!((240..=360).contains(&held.len()), "{}", held.len());
    assert_eq!(night1.send.len() + held.len(), 1000);
    assert_eq!(
        night1.decisions.len(),
        held.len(),
        "nothing else is suppressed"
    );
    let expected: BTreeSet<String> = (0..1000)
        .map(|i| format!("C{i:04}"))
        .filter(|id| in_holdout("quick", id, 0.3))
        .collect();
    assert_eq!(held, expected);
    assert!(night1.decisions.iter().all(|x| x.address.is_none()));

    // A rerun of the same night (no ledger yet) holds out the same customers.
    let again: BTreeSet<String> = w
        .plan()
        .decisions
        .iter()
        .map(|x| x.customer_id.clone())
        .collect();
    assert_eq!(again, held);

    // Night of 2026-06-07: step 2 (SMS, day 3) is due for everyone whose step 1 ended
    // delivered or holdout; nobody bought. The holdout arm is the same customers.
    w.record(&night1);
    w.as_of = d("2026-06-07");
    w.now = at("2026-06-07T12:00:00Z");
    let night2 = w.plan();
    let held2: BTreeSet<String> = night2
        .decisions
        .iter()
        .map(|x| x.customer_id.clone())
        .collect();
    assert_eq!(held2, held);
    assert!(
        night2
            .decisions
            .iter()
            .all(|x| (x.step, x.state) == (2, Holdout))
    );
    assert_eq!(night2.send.len(), 1000 - held.len());
    assert!(
        night2
            .send
            .iter()
            .all(|d| d.message.step == 2 && d.message.medium == Medium::Sms)
    );
    // The frequency cap does not count the sequence's own step 1 (3 days ago).
}

/// c1 is in both campaigns: amends (priority 20) wins, quick records lower_priority.
/// Equal priorities: the name decides (alpha before beta).
#[test]
fn golden_priority_across_campaigns() {
    let text = campaign_toml("quick", 10, 0.0, None, QUICK)
        + &campaign_toml("amends", 20, 0.0, None, &[(0, "email")]);
    let mut w = World::new(&text);
    w.add("quick", "c1", "2026-06-04", 5.0);
    w.add("amends", "c1", "2026-06-04", 5.0);
    w.add("quick", "c2", "2026-06-04", 5.0);
    w.add("amends", "c3", "2026-06-01", 5.0);
    let p = w.plan();
    assert_eq!(
        sent(&p),
        BTreeSet::from([
            s("amends", 1, "c1"),
            s("quick", 1, "c2"),
            s("amends", 1, "c3")
        ])
    );
    assert_eq!(
        decided(&p),
        BTreeMap::from([(
            "c1".to_string(),
            x("quick", 1, Suppressed, "lower_priority")
        )])
    );

    let text = campaign_toml("beta", 5, 0.0, None, &[(0, "email")])
        + &campaign_toml("alpha", 5, 0.0, None, &[(0, "email")]);
    let mut w = World::new(&text);
    w.add("beta", "c1", "2026-06-04", 1.0);
    w.add("alpha", "c1", "2026-06-04", 1.0);
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("alpha", 1, "c1")]));
    assert_eq!(
        decided(&p),
        BTreeMap::from([("c1".to_string(), x("beta", 1, Suppressed, "lower_priority"))])
    );
}

/// Night 1: quick e-mails c1 and c3, amends e-mails c2. Night 2 (next day): c2 enters
/// quick and c1 enters amends: both capped by last night's message from the other
/// campaign (1 per 7 days), so deferred (planned again on later nights). c3 waits for
/// quick's day-3 step; c4 is new and is sent.
#[test]
fn golden_frequency_cap_two_campaigns_two_nights() {
    let text = campaign_toml("quick", 10, 0.0, None, QUICK)
        + &campaign_toml("amends", 20, 0.0, None, &[(0, "email"), (4, "email")]);
    let mut w = World::new(&text);
    w.add("quick", "c1", "2026-06-04", 1.0);
    w.add("quick", "c3", "2026-06-04", 1.0);
    w.add("amends", "c2", "2026-06-04", 1.0);
    let night1 = w.plan();
    assert_eq!(
        sent(&night1),
        BTreeSet::from([
            s("quick", 1, "c1"),
            s("quick", 1, "c3"),
            s("amends", 1, "c2")
        ])
    );
    assert!(night1.decisions.is_empty());
    w.record(&night1);

    w.as_of = d("2026-06-05");
    w.now = at("2026-06-05T12:00:00Z");
    w.audiences.clear();
    w.add("quick", "c2", "2026-06-05", 1.0);
    w.add("quick", "c3", "2026-06-04", 1.0);
    w.add("amends", "c1", "2026-06-05", 1.0);
    w.add("amends", "c4", "2026-06-05", 1.0);
    let night2 = w.plan();
    assert_eq!(sent(&night2), BTreeSet::from([s("amends", 1, "c4")]));
    assert_eq!(
        decided(&night2),
        BTreeMap::from([
            ("c1".to_string(), x("amends", 1, Deferred, "frequency_cap")),
            ("c2".to_string(), x("quick", 1, Deferred, "frequency_cap")),
        ])
    );
    // With a cap of 2 per 7 days both would have been sent.
    w.cap = FrequencyCap {
        max_messages: 2,
        days: 7,
    };
    assert_eq!(w.plan().send.len(), 3);
}

/// At 20:30 UTC it is 22:30 in Berlin (quiet: deferred), 16:30 in New York (sent), and
/// 05:30 in Tokyo, the pipeline's zone for a customer without one (deferred). The next
/// run at 10:00 UTC (12:00 Berlin, 19:00 Tokyo) sends the deferred two, not New York again.
#[test]
fn golden_quiet_hours_in_the_customers_timezone() {
    let mut w = World::new(&campaign_toml("nudge", 1, 0.0, None, &[(0, "sms")]));
    w.timezone = chrono_tz::Asia::Tokyo;
    for id in ["berlin", "new_york", "tokyo"] {
        w.add("nudge", id, "2026-06-04", 1.0);
    }
    w.contacts.get_mut("berlin").unwrap().timezone = Some(chrono_tz::Europe::Berlin);
    w.contacts.get_mut("new_york").unwrap().timezone = Some(chrono_tz::America::New_York);
    w.now = at("2026-06-04T20:30:00Z");
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("nudge", 1, "new_york")]));
    assert_eq!(p.send[0].message.to, "+4915112345678");
    assert_eq!(p.send[0].clone().render().unwrap().subject, None);
    assert_eq!(
        decided(&p),
        BTreeMap::from([
            ("berlin".to_string(), x("nudge", 1, Deferred, "quiet_hours")),
            ("tokyo".to_string(), x("nudge", 1, Deferred, "quiet_hours")),
        ])
    );
    w.record(&p);
    w.as_of = d("2026-06-05");
    w.now = at("2026-06-05T10:00:00Z");
    let p = w.plan();
    assert_eq!(
        sent(&p),
        BTreeSet::from([s("nudge", 1, "berlin"), s("nudge", 1, "tokyo")])
    );
    assert!(p.decisions.is_empty());
    // Same idempotency key as the deferred decision: the ledger row is updated, not doubled.
    let k = idempotency_key("nudge", 1, "berlin", "sms", d("2026-06-04"));
    assert!(p.send.iter().any(|d| d.message.idempotency_key == k));
}

/// Budget 0.03 at 0.01 per e-mail keeps the three highest values (50, 40, 30) and cuts
/// 20 and 10. The 100-value customer without consent costs nothing and is not counted.
#[test]
fn golden_budget_keeps_the_highest_values() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, Some(0.03), QUICK));
    for (id, value) in [
        ("v50", 50.0),
        ("v10", 10.0),
        ("v40", 40.0),
        ("v30", 30.0),
        ("v20", 20.0),
        ("v100", 100.0),
    ] {
        w.add("quick", id, "2026-06-04", value);
    }
    w.contacts.get_mut("v100").unwrap().consent_email = Some(false);
    let p = w.plan();
    assert_eq!(
        sent(&p),
        BTreeSet::from([
            s("quick", 1, "v50"),
            s("quick", 1, "v40"),
            s("quick", 1, "v30")
        ])
    );
    assert_eq!(
        decided(&p),
        BTreeMap::from([
            ("v10".to_string(), x("quick", 1, Suppressed, "budget")),
            ("v20".to_string(), x("quick", 1, Suppressed, "budget")),
            ("v100".to_string(), x("quick", 1, Suppressed, "no_consent")),
        ])
    );
    let cost = p.summary.channels["quick"]["email"].cost;
    assert!((cost - 0.03).abs() < 1e-12, "{cost}");
}

/// Daily cap 2 on SMS with one already sent today: the highest-value candidate goes,
/// the two others are deferred. Yesterday's SMS does not count.
#[test]
fn golden_daily_cap_defers_lowest_values() {
    let mut w = World::new(&campaign_toml("nudge", 1, 0.0, None, &[(0, "sms")]));
    w.channels.get_mut("sms").unwrap().daily_cap = Some(2);
    for (id, v) in [("a", 3.0), ("b", 9.0), ("c", 5.0)] {
        w.add("nudge", id, "2026-06-04", v);
    }
    w.past(
        "other",
        1,
        "z",
        "sms",
        "2026-06-01",
        SendState::Delivered,
        "2026-06-04",
    );
    w.past(
        "other",
        1,
        "y",
        "sms",
        "2026-06-01",
        SendState::Delivered,
        "2026-06-03",
    );
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("nudge", 1, "b")]));
    assert_eq!(
        decided(&p),
        BTreeMap::from([
            ("a".to_string(), x("nudge", 1, Deferred, "daily_cap")),
            ("c".to_string(), x("nudge", 1, Deferred, "daily_cap")),
        ])
    );
}
