//! The golden cases of sequences (hand-worked expectations): entry, missed nights,
//! purchases between steps, ledger states.

use super::*;
use SendState::Suppressed;

const QUICK: &[(u32, &str)] = &[(0, "email"), (3, "sms"), (10, "email")];

/// Step 1 went out on 2026-06-04 to c1 and c2. c1 bought on 06-05, so on 06-07 (day 3)
/// step 2 is suppressed as `purchased` and the sequence ends; c2 gets the SMS. c3
/// entered on 06-05, its step 2 is due on 06-08: nothing tonight.
#[test]
fn golden_step_two_skipped_after_a_purchase() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, QUICK));
    w.add("quick", "c1", "2026-06-04", 1.0);
    w.add("quick", "c2", "2026-06-04", 1.0);
    w.add("quick", "c3", "2026-06-05", 1.0);
    w.past(
        "quick",
        1,
        "c1",
        "email",
        "2026-06-04",
        SendState::Delivered,
        "2026-06-04",
    );
    w.past(
        "quick",
        1,
        "c2",
        "email",
        "2026-06-04",
        SendState::Delivered,
        "2026-06-04",
    );
    w.past(
        "quick",
        1,
        "c3",
        "email",
        "2026-06-05",
        SendState::Delivered,
        "2026-06-05",
    );
    w.last_purchase.insert("c1".into(), d("2026-06-05"));
    w.last_purchase.insert("c2".into(), d("2026-05-01"));
    w.as_of = d("2026-06-07");
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("quick", 2, "c2")]));
    assert_eq!(
        decided(&p),
        BTreeMap::from([("c1".to_string(), x("quick", 2, Suppressed, "purchased"))])
    );
    // Recorded, the purchase ends the sequence: step 3 (day 10) never comes for c1. On
    // 06-15 (no runs since 06-07) c2 gets step 3; c3's step 2, due since 06-08 and never
    // sent, goes now (its step 3 waits for it to be delivered).
    w.record(&p);
    w.as_of = d("2026-06-15");
    w.now = at("2026-06-15T12:00:00Z");
    assert_eq!(
        sent(&w.plan()),
        BTreeSet::from([s("quick", 3, "c2"), s("quick", 2, "c3")])
    );
}

/// Still lapsed the next night with the same alert date: no second entry. A new lapse
/// (a later alert date) of a customer whose earlier sequence is in the ledger enters again.
#[test]
fn golden_entry_once_per_lapse() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, QUICK));
    w.add("quick", "c1", "2026-06-04", 1.0);
    w.add("quick", "c2", "2026-06-04", 1.0);
    w.past(
        "quick",
        1,
        "c2",
        "email",
        "2026-03-01",
        SendState::Delivered,
        "2026-03-01",
    );
    w.past(
        "quick",
        2,
        "c2",
        "sms",
        "2026-03-01",
        SendState::Delivered,
        "2026-03-04",
    );
    let night1 = w.plan();
    assert_eq!(
        sent(&night1),
        BTreeSet::from([s("quick", 1, "c1"), s("quick", 1, "c2")])
    );
    w.record(&night1);
    w.as_of = d("2026-06-05");
    w.now = at("2026-06-05T12:00:00Z");
    let night2 = w.plan();
    assert!(
        night2.send.is_empty() && night2.decisions.is_empty(),
        "{night2:?}"
    );
}

/// No run on 06-04 and 06-05: on 06-06 step 1 (day 0) of the 06-04 entry still goes out,
/// and 16 days late only step 1 is sent (step 2 waits for step 1 to be delivered).
#[test]
fn golden_missed_night_still_sends_step_one() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, QUICK));
    w.add("quick", "c1", "2026-06-04", 1.0);
    w.as_of = d("2026-06-06");
    assert_eq!(sent(&w.plan()), BTreeSet::from([s("quick", 1, "c1")]));
    w.as_of = d("2026-06-20");
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("quick", 1, "c1")]));
    assert_eq!(p.send[0].message.as_of, d("2026-06-20"));
}

/// `unknown` (maybe delivered) is not re-sent by default, re-planned with `resend`;
/// `failed` and `deferred` are re-planned; `rejected` ends the sequence.
#[test]
fn golden_ledger_states_and_on_unknown() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, QUICK));
    for (id, state) in [
        ("unknown", SendState::Unknown),
        ("failed", SendState::Failed),
        ("deferred", SendState::Deferred),
        ("rejected", SendState::Rejected),
        ("in_flight", SendState::InFlight),
    ] {
        w.add("quick", id, "2026-06-04", 1.0);
        w.past("quick", 1, id, "email", "2026-06-04", state, "2026-06-04");
    }
    // Rows of this night do not count for the cap of their own sequence.
    let p = w.plan();
    assert_eq!(
        sent(&p),
        BTreeSet::from([s("quick", 1, "failed"), s("quick", 1, "deferred")])
    );
    w.campaigns[0].on_unknown = crate::campaign::config::OnUnknown::Resend;
    let p = w.plan();
    assert_eq!(
        sent(&p),
        BTreeSet::from([
            s("quick", 1, "failed"),
            s("quick", 1, "deferred"),
            s("quick", 1, "unknown")
        ])
    );
}

/// A lapse found late (entry 2026-05-01, first planned on 06-04): step 1 goes on 06-04;
/// step 2 (day 3) is long past its entry + 3 but keeps its gap after step 1: not on 06-05
/// or 06-06, sent on 06-07. Step 3 (day 10) then waits 7 days more: 06-14.
#[test]
fn golden_late_entry_keeps_the_step_spacing() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, QUICK));
    w.add("quick", "c1", "2026-05-01", 1.0);
    let mut sent_on = Vec::new();
    for day in 4..=15 {
        w.as_of = d(&format!("2026-06-{day:02}"));
        w.now = at(&format!("2026-06-{day:02}T12:00:00Z"));
        let p = w.plan();
        for m in &p.send {
            sent_on.push((m.message.step, w.as_of));
        }
        w.record(&p);
    }
    assert_eq!(
        sent_on,
        vec![
            (1, d("2026-06-04")),
            (2, d("2026-06-07")),
            (3, d("2026-06-14"))
        ]
    );
}
