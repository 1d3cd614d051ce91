//! `[http]` and `[feedback]`: where `winback listen` answers, and how it checks and acts
//! on what providers tell it (bounces, complaints, unsubscribes).

use serde::Deserialize;

use crate::channels::settings::check_env_name;

/// `[http]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Address `winback listen` binds, and `winback serve` too when set.
    #[serde(default)]
    pub bind: Option<String>,
    /// The public base URL the reverse proxy serves the listener at (Twilio signs the full
    /// URL it calls, so `/events/twilio` is checked against `public_url` + path).
    #[serde(default)]
    pub public_url: Option<String>,
    /// The largest request body accepted (default 1 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Seconds a request may take (default 10).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// `[feedback]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeedback {
    /// The variable holding SendGrid's Signed Event Webhook verification key (base64).
    #[serde(default)]
    pub sendgrid_public_key_env: Option<String>,
    /// The variable holding Mailgun's HTTP webhook signing key.
    #[serde(default)]
    pub mailgun_signing_key_env: Option<String>,
    /// The variable holding the Twilio auth token its webhooks are signed with.
    #[serde(default)]
    pub twilio_auth_token_env: Option<String>,
    /// Soft bounces of one address within `soft_bounce_days` that suppress it (default 3).
    #[serde(default)]
    pub soft_bounce_limit: Option<u32>,
    #[serde(default)]
    pub soft_bounce_days: Option<u32>,
    /// Signed events older than this are refused as replays (default 600 seconds).
    #[serde(default)]
    pub max_event_age_secs: Option<u64>,
}

/// `[http]` with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub bind: Option<String>,
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub timeout: std::time::Duration,
}

/// `[feedback]` with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackSettings {
    pub sendgrid_public_key_env: Option<String>,
    pub mailgun_signing_key_env: Option<String>,
    pub twilio_auth_token_env: Option<String>,
    pub soft_bounce_limit: u32,
    pub soft_bounce_days: u32,
    pub max_event_age: std::time::Duration,
}

pub fn http(raw: &RawHttp, problems: &mut Vec<String>) -> HttpSettings {
    if let Some(bind) = &raw.bind
        && bind.parse::<std::net::SocketAddr>().is_err()
    {
        problems.push(format!(
            "http.bind: {bind:?} is not an address and port like \"127.0.0.1:8080\""
        ));
    }
    if let Some(url) = &raw.public_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        problems.push(format!(
            "http.public_url: {url:?} must be the http(s) URL the listener is reached at"
        ));
    }
    HttpSettings {
        bind: raw.bind.clone(),
        public_url: raw
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string()),
        max_body_bytes: raw.max_body_bytes.unwrap_or(1 << 20),
        timeout: std::time::Duration::from_secs(raw.timeout_secs.unwrap_or(10)),
    }
}

pub fn feedback(raw: &RawFeedback, problems: &mut Vec<String>) -> FeedbackSettings {
    for (key, var) in [
        ("sendgrid_public_key_env", &raw.sendgrid_public_key_env),
        ("mailgun_signing_key_env", &raw.mailgun_signing_key_env),
        ("twilio_auth_token_env", &raw.twilio_auth_token_env),
    ] {
        if let Some(var) = var
            && let Err(e) = check_env_name(var, key)
        {
            problems.push(format!("feedback.{e}"));
        }
    }
    let limit = raw.soft_bounce_limit.unwrap_or(3);
    let days = raw.soft_bounce_days.unwrap_or(7);
    if limit == 0 || days == 0 {
        problems.push("feedback.soft_bounce_limit and soft_bounce_days must be at least 1".into());
    }
    if days > 366 {
        problems.push(format!(
            "feedback.soft_bounce_days = {days}: at most 366 (a year of soft bounces is a hard bounce)"
        ));
    }
    FeedbackSettings {
        sendgrid_public_key_env: raw.sendgrid_public_key_env.clone(),
        mailgun_signing_key_env: raw.mailgun_signing_key_env.clone(),
        twilio_auth_token_env: raw.twilio_auth_token_env.clone(),
        soft_bounce_limit: limit,
        soft_bounce_days: days,
        max_event_age: std::time::Duration::from_secs(raw.max_event_age_secs.unwrap_or(600)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feedback_problems(text: &str) -> Vec<String> {
        let raw: RawFeedback = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        feedback(&raw, &mut problems);
        problems
    }

    #[test]
    fn the_soft_bounce_rule_must_be_at_least_one_in_one_day_and_at_most_a_year() {
        assert!(feedback_problems("").is_empty());
        assert!(feedback_problems("soft_bounce_limit = 2\nsoft_bounce_days = 366").is_empty());
        assert_eq!(feedback_problems("soft_bounce_days = 0").len(), 1);
        assert_eq!(
            feedback_problems("soft_bounce_days = 100000"),
            [
                "feedback.soft_bounce_days = 100000: at most 366 (a year of soft bounces is a hard bounce)"
            ]
        );
    }

    #[test]
    fn bind_must_be_an_address_and_port() {
        let raw: RawHttp = toml::from_str("bind = \"localhost\"").unwrap();
        let mut problems = Vec::new();
        http(&raw, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let raw: RawHttp = toml::from_str("bind = \"127.0.0.1:8080\"").unwrap();
        let mut problems = Vec::new();
        assert_eq!(
            http(&raw, &mut problems).bind.as_deref(),
            Some("127.0.0.1:8080")
        );
        assert!(problems.is_empty());
    }
}
