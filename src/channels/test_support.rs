//! Helpers shared by the channel and delivery tests: messages with recognisable (fake)
//! addresses, channels built from TOML pointing at a local fake provider, a temp ledger.

use std::sync::Arc;

use chrono::NaiveDate;

use super::{BuildContext, Channel, ChannelConfig};
use crate::message::{Medium, Message};
use crate::state::State;

pub const SG_KEY: &str = "SG.test-key-0123456789abcdef";
pub const MG_KEY: &str = "key-mailgun-0123456789abcdef";
pub const TW_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TW_TOKEN: &str = "twilio-token-0123456789abcdef";
pub const WH_SECRET: &str = "webhook-secret-0123456789";

pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 10).unwrap_or_default()
}

pub fn email_of(i: usize) -> String {
    format!("customer{i:05}@example.com")
}

pub fn phone_of(i: usize) -> String {
    format!("+1555{i:07}")
}

/// Message `i` of `campaign` to `channel`.
pub fn message(i: usize, medium: Medium, channel: &str, campaign: &str) -> Message {
    let email = medium == Medium::Email;
    Message {
        campaign: campaign.to_string(),
        step: 1,
        customer_id: format!("c{i}"),
        channel: channel.to_string(),
        medium,
        to: if email { email_of(i) } else { phone_of(i) },
        idempotency_key: format!("{campaign}-1-c{i}-{channel}-2025-03-01"),
        as_of: as_of(),
        entry_date: as_of(),
        subject: email.then(|| format!("We miss you, customer {i}")),
        html: email.then(|| format!("<p>Hello customer {i}</p>")),
        text: format!("Hello customer {i}, come back for 10% off"),
        evidence: None,
        owner: None,
        unsubscribe_url: email.then(|| format!("https://example.com/u/{i}")),
        unsubscribe_mailto: email.then(|| "mailto:unsub@example.com".to_string()),
        cost: 0.01,
        timezone: None,
        send_at: None,
    }
}

pub fn messages(n: usize, medium: Medium, channel: &str) -> Vec<Message> {
    (0..n)
        .map(|i| message(i, medium, channel, "quick"))
        .collect()
}

pub fn env(name: &str) -> Option<String> {
    match name {
        "SG_KEY" => Some(SG_KEY.into()),
        "MG_KEY" => Some(MG_KEY.into()),
        "TW_SID" => Some(TW_SID.into()),
        "TW_TOKEN" => Some(TW_TOKEN.into()),
        "WH_SECRET" => Some(WH_SECRET.into()),
        _ => None,
    }
}

/// Builds channel `name` from a `[channels.NAME]` body (TOML without the header).
pub fn build(name: &str, toml_body: &str, outbox: &std::path::Path) -> Arc<dyn Channel> {
    let cfg: ChannelConfig = toml::from_str(toml_body).expect("channel config parses");
    let ctx = BuildContext {
        outbox: outbox.to_path_buf(),
    };
    match cfg.build(name, &env, &ctx) {
        Ok(c) => c,
        Err(e) => panic!("build failed: {e}"),
    }
}

/// Fast retries for tests.
pub const FAST: &str = "retry_base_ms = 1\nretry_cap_ms = 5\nrate_per_sec = 10000\n";

pub fn sendgrid_toml(base: &str, extra: &str) -> String {
    format!(
        "type = \"sendgrid\"\nbase_url = \"{base}\"\napi_key_env = \"SG_KEY\"\nfrom = \"Shop <shop@example.com>\"\n{FAST}{extra}"
    )
}

pub fn twilio_toml(base: &str, extra: &str) -> String {
    format!(
        "type = \"twilio\"\nbase_url = \"{base}\"\naccount_sid_env = \"TW_SID\"\nauth_token_env = \"TW_TOKEN\"\nfrom = \"+15550009999\"\n{FAST}{extra}"
    )
}

pub fn mailgun_toml(base: &str, extra: &str) -> String {
    format!(
        "type = \"mailgun\"\nbase_url = \"{base}\"\ndomain = \"mg.example.com\"\napi_key_env = \"MG_KEY\"\nfrom = \"shop@example.com\"\n{FAST}{extra}"
    )
}

pub fn webhook_toml(url: &str, extra: &str) -> String {
    format!(
        "type = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"WH_SECRET\"\nmedium = \"email\"\n{FAST}{extra}"
    )
}

pub fn temp_state() -> (tempfile::TempDir, State) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = State::open(dir.path()).expect("state opens");
    (dir, state)
}

pub fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// The look-up question for message `m`, attempted now.
pub fn unsettled(m: &Message) -> super::Unsettled {
    super::Unsettled {
        idempotency_key: m.idempotency_key.clone(),
        campaign: m.campaign.clone(),
        as_of: m.as_of,
        to: m.to.clone(),
        attempted_at: chrono::Utc::now(),
    }
}
