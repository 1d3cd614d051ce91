use chrono::NaiveTime;

use std::time::Duration;

use super::*;
use crate::channels::QuietHours;
use crate::channels::test_support::env;
use crate::message::Medium;

fn parse(s: &str) -> Result<ChannelConfig, toml::de::Error> {
    toml::from_str(s)
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

#[test]
fn defaults_per_type() {
    let sg = parse("type = \"sendgrid\"\napi_key_env = \"SG_KEY\"\nfrom = \"a@b.co\"\n").unwrap();
    let s = sg.validate("mail").unwrap();
    assert_eq!(
        (s.medium, s.batch_size, s.concurrency),
        (Medium::Email, 1000, 4)
    );
    assert_eq!((s.rate_per_sec, s.retry.max_attempts), (100.0, 5));
    assert_eq!(s.timeout, Duration::from_secs(10));
    assert_eq!(s.quiet_hours, QuietHours::Off);
    let tw = parse(
        "type = \"twilio\"\naccount_sid_env = \"A\"\nauth_token_env = \"B\"\nfrom = \"+15550001111\"\n",
    )
    .unwrap();
    let s = tw.validate("sms").unwrap();
    assert_eq!((s.medium, s.batch_size), (Medium::Sms, 1));
    assert_eq!(s.quiet_hours, QuietHours::parse("21:00-09:00").unwrap());
    let f = parse("type = \"file\"\nmedium = \"sms\"\nquiet_hours = \"\"\n").unwrap();
    let s = f.validate("out").unwrap();
    assert_eq!((s.batch_size, s.quiet_hours), (10_000, QuietHours::Off));
    assert_eq!(TYPES.len(), 5);
    assert_eq!(f.type_name(), "file");
}

#[test]
fn rejects_unknown_keys_types_and_bad_values() {
    assert!(parse("type = \"file\"\nmedium = \"email\"\nbatchsize = 3\n").is_err());
    assert!(parse("type = \"carrier_pigeon\"\n").is_err());
    let invalid = |s: &str| parse(s).unwrap().validate("c").unwrap_err().to_string();
    assert!(invalid("type = \"file\"\n").contains("medium"));
    assert!(
        invalid("type = \"webhook\"\nurl = \"ftp://x\"\nsecret_env = \"S\"\nmedium = \"sms\"\n")
            .contains("url")
    );
    assert!(
        invalid("type = \"sendgrid\"\napi_key_env = \"SG.abc-123\"\nfrom = \"a@b.co\"\n")
            .contains("NAME")
    );
    assert!(
        invalid("type = \"sendgrid\"\napi_key_env = \"K\"\nfrom = \"nobody\"\n").contains("from")
    );
    assert!(
        invalid("type = \"sendgrid\"\napi_key_env = \"K\"\nfrom = \"a@b.co\"\nmedium = \"sms\"\n")
            .contains("sends email")
    );
    assert!(
        invalid("type = \"sendgrid\"\napi_key_env = \"K\"\nfrom = \"a@b.co\"\nbatch_size = 5000\n")
            .contains("limit")
    );
    assert!(
        invalid("type = \"twilio\"\naccount_sid_env = \"A\"\nauth_token_env = \"B\"\n")
            .contains("exactly one")
    );
    assert!(
        invalid("type = \"file\"\nmedium = \"sms\"\nquiet_hours = \"9pm-9am\"\n")
            .contains("quiet_hours")
    );
    assert!(
        invalid("type = \"file\"\nmedium = \"sms\"\nrate_per_sec = 0.0\n").contains("rate_per_sec")
    );
}

#[test]
fn build_names_the_missing_env_var_never_a_value() {
    let cfg =
        parse("type = \"sendgrid\"\napi_key_env = \"NOT_SET_KEY\"\nfrom = \"a@b.co\"\n").unwrap();
    let ctx = BuildContext {
        outbox: std::env::temp_dir(),
    };
    let err = cfg.build("mail", &env, &ctx).err().unwrap();
    assert!(matches!(err, ChannelError::MissingSecret { .. }));
    assert!(err.to_string().contains("NOT_SET_KEY"));
    let ok = parse("type = \"sendgrid\"\napi_key_env = \"SG_KEY\"\nfrom = \"a@b.co\"\n").unwrap();
    assert_eq!(ok.secret_env_names(), ["SG_KEY"]);
    assert!(ok.build("mail", &env, &ctx).is_ok());
}

#[test]
fn quiet_hours_over_midnight_and_within_a_day() {
    let night = QuietHours::parse("21:00-09:00").unwrap();
    assert!(night.contains(t(21, 0)) && night.contains(t(23, 59)) && night.contains(t(3, 0)));
    assert!(!night.contains(t(9, 0)) && !night.contains(t(12, 0)) && !night.contains(t(20, 59)));
    let lunch = QuietHours::parse("12:00-13:30").unwrap();
    assert!(lunch.contains(t(12, 0)) && lunch.contains(t(13, 29)) && !lunch.contains(t(13, 30)));
    assert_eq!(QuietHours::parse("").unwrap(), QuietHours::Off);
    assert!(QuietHours::parse("25:00-09:00").is_err());
}
