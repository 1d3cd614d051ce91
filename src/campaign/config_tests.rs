//! Tests of campaign configuration parsing and validation.

use super::*;
use crate::campaign::sms::{SMS_FIELD_ESTIMATE, estimate_rendered};
use crate::channel_rules::ChannelRules;
use serde::Deserialize;

fn channels() -> BTreeMap<String, ChannelRules> {
    BTreeMap::from([
        ("email".to_string(), ChannelRules::new(Medium::Email)),
        ("sms".to_string(), ChannelRules::new(Medium::Sms)),
    ])
}

fn tables() -> Vec<String> {
    vec!["winback_quick".to_string(), "winback_amends".to_string()]
}

fn parse(toml_text: &str) -> Result<BTreeMap<String, RawCampaign>, toml::de::Error> {
    #[derive(Deserialize)]
    struct File {
        campaigns: BTreeMap<String, RawCampaign>,
    }
    toml::from_str::<File>(toml_text).map(|f| f.campaigns)
}

fn resolve(toml_text: &str, dir: &Path) -> Result<Vec<Campaign>, CampaignConfigError> {
    let chans = channels();
    let known = tables();
    let ctx = CampaignContext {
        base_dir: dir,
        known_tables: &known,
        channels: &chans,
    };
    resolve_campaigns(&parse(toml_text).unwrap(), &ctx)
}

const GOOD: &str = r#"
[campaigns.quick]
audience = "winback_quick"
priority = 10
budget = 500.0
[[campaigns.quick.steps]]
day = 0
channel = "email"
subject = "We miss you, {{ first_name }}"
text = "Hello {{ first_name }}, {{ unsubscribe_url }}"
html_file = "quick1.html"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
[[campaigns.quick.steps]]
day = 3
channel = "sms"
text = "Hi {{ first_name }}, 10% off this week. Reply STOP to opt out."
"#;

#[test]
fn a_good_campaign_resolves_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("quick1.html"), "<p>{{ segment }}</p>").unwrap();
    let c = resolve(GOOD, dir.path()).unwrap();
    assert_eq!(c.len(), 1);
    let q = &c[0];
    assert_eq!(
        (q.name.as_str(), q.priority, q.budget),
        ("quick", 10, Some(500.0))
    );
    assert_eq!(q.holdout_share, DEFAULT_HOLDOUT_SHARE);
    assert_eq!(q.value_column, "sltv");
    assert_eq!(q.on_unknown, OnUnknown::Skip);
    assert_eq!(q.repeat_every_days, None, "no repeats unless asked");
    assert_eq!(q.steps.len(), 2);
    assert!(!q.steps[0].only_if_no_purchase);
    assert!(q.steps[1].only_if_no_purchase);
    assert_eq!(
        q.steps[1].channels,
        vec![StepChannel {
            name: "sms".into(),
            medium: Medium::Sms
        }]
    );
    assert!(!q.steps[1].preferred);
    assert!(q.steps[0].templates[&Medium::Email].has(Part::Html));
    assert!(q.steps[0].templates_for(Medium::Sms).is_none());
    assert!(q.steps[1].templates_for(Medium::Email).is_none());

    let cols: Vec<String> = ["customer_id", "entry_date", "sltv", "first_name"]
        .map(String::from)
        .to_vec();
    let problems = q.validate_fields(&cols);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("step 1: template html uses \"segment\""),
        "{problems:?}"
    );
    let cols: Vec<String> = ["customer_id", "first_name", "segment"]
        .map(String::from)
        .to_vec();
    let problems = q.validate_fields(&cols);
    assert_eq!(
        problems.len(),
        2,
        "entry_date and sltv missing: {problems:?}"
    );
    assert!(q.sms_warnings().is_empty());
}

#[test]
fn unknown_keys_are_rejected() {
    let e = parse("[campaigns.a]\naudience = \"x\"\nbudgett = 1\n").unwrap_err();
    assert!(e.to_string().contains("budgett"), "{e}");
    let e = parse("[campaigns.a]\naudience = \"x\"\n[[campaigns.a.steps]]\nday = 0\nchannel = \"email\"\nbody = \"x\"\n")
        .unwrap_err();
    assert!(e.to_string().contains("body"), "{e}");
    let e = parse("[campaigns.a]\naudience = \"x\"\non_unknown = \"maybe\"\n").unwrap_err();
    assert!(e.to_string().contains("maybe"), "{e}");
}

#[test]
fn all_problems_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[campaigns.Bad-Name]
audience = "nope"
holdout_share = 1.5
budget = -3.0
repeat_every_days = 0

[campaigns.two]
audience = "winback_quick"
[[campaigns.two.steps]]
day = 5
channel = "fax"
text = "x"
[[campaigns.two.steps]]
day = 2
channel = "email"
text = "{{ a "
html_file = "missing.html"
[[campaigns.two.steps]]
day = 9
channel = "sms"
subject = "no"
text = "hi"
text_file = "also.txt"
"#;
    let err = resolve(text, dir.path()).unwrap_err();
    let all = err.problems.join("\n");
    for expected in [
        "campaign Bad-Name: the name must be a lowercase identifier",
        "campaign Bad-Name: audience \"nope\" is not a known table",
        "campaign Bad-Name: holdout_share 1.5",
        "campaign Bad-Name: budget -3",
        "campaign Bad-Name: repeat_every_days must be at least 1",
        "campaign Bad-Name: has no steps",
        "campaign two: step 1: channel \"fax\" is not a [channels.*] table",
        "campaign two: step 2: day 2 comes before the previous step's day 5",
        "campaign two: step 2: html_file \"missing.html\" cannot be read",
        "campaign two: step 2: an email step needs subject",
        "campaign two: step 2: an email step needs unsubscribe_url",
        "campaign two: step 2: template text: syntax error",
        "campaign two: step 3: give either text or text_file, not both",
        "campaign two: step 3: subject is for e-mail",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    assert_eq!(err.problems.len(), 14, "{all}");
    assert!(err.to_string().starts_with("invalid [campaigns]:\n  - "));
}

#[test]
fn long_sms_texts_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let long = "a".repeat(150);
    let text = format!(
        "[campaigns.s]\naudience = \"winback_quick\"\n[[campaigns.s.steps]]\nday = 0\nchannel = \"sms\"\ntext = \"{long} {{{{ first_name }}}}\"\n"
    );
    let c = resolve(&text, dir.path()).unwrap();
    let w = c[0].sms_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("step 1: the SMS text may need 2 GSM-7 segments"),
        "{w:?}"
    );
    // One emoji makes it UCS-2: 70 characters per segment.
    let text = "[campaigns.s]\naudience = \"winback_quick\"\n[[campaigns.s.steps]]\nday = 0\nchannel = \"sms\"\ntext = \"We miss you 🙂 {{ first_name }}, come back for 10% off this week only, reply STOP\"\n";
    let w = resolve(text, dir.path()).unwrap()[0].sms_warnings();
    assert!(w[0].contains("UCS-2"), "{w:?}");
}

#[test]
fn estimate_replaces_fields_and_drops_tags() {
    assert_eq!(
        estimate_rendered("Hi {{ a }}{% if b %}!{% endif %}{# c #} {x}"),
        format!("Hi {}! {{x}}", "x".repeat(SMS_FIELD_ESTIMATE))
    );
}

/// One step of campaign `c` (audience winback_quick) with these extra lines.
fn one_step(lines: &str) -> String {
    format!(
        "[campaigns.c]\naudience = \"winback_quick\"\n[[campaigns.c.steps]]\nday = 0\n{lines}\n"
    )
}

const EMAIL_PARTS: &str = "subject = \"s\"\ntext = \"t {{ first_name }}\"\nunsubscribe_url = \"https://x/{{ unsubscribe_token }}\"";

#[test]
fn a_step_lists_channels_in_order_of_preference() {
    let dir = tempfile::tempdir().unwrap();
    let text = one_step(&format!(
        "channel = [\"sms\", \"email\"]\n{EMAIL_PARTS}\nsms_text = \"hi {{{{ nickname }}}}\""
    ));
    let c = resolve(&text, dir.path()).unwrap();
    let step = &c[0].steps[0];
    let names: Vec<(&str, Medium)> = step
        .channels
        .iter()
        .map(|c| (c.name.as_str(), c.medium))
        .collect();
    assert_eq!(names, vec![("sms", Medium::Sms), ("email", Medium::Email)]);
    assert!(!step.preferred);
    assert_eq!(
        step.templates_for(Medium::Sms).unwrap().source(Part::Text),
        Some("hi {{ nickname }}")
    );
    assert_eq!(
        step.templates_for(Medium::Email)
            .unwrap()
            .source(Part::Text),
        Some("t {{ first_name }}")
    );
    // Both media's fields are loaded and checked; the SMS text is named sms_text.
    let fields = c[0].audience_fields();
    assert!(fields.contains("first_name") && fields.contains("nickname"));
    let cols: Vec<String> = ["customer_id", "entry_date", "sltv", "first_name"]
        .map(String::from)
        .to_vec();
    let problems = c[0].validate_fields(&cols);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("step 1: template sms_text uses \"nickname\""),
        "{problems:?}"
    );
}

#[test]
fn a_preferred_step_reads_the_audience_column_and_has_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let text = one_step(&format!(
        "channel = \"preferred\"\nfallback = [\"email\"]\n{EMAIL_PARTS}\nsms_text = \"hi\""
    ));
    let c = resolve(&text, dir.path()).unwrap();
    let step = &c[0].steps[0];
    assert!(step.preferred);
    assert_eq!(step.channels.len(), 1);
    // The SMS text makes an SMS preference usable although the fallback is e-mail only.
    assert!(step.templates_for(Medium::Sms).is_some());
    assert!(c[0].audience_fields().contains("preferred_channel"));
    let cols: Vec<String> = ["customer_id", "entry_date", "sltv", "first_name"]
        .map(String::from)
        .to_vec();
    let problems = c[0].validate_fields(&cols);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("reads the customer's channel from column \"preferred_channel\""),
        "{problems:?}"
    );
    // A single-medium SMS step keeps `text` as its SMS text.
    let text = one_step("channel = [\"sms\"]\ntext = \"hi\"");
    let c = resolve(&text, dir.path()).unwrap();
    assert_eq!(
        c[0].steps[0]
            .templates_for(Medium::Sms)
            .unwrap()
            .source(Part::Text),
        Some("hi")
    );
}

#[test]
fn channel_lists_and_fallbacks_that_cannot_work_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let sms = "text = \"hi\"";
    for (lines, expected) in [
        (
            format!("channel = [\"email\", \"fax\"]\n{EMAIL_PARTS}"),
            "step 1: channel \"fax\" is not a [channels.*] table",
        ),
        (
            "channel = []".to_string(),
            "step 1: channel lists no channel",
        ),
        (
            format!("channel = [\"sms\", \"sms\"]\n{sms}"),
            "step 1: channel \"sms\" is listed twice",
        ),
        (
            format!("channel = \"preferred\"\n{sms}"),
            "step 1: channel = \"preferred\" needs fallback = [...]",
        ),
        (
            format!("channel = \"preferred\"\nfallback = []\n{sms}"),
            "step 1: fallback lists no channel",
        ),
        (
            format!("channel = \"preferred\"\nfallback = [\"pigeon\"]\n{sms}"),
            "step 1: channel \"pigeon\" is not a [channels.*] table",
        ),
        (
            format!("channel = \"sms\"\nfallback = [\"email\"]\n{sms}"),
            "step 1: fallback is only for channel = \"preferred\"",
        ),
        (
            format!("channel = [\"preferred\", \"sms\"]\n{sms}"),
            "step 1: \"preferred\" cannot be one of a list",
        ),
        (
            format!("channel = [\"email\", \"sms\"]\n{EMAIL_PARTS}"),
            "step 1: a step with e-mail and sms channels needs sms_text",
        ),
        (
            format!("channel = [\"email\"]\n{EMAIL_PARTS}\nsms_text = \"hi\""),
            "step 1: sms_text is for a step with an sms channel",
        ),
        (
            "channel = \"sms\"\ntext = \"a\"\nsms_text = \"b\"".to_string(),
            "step 1: give either text or sms_text, not both",
        ),
        (
            format!("channel = [\"email\", \"sms\"]\n{EMAIL_PARTS}\nsms_text = \"{{{{ a \""),
            "step 1: template sms_text: syntax error",
        ),
    ] {
        let text = one_step(&lines);
        let err = resolve(&text, dir.path()).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{lines}: {:?}", err.problems);
        assert!(
            err.problems[0].starts_with(&format!("campaign c: {expected}")),
            "{lines}: {:?}",
            err.problems
        );
    }
    // Neither a string nor a list of strings: the parse error says what is expected.
    let e = parse(&one_step("channel = 5")).unwrap_err();
    assert!(
        e.to_string()
            .contains("a channel name or a list of channel names"),
        "{e}"
    );
}

#[test]
fn a_channel_named_preferred_is_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let mut chans = channels();
    chans.insert("preferred".to_string(), ChannelRules::new(Medium::Sms));
    let known = tables();
    let ctx = CampaignContext {
        base_dir: dir.path(),
        known_tables: &known,
        channels: &chans,
    };
    let raw = parse(&one_step(
        "channel = \"preferred\"\nfallback = [\"sms\"]\ntext = \"hi\"",
    ))
    .unwrap();
    let err = resolve_campaigns(&raw, &ctx).unwrap_err();
    assert_eq!(
        err.problems,
        vec![
            "campaign c: step 1: channel \"preferred\" means the customer's preferred channel; rename [channels.preferred]"
                .to_string()
        ]
    );
}
