//! The golden cases of the call list (hand-worked expectations): `call_top` gives the
//! night's calls to the most valuable customers a call can reach, in both arms, the rest
//! get the step's next channel; and a call's owner is the customer's own, else one of
//! `[staff]`, the same night after night.

use super::*;
use crate::campaign::owner::call_owner;

/// A campaign whose first step is a call for the `top` most valuable, else an e-mail.
fn calls_toml(holdout: f64, top: u32) -> String {
    format!(
        r#"[campaigns.amends]
audience = "aud_amends"
priority = 10
holdout_share = {holdout}
call_top = {top}
[[campaigns.amends.steps]]
day = 0
channel = ["calls", "email"]
call_reason = "we let {{{{ customer_id }}}} down"
call_remedy = "ask, then offer 20% off"
subject = "Did we let you down?"
text = "What went wrong? Leave: {{{{ unsubscribe_url }}}}"
unsubscribe_url = "https://shop.example/u/{{{{ unsubscribe_token }}}}"
"#
    )
}

/// customer -> channel of every message.
fn channels(plan: &Plan) -> BTreeMap<String, String> {
    plan.send
        .iter()
        .map(|d| (d.message.customer_id.clone(), d.message.channel.clone()))
        .collect()
}

#[test]
fn call_top_calls_the_most_valuable_a_call_can_reach_and_emails_the_rest() {
    let mut w = World::new(&calls_toml(0.0, 2));
    // a 500, b 400 (call consent null: none), c 300 (no phone), d 200, e 100: a call
    // can reach a, d and e.
    for (id, value) in [
        ("a", 500.0),
        ("b", 400.0),
        ("c", 300.0),
        ("d", 200.0),
        ("e", 100.0),
    ] {
        w.add("amends", id, "2026-06-04", value);
    }
    w.contacts.get_mut("b").unwrap().consent_call = None;
    w.contacts.get_mut("c").unwrap().phone = None;
    let p = w.plan();
    // The two places go to a and d, the most valuable a call can reach; b and c take
    // none and get the e-mail, as does e, below the top two of the callable.
    let expected: BTreeMap<String, String> = [
        ("a", "calls"),
        ("b", "email"),
        ("c", "email"),
        ("d", "calls"),
        ("e", "email"),
    ]
    .into_iter()
    .map(|(i, c)| (i.to_string(), c.to_string()))
    .collect();
    assert_eq!(channels(&p), expected);
    assert!(p.decisions.is_empty(), "{:?}", p.decisions);
    // The call's row: the reason and remedy rendered, no owner without a [staff] list.
    let a = p
        .send
        .iter()
        .find(|d| d.message.customer_id == "a")
        .unwrap();
    let m = a.clone().render().unwrap();
    assert_eq!(m.medium, Medium::Call);
    assert_eq!(m.to, "+4915112345678");
    assert_eq!(m.subject.as_deref(), Some("we let a down"));
    assert_eq!(m.text, "ask, then offer 20% off");
    assert_eq!((m.evidence, m.owner), (None, None));
    // A call costs the call channel's 4.0, an e-mail 0.01.
    assert_eq!(m.cost, 4.0);
}

#[test]
fn the_holdout_takes_its_call_places_too() {
    // Half held out. Of ids h* and t*, pick a held-out one and three treated ones.
    let held: Vec<String> = (0..50)
        .map(|i| format!("h{i}"))
        .filter(|id| in_holdout("amends", id, 0.5))
        .take(1)
        .collect();
    let treated: Vec<String> = (0..50)
        .map(|i| format!("t{i}"))
        .filter(|id| !in_holdout("amends", id, 0.5))
        .take(3)
        .collect();
    let mut w = World::new(&calls_toml(0.5, 2));
    // Values: the held-out customer 500, then 400, 300, 200 treated.
    w.add("amends", &held[0], "2026-06-04", 500.0);
    for (id, value) in treated.iter().zip([400.0, 300.0, 200.0]) {
        w.add("amends", id, "2026-06-04", value);
    }
    let p = w.plan();
    // Places: the held-out 500 (would have been called) and the 400; the 300 and the
    // 200 are e-mailed.
    let h = p
        .decisions
        .iter()
        .find(|x| x.customer_id == held[0])
        .unwrap();
    assert_eq!((h.state, h.channel.as_str()), (SendState::Holdout, "calls"));
    let expected: BTreeMap<String, String> = [
        (treated[0].clone(), "calls".to_string()),
        (treated[1].clone(), "email".to_string()),
        (treated[2].clone(), "email".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(channels(&p), expected);
}

#[test]
fn a_customer_keeps_their_owner_across_nights() {
    let staff: Vec<String> = ["Ana", "Ben", "Chen"].map(String::from).to_vec();
    let mut w = World::new(&calls_toml(0.0, 10));
    w.staff = staff.clone();
    for (id, value) in [("a", 500.0), ("b", 400.0), ("c", 300.0), ("z", 200.0)] {
        w.add("amends", id, "2026-06-04", value);
    }
    w.contacts.get_mut("z").unwrap().owner = Some("Zoe".into());
    let owners = |p: &Plan| -> BTreeMap<String, Option<String>> {
        p.send
            .iter()
            .map(|d| {
                let m = d.clone().render().unwrap();
                (m.customer_id.clone(), m.owner.clone())
            })
            .collect()
    };
    let night1 = w.plan();
    let first = owners(&night1);
    // Each customer's owner is the member with the highest score (call_owner); z's is
    // their own column's, Zoe, who is not in [staff].
    assert_eq!(first["z"].as_deref(), Some("Zoe"));
    for id in ["a", "b", "c"] {
        assert_eq!(first[id].as_deref(), call_owner(id, None, &staff), "{id}");
        assert!(
            staff
                .iter()
                .any(|s| Some(s.as_str()) == first[id].as_deref())
        );
    }
    w.record(&night1);
    // Night 2, ten days on: all four lapse again (new entries), in another order, with a
    // new customer, and the list written in another order: the same owners.
    w.as_of = d("2026-06-14");
    w.now = at("2026-06-14T12:00:00Z");
    w.audiences.clear();
    for (id, value) in [
        ("n", 600.0),
        ("c", 300.0),
        ("z", 200.0),
        ("b", 400.0),
        ("a", 500.0),
    ] {
        w.add("amends", id, "2026-06-14", value);
    }
    w.staff = ["Chen", "Ana", "Ben"].map(String::from).to_vec();
    let second = owners(&w.plan());
    for id in ["a", "b", "c", "z"] {
        assert_eq!(second[id], first[id], "{id} changed owner");
    }
    assert!(second["n"].is_some());
}

#[test]
fn a_rerun_of_the_night_keeps_the_call_places_its_first_attempt_gave() {
    // call_top 2 over a 500, d 400, e 300, f 200 (all reachable by a call). The first
    // attempt of tonight called a and d (places 1 and 2) and planned e-mails for e and f;
    // it was killed after the calls were made and before the e-mails went out.
    let mut w = World::new(&calls_toml(0.0, 2));
    for (id, value) in [("a", 500.0), ("d", 400.0), ("e", 300.0), ("f", 200.0)] {
        w.add("amends", id, "2026-06-04", value);
    }
    let first = w.plan();
    let mut by_channel: Vec<(String, String)> = channels(&first).into_iter().collect();
    by_channel.sort();
    assert_eq!(
        by_channel,
        [
            ("a", "calls"),
            ("d", "calls"),
            ("e", "email"),
            ("f", "email")
        ]
        .map(|(i, c)| (i.to_string(), c.to_string()))
    );
    w.past(
        "amends",
        1,
        "a",
        "calls",
        "2026-06-04",
        SendState::Delivered,
        "2026-06-04",
    );
    w.past(
        "amends",
        1,
        "d",
        "calls",
        "2026-06-04",
        SendState::Delivered,
        "2026-06-04",
    );
    w.past(
        "amends",
        1,
        "e",
        "email",
        "2026-06-04",
        SendState::Planned,
        "2026-06-04",
    );
    w.past(
        "amends",
        1,
        "f",
        "email",
        "2026-06-04",
        SendState::Planned,
        "2026-06-04",
    );
    // The rerun: a and d are done; both places are used, so e and f get their e-mails
    // (the rows planned before), not the two places a fresh night would give them.
    let rerun = w.plan();
    let expected: BTreeMap<String, String> = [("e", "email"), ("f", "email")]
        .into_iter()
        .map(|(i, c)| (i.to_string(), c.to_string()))
        .collect();
    assert_eq!(channels(&rerun), expected);
    // A later night is a new night: its places are free again.
    let mut w2 = World::new(&calls_toml(0.0, 2));
    w2.as_of = d("2026-06-05");
    for (id, value) in [("e", 300.0), ("f", 200.0)] {
        w2.add("amends", id, "2026-06-04", value);
    }
    w2.past(
        "amends",
        1,
        "a",
        "calls",
        "2026-06-04",
        SendState::Delivered,
        "2026-06-04",
    );
    w2.past(
        "amends",
        1,
        "d",
        "calls",
        "2026-06-04",
        SendState::Delivered,
        "2026-06-04",
    );
    let next = w2.plan();
    assert_eq!(
        channels(&next).values().filter(|c| *c == "calls").count(),
        2,
        "{:?}",
        channels(&next)
    );
}
