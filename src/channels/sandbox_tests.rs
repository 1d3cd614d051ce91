//! `sandbox = true`: SendGrid's `mail_settings.sandbox_mode.enable` and Mailgun's
//! `o:testmode` in every request of the channel, absent without it; refused on Twilio.

use serde_json::{Value, json};

use super::ChannelConfig;
use super::test_support::*;
use crate::message::Medium;

/// The body of the one request a channel would make for two e-mails.
fn body(toml_body: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", toml_body, dir.path());
    let previews = ch.preview(&messages(2, Medium::Email, "mail"));
    assert_eq!(previews.len(), 1);
    previews[0].body.clone()
}

#[test]
fn sendgrid_sandbox_sets_sandbox_mode_and_only_then() {
    let on = body(&sendgrid_toml("http://127.0.0.1:9", "sandbox = true\n"));
    assert_eq!(
        on["mail_settings"],
        json!({"sandbox_mode": {"enable": true}})
    );
    for off in ["sandbox = false\n", ""] {
        let b = body(&sendgrid_toml("http://127.0.0.1:9", off));
        assert!(b.get("mail_settings").is_none(), "{off:?}: {b}");
        assert_eq!(b["personalizations"].as_array().unwrap().len(), 2);
    }
}

/// The form's `o:testmode` values.
fn testmode(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0] == "o:testmode")
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn mailgun_sandbox_sets_testmode_and_only_then() {
    let on = body(&mailgun_toml("http://127.0.0.1:9", "sandbox = true\n"));
    assert_eq!(testmode(&on), vec!["yes".to_string()]);
    for off in ["sandbox = false\n", ""] {
        let b = body(&mailgun_toml("http://127.0.0.1:9", off));
        assert!(testmode(&b).is_empty(), "{off:?}: {b}");
    }
}

#[test]
fn twilio_refuses_sandbox_and_points_to_test_credentials() {
    let cfg: ChannelConfig =
        toml::from_str(&twilio_toml("http://127.0.0.1:9", "sandbox = true\n")).unwrap();
    let e = cfg.validate("sms").unwrap_err().to_string();
    assert!(e.contains("test credentials"), "{e}");
    assert!(e.contains("sandbox"), "{e}");
    assert_eq!(
        cfg.validate("sms").unwrap_err().blame(),
        crate::error::Blame::User
    );
    let cfg: ChannelConfig =
        toml::from_str(&twilio_toml("http://127.0.0.1:9", "sandbox = false\n")).unwrap();
    assert!(cfg.validate("sms").is_ok());
    assert!(!cfg.sandbox());
}
