//! The golden cases of a channel per customer (hand-worked expectations): preference
//! lists, the customer's preferred channel, and a frequency cap that defers a step
//! instead of ending the sequence.

use super::*;
use SendState::{Deferred, Holdout, Suppressed};

/// A campaign whose steps (day, `channel` as TOML) each have e-mail templates and an
/// SMS text.
fn multi_toml(name: &str, holdout: f64, steps: &[(u32, &str)]) -> String {
    let mut s = format!(
        "[campaigns.{name}]\naudience = \"aud_{name}\"\npriority = 10\nholdout_share = {holdout}\n"
    );
    for (day, channel) in steps {
        s.push_str(&format!(
            "[[campaigns.{name}.steps]]\nday = {day}\nchannel = {channel}\n{}",
            r#"subject = "We miss you"
text = "Hello {{ customer_id }}, step {{ step }}. Leave: {{ unsubscribe_url }}"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
sms_text = "Hi {{ customer_id }}, step {{ step }}: 15% off. STOP to end"
"#
        ));
    }
    s
}

const BOTH: &str = r#"["email", "sms"]"#;

/// (customer, step, channel, as_of) of every message sent on each night from `from` to
/// `to` (UTC noon), recording each night's plan as the sender would.
fn nights(w: &mut World, from: u32, to: u32) -> Vec<(String, u32, String, NaiveDate)> {
    let mut out = Vec::new();
    for day in from..=to {
        w.as_of = d(&format!("2026-06-{day:02}"));
        w.now = at(&format!("2026-06-{day:02}T12:00:00Z"));
        let p = w.plan();
        for Draft { message: m, .. } in &p.send {
            out.push((m.customer_id.clone(), m.step, m.channel.clone(), m.as_of));
        }
        w.record(&p);
    }
    out.sort_by(|a, b| (a.3, &a.0).cmp(&(b.3, &b.0)));
    out
}

fn m(id: &str, step: u32, channel: &str, as_of: &str) -> (String, u32, String, NaiveDate) {
    (id.to_string(), step, channel.to_string(), d(as_of))
}

/// Every step says `["email", "sms"]` (days 0, 3, 10; entry 06-04). `both` consents to
/// both: e-mail on 06-04, 06-07 and 06-14. `sms_only` (consent_sms only) gets the whole
/// sequence by SMS on the same nights, rendered from `sms_text`. `bad_email` has a
/// consent to both but an invalid e-mail address: SMS. `neither` qualifies on no
/// channel: suppressed on 06-04 with the first channel's reason (`no_consent`, on
/// e-mail), which ends the sequence.
#[test]
fn golden_sms_only_customer_gets_the_whole_sequence_by_sms() {
    let mut w = World::new(&multi_toml(
        "quick",
        0.0,
        &[(0, BOTH), (3, BOTH), (10, BOTH)],
    ));
    for id in ["both", "sms_only", "bad_email", "neither"] {
        w.add("quick", id, "2026-06-04", 1.0);
    }
    w.contacts.get_mut("sms_only").unwrap().consent_email = Some(false);
    w.contacts.get_mut("bad_email").unwrap().email = Some("bad.example.com".into());
    let neither = w.contacts.get_mut("neither").unwrap();
    (neither.consent_email, neither.consent_sms) = (None, Some(false));

    w.as_of = d("2026-06-04");
    let first = w.plan();
    let refused = &first.decisions;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].customer_id.as_str(), refused[0].channel.as_str()),
        ("neither", "email")
    );
    assert_eq!(
        decided(&first),
        BTreeMap::from([("neither".into(), x("quick", 1, Suppressed, "no_consent"))])
    );
    // The SMS is rendered from sms_text, to the phone, without e-mail parts; the key
    // names the channel it goes out on.
    let sms = first
        .send
        .iter()
        .find(|d| d.message.customer_id == "sms_only")
        .unwrap();
    assert_eq!(
        (sms.message.channel.as_str(), sms.message.medium),
        ("sms", Medium::Sms)
    );
    assert_eq!(
        sms.message.idempotency_key,
        idempotency_key("quick", 1, "sms_only", "sms", d("2026-06-04"))
    );
    let text = sms.clone().render().unwrap();
    assert_eq!(text.to, "+4915112345678");
    assert_eq!(text.text, "Hi sms_only, step 1: 15% off. STOP to end");
    assert_eq!((text.subject, text.unsubscribe_url), (None, None));
    let email = first
        .send
        .iter()
        .find(|d| d.message.customer_id == "both")
        .unwrap()
        .clone()
        .render()
        .unwrap();
    assert_eq!(email.subject.as_deref(), Some("We miss you"));
    assert_eq!(
        email.text,
        "Hello both, step 1. Leave: https://shop.example/u/tok-both"
    );
    let counts = &first.summary.channels["quick"];
    assert_eq!((counts["email"].send, counts["sms"].send), (1, 2));

    let sent = nights(&mut w, 4, 15);
    let mut expected = Vec::new();
    for (step, day) in [(1, "2026-06-04"), (2, "2026-06-07"), (3, "2026-06-14")] {
        expected.push(m("bad_email", step, "sms", day));
        expected.push(m("both", step, "email", day));
        expected.push(m("sms_only", step, "sms", day));
    }
    assert_eq!(sent, expected);
}

/// Cap: 1 message per 2 days. `treated` and `held` (a holdout customer) were e-mailed
/// by another campaign on 06-03. On 06-04 (window 06-03..06-04) `treated`'s step 1 is
/// deferred, not suppressed; on 06-05 (window 06-04..06-05) it is sent. Step 2 (day 3)
/// then keeps its gap after step 1 (06-05 + 3 = 06-08, not entry + 3 = 06-07), step 3
/// (day 10) comes 7 days after it: 06-15. The holdout arm is not capped and keeps the
/// entry's days: holdout on 06-04, 06-07 and 06-14.
#[test]
fn golden_capped_step_is_deferred_and_sent_the_next_night() {
    let share = 0.5;
    let pick = |held: bool| {
        (0..)
            .map(|i| format!("c{i}"))
            .find(|id| in_holdout("quick", id, share) == held)
            .unwrap()
    };
    let (treated, held) = (pick(false), pick(true));
    let mut w = World::new(&multi_toml(
        "quick",
        share,
        &[(0, BOTH), (3, BOTH), (10, BOTH)],
    ));
    w.cap = FrequencyCap {
        max_messages: 1,
        days: 2,
    };
    for id in [&treated, &held] {
        w.add("quick", id, "2026-06-04", 1.0);
        w.past(
            "amends",
            1,
            id,
            "email",
            "2026-05-20",
            SendState::Delivered,
            "2026-06-03",
        );
    }
    let p = w.plan();
    assert!(p.send.is_empty(), "{:?}", sent(&p));
    assert_eq!(
        decided(&p),
        BTreeMap::from([
            (treated.clone(), x("quick", 1, Deferred, "frequency_cap")),
            (held.clone(), x("quick", 1, Holdout, "holdout")),
        ])
    );
    let deferred = p.decisions.iter().find(|x| x.state == Deferred).unwrap();
    assert_eq!(deferred.channel, "email");
    // The holdout faces the same cap, recorded, not acted on.
    let holdout = p.decisions.iter().find(|x| x.state == Holdout).unwrap();
    assert_eq!(
        holdout.would_be_suppressed.as_deref(),
        Some("frequency_cap")
    );
    assert_eq!(
        p.summary.channels["quick"]["email"].deferred["frequency_cap"],
        1
    );

    let sent = nights(&mut w, 4, 16);
    assert_eq!(
        sent,
        vec![
            m(&treated, 1, "email", "2026-06-05"),
            m(&treated, 2, "email", "2026-06-08"),
            m(&treated, 3, "email", "2026-06-15"),
        ]
    );
    let holdout_nights: Vec<(u32, NaiveDate)> = w
        .ledger
        .iter()
        .filter(|r| r.customer_id == held && r.state == Holdout)
        .map(|r| (r.step, r.as_of))
        .collect();
    assert_eq!(
        holdout_nights,
        vec![
            (1, d("2026-06-04")),
            (2, d("2026-06-07")),
            (3, d("2026-06-14"))
        ]
    );
}

/// `channel = "preferred"` with `fallback = ["email", "sms"]`: the row's
/// `preferred_channel` first when it names a channel the step has templates for and the
/// customer qualifies on it, else the fallback list in order.
#[test]
fn golden_preferred_channel_with_fallback() {
    let toml_text = multi_toml(
        "quick",
        0.0,
        &[(0, "\"preferred\"\nfallback = [\"email\", \"sms\"]")],
    );
    let mut w = World::new(&toml_text);
    let rows = [
        ("wants_sms", Some("sms")),
        ("wants_email", Some("email")),
        ("says_fax", Some("fax")),
        ("says_nothing", None),
        // prefers SMS but has no SMS consent: the fallback's first, e-mail
        ("sms_refused", Some("sms")),
        // prefers e-mail, has no e-mail consent: the fallback's SMS
        ("email_refused", Some("email")),
    ];
    for (id, preferred) in rows {
        w.add("quick", id, "2026-06-04", 1.0);
        let row = w.audiences.get_mut("quick").unwrap().last_mut().unwrap();
        row.fields = Fields::from_pairs(&[(
            "preferred_channel",
            preferred.map_or(serde_json::Value::Null, serde_json::Value::from),
        )]);
    }
    w.contacts.get_mut("sms_refused").unwrap().consent_sms = Some(false);
    w.contacts.get_mut("email_refused").unwrap().consent_email = Some(false);
    let p = w.plan();
    assert!(p.decisions.is_empty(), "{:?}", p.decisions);
    let chosen: BTreeMap<&str, &str> = p
        .send
        .iter()
        .map(|d| (d.message.customer_id.as_str(), d.message.channel.as_str()))
        .collect();
    assert_eq!(
        chosen,
        BTreeMap::from([
            ("email_refused", "sms"),
            ("says_fax", "email"),
            ("says_nothing", "email"),
            ("sms_refused", "email"),
            ("wants_email", "email"),
            ("wants_sms", "sms"),
        ])
    );
}

/// A preferred channel whose medium the step has no template for does not qualify: a
/// step with e-mail templates only (`fallback = ["email"]`, no `sms_text`) e-mails the
/// customer who prefers SMS, and suppresses (e-mail's `no_consent`) one who consented
/// to SMS only.
#[test]
fn golden_preferred_channel_without_its_templates_does_not_qualify() {
    let toml_text = r#"
[campaigns.quick]
audience = "aud_quick"
holdout_share = 0.0
[[campaigns.quick.steps]]
day = 0
channel = "preferred"
fallback = ["email"]
subject = "We miss you"
text = "Hello. Leave: {{ unsubscribe_url }}"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
"#;
    let mut w = World::new(toml_text);
    for id in ["wants_sms", "sms_only"] {
        w.add("quick", id, "2026-06-04", 1.0);
        let row = w.audiences.get_mut("quick").unwrap().last_mut().unwrap();
        row.fields = Fields::from_pairs(&[("preferred_channel", serde_json::json!("sms"))]);
    }
    w.contacts.get_mut("sms_only").unwrap().consent_email = Some(false);
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("quick", 1, "wants_sms")]));
    assert_eq!(p.send[0].message.channel, "email");
    assert_eq!(
        decided(&p),
        BTreeMap::from([("sms_only".into(), x("quick", 1, Suppressed, "no_consent"))])
    );
    assert_eq!(p.decisions[0].channel, "email");
}

/// Everyone held out (share 0.999, each id checked): the rules the treated arm faces are run on each and
/// recorded, the message is never sent and no address is kept. `ok` would have been
/// e-mailed (None); `no_consent` has no e-mail consent and no SMS consent (the first
/// reason, `no_consent`); `sms_only` would have had an SMS (None, on channel sms); `bad`
/// consents to e-mail with an invalid address and not to SMS: `invalid_address` (a
/// channel consented to that failed says more than one never accepted).
#[test]
fn golden_holdout_records_what_the_rules_would_have_done() {
    let mut w = World::new(&multi_toml("quick", 0.999, &[(0, BOTH)]));
    for id in ["ok", "no_consent", "sms_only", "bad"] {
        assert!(in_holdout("quick", id, 0.999), "{id}");
        w.add("quick", id, "2026-06-04", 1.0);
    }
    let nc = w.contacts.get_mut("no_consent").unwrap();
    (nc.consent_email, nc.consent_sms) = (Some(false), None);
    w.contacts.get_mut("sms_only").unwrap().consent_email = None;
    let bad = w.contacts.get_mut("bad").unwrap();
    bad.email = Some("bad.example.com".into());
    bad.consent_sms = Some(false);
    w.as_of = d("2026-06-04");
    let p = w.plan();
    assert!(p.send.is_empty());
    let got: BTreeMap<String, (Option<String>, String, Option<String>)> = p
        .decisions
        .iter()
        .map(|x| {
            assert_eq!(x.state, Holdout);
            (
                x.customer_id.clone(),
                (
                    x.would_be_suppressed.clone(),
                    x.channel.clone(),
                    x.address.clone(),
                ),
            )
        })
        .collect();
    let row = |w: Option<&str>, ch: &str| (w.map(str::to_string), ch.to_string(), None);
    assert_eq!(
        got,
        BTreeMap::from([
            ("bad".to_string(), row(Some("invalid_address"), "email")),
            ("no_consent".to_string(), row(Some("no_consent"), "email")),
            ("ok".to_string(), row(None, "email")),
            ("sms_only".to_string(), row(None, "sms")),
        ])
    );
}
