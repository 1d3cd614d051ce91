use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::campaign::config::{CampaignContext, RawCampaign, resolve_campaigns};
use crate::campaign::fields::Fields;
use crate::channel_rules::ChannelRules;

fn campaign() -> Campaign {
    #[derive(serde::Deserialize)]
    struct File {
        campaigns: BTreeMap<String, RawCampaign>,
    }
    let text = r#"
[campaigns.quick]
audience = "aud"
[[campaigns.quick.steps]]
day = 0
channel = "email"
subject = "Hello {{ segment }}"
text = "Hi {{ customer_id }}: {{ unsubscribe_url }}"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
[[campaigns.quick.steps]]
day = 3
channel = "sms"
text = "{{ segment }} 10% off. STOP to end"
"#;
    let raw: File = toml::from_str(text).unwrap();
    let channels = BTreeMap::from([
        ("email".to_string(), ChannelRules::new(Medium::Email)),
        ("sms".to_string(), ChannelRules::new(Medium::Sms)),
    ]);
    let ctx = CampaignContext {
        base_dir: Path::new("."),
        known_tables: &["aud".to_string()],
        channels: &channels,
    };
    resolve_campaigns(&raw.campaigns, &ctx).unwrap().remove(0)
}

fn row(id: &str, segment: serde_json::Value) -> AudienceRow {
    AudienceRow {
        customer_id: id.to_string(),
        entry_date: "2026-05-30".parse().unwrap(),
        value: 10.0,
        fields: Fields::from_pairs(&[("segment", segment)]),
    }
}

fn input<'a>(
    c: &'a Campaign,
    step: usize,
    samples: &'a [AudienceRow],
    to: &'a [String],
) -> TestSendInput<'a> {
    TestSendInput {
        campaign: c,
        step: &c.steps[step],
        channel: &c.steps[step].channels[0],
        samples,
        to,
        as_of: "2026-06-01".parse().unwrap(),
        stamp: "2026-06-01T08:00:00Z",
    }
}

#[test]
fn the_channel_is_the_requested_one_or_the_first_of_the_recipients_medium() {
    let raw: RawCampaign = toml::from_str(
        r#"
audience = "aud"
[[steps]]
day = 0
channel = ["email", "sms"]
subject = "Hi"
text = "Hello {{ unsubscribe_url }}"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
sms_text = "Hello by SMS"
"#,
    )
    .unwrap();
    let channels = BTreeMap::from([
        ("email".to_string(), ChannelRules::new(Medium::Email)),
        ("sms".to_string(), ChannelRules::new(Medium::Sms)),
    ]);
    let ctx = CampaignContext {
        base_dir: Path::new("."),
        known_tables: &["aud".to_string()],
        channels: &channels,
    };
    let c = resolve_campaigns(&BTreeMap::from([("q".to_string(), raw)]), &ctx)
        .unwrap()
        .remove(0);
    let step = &c.steps[0];
    let pick = |requested: Option<&str>, to: &str| {
        choose_channel(step, requested, &[to.to_string()]).map(|c| c.name)
    };
    assert_eq!(pick(None, "qa@shop.example").unwrap(), "email");
    assert_eq!(pick(None, "+4915112345678").unwrap(), "sms");
    assert_eq!(pick(Some("sms"), "+4915112345678").unwrap(), "sms");
    let err = pick(Some("fax"), "qa@shop.example").unwrap_err();
    assert_eq!(err, "--channel fax: step 1 sends through email, sms");
}

#[test]
fn the_sample_is_the_lowest_customer_ids() {
    let rows = vec![
        row("C003", serde_json::json!("a")),
        row("C001", serde_json::json!("b")),
        row("C010", serde_json::json!("c")),
        row("C002", serde_json::json!("d")),
    ];
    let ids: Vec<String> = sample(rows, 3).into_iter().map(|r| r.customer_id).collect();
    assert_eq!(ids, ["C001", "C002", "C003"]);
    assert!(sample(vec![], 3).is_empty());
}

#[test]
fn every_sample_goes_to_every_recipient_marked_as_a_test() {
    let c = campaign();
    let samples = [
        row("C1", serde_json::json!("Loyal")),
        row("C2", serde_json::json!("At Risk")),
    ];
    let to = [
        "qa@shop.example".to_string(),
        "boss@shop.example".to_string(),
    ];
    let out = test_messages(&input(&c, 0, &samples, &to));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].sample_customer_id, "C1");
    let first = out[0].messages.as_ref().unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].to, "qa@shop.example");
    assert_eq!(first[1].to, "boss@shop.example");
    assert_eq!(first[0].subject.as_deref(), Some("[TEST] Hello Loyal"));
    // Rendered for the sample customer, with a token that is no customer's.
    assert_eq!(first[0].text, "Hi C1: https://shop.example/u/test-send");
    assert_eq!(
        first[0].unsubscribe_url.as_deref(),
        Some("https://shop.example/u/test-send")
    );
    assert_eq!(first[0].customer_id, "test:C1");
    assert_eq!((first[0].step, first[0].channel.as_str()), (1, "email"));
    let second = out[1].messages.as_ref().unwrap();
    assert_eq!(second[0].subject.as_deref(), Some("[TEST] Hello At Risk"));
    // Four distinct keys, none a customer's.
    let mut keys: Vec<&str> = first
        .iter()
        .chain(second)
        .map(|m| m.idempotency_key.as_str())
        .collect();
    assert!(keys.iter().all(|k| k.starts_with("test-") && k.len() == 37));
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4);
    // Another test send (another stamp) has other keys.
    let mut later = input(&c, 0, &samples, &to);
    later.stamp = "2026-06-01T09:00:00Z";
    let again = test_messages(&later);
    assert_ne!(
        again[0].messages.as_ref().unwrap()[0].idempotency_key,
        first[0].idempotency_key
    );
}

#[test]
fn an_sms_step_prefixes_its_text() {
    let c = campaign();
    let samples = [row("C1", serde_json::json!("Loyal"))];
    let to = ["+4915112345678".to_string()];
    let out = test_messages(&input(&c, 1, &samples, &to));
    let m = &out[0].messages.as_ref().unwrap()[0];
    assert_eq!(m.text, "[TEST] Loyal 10% off. STOP to end");
    assert_eq!(m.subject, None);
    assert_eq!(m.medium, Medium::Sms);
}

#[test]
fn a_sample_row_that_does_not_render_is_reported_not_addressed() {
    let c = campaign();
    let samples = [AudienceRow {
        fields: Fields::from_pairs(&[]),
        ..row("C1", serde_json::json!(null))
    }];
    let to = ["qa@shop.example".to_string()];
    let out = test_messages(&input(&c, 0, &samples, &to));
    let e = out[0].messages.as_ref().unwrap_err();
    assert_eq!(e.part, "subject");
}

#[test]
fn recipients_must_match_the_steps_medium() {
    let emails = ["qa@shop.example".to_string()];
    assert!(check_recipients(Medium::Email, &emails).is_empty());
    let sms = check_recipients(Medium::Sms, &emails);
    assert_eq!(sms.len(), 1);
    assert!(
        sms[0].starts_with("--to #1 (q***@shop.example) is not an E.164"),
        "{sms:?}"
    );
    let mixed = [
        "qa@shop.example".to_string(),
        "+4915112345678".to_string(),
        "nobody".to_string(),
    ];
    let problems = check_recipients(Medium::Email, &mixed);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("--to #2 (+4915***5678) is not an e-mail address"));
    assert!(problems[1].starts_with("--to #3 (***dy) is not an e-mail address"));
    assert!(
        problems.iter().all(|p| !p.contains("4915112345678")),
        "masked"
    );
    assert_eq!(
        check_recipients(Medium::Sms, &[]),
        ["give at least one --to address"]
    );
}
