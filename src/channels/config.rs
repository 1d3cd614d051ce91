//! `[channels.NAME]` tables: a closed, internally tagged set of channel types registered in
//! one list, validated without I/O, and built into live channels with secrets read from the
//! environment variables the file names (never from the file itself).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Channel, ChannelError, ChannelSettings, RetryPolicy};
pub use crate::campaign::QuietHours;
use crate::campaign::message::Medium;

/// Every channel `type`, in the order of [`ChannelConfig`]'s variants.
pub const TYPES: &[&str] = &["file", "sendgrid", "mailgun", "twilio", "webhook"];

/// Declares a channel's config struct with the keys every channel shares appended.
macro_rules! channel_config {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// `"email"` or `"sms"`.
            #[serde(default)]
            pub medium: Option<Medium>,
            #[serde(default)]
            pub rate_per_sec: Option<f64>,
            #[serde(default)]
            pub concurrency: Option<usize>,
            #[serde(default)]
            pub timeout_secs: Option<f64>,
            #[serde(default)]
            pub max_attempts: Option<u32>,
            #[serde(default)]
            pub batch_size: Option<usize>,
            /// `"21:00-09:00"`; `""` turns quiet hours off. Default: on for SMS, off for e-mail.
            #[serde(default)]
            pub quiet_hours: Option<String>,
            #[serde(default)]
            pub daily_cap: Option<u64>,
            #[serde(default)]
            pub cost_per_message: Option<f64>,
            /// First backoff delay in milliseconds (default 500).
            #[serde(default)]
            pub retry_base_ms: Option<u64>,
            /// Longest backoff delay in milliseconds (default 60000).
            #[serde(default)]
            pub retry_cap_ms: Option<u64>,
        }

        impl $name {
            fn common(&self) -> Common<'_> {
                Common {
                    medium: self.medium,
                    rate_per_sec: self.rate_per_sec,
                    concurrency: self.concurrency,
                    timeout_secs: self.timeout_secs,
                    max_attempts: self.max_attempts,
                    batch_size: self.batch_size,
                    quiet_hours: self.quiet_hours.as_deref(),
                    daily_cap: self.daily_cap,
                    cost_per_message: self.cost_per_message,
                    retry_base_ms: self.retry_base_ms,
                    retry_cap_ms: self.retry_cap_ms,
                }
            }
        }
    };
}

channel_config!(
    /// `type = "file"`: JSONL files under the run's outbox.
    FileConfig {}
);
channel_config!(
    /// `type = "sendgrid"`.
    SendgridConfig {
        #[serde(default)]
        base_url: Option<String>,
        api_key_env: String,
        from: String,
    }
);
channel_config!(
    /// `type = "mailgun"`.
    MailgunConfig {
        #[serde(default)]
        base_url: Option<String>,
        domain: String,
        api_key_env: String,
        from: String,
    }
);
channel_config!(
    /// `type = "twilio"`: exactly one of `from` and `messaging_service_sid`.
    TwilioConfig {
        #[serde(default)]
        base_url: Option<String>,
        account_sid_env: String,
        auth_token_env: String,
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        messaging_service_sid: Option<String>,
    }
);
channel_config!(
    /// `type = "webhook"`.
    WebhookConfig {
        url: String,
        secret_env: String,
    }
);

/// One `[channels.NAME]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelConfig {
    File(FileConfig),
    Sendgrid(SendgridConfig),
    Mailgun(MailgunConfig),
    Twilio(TwilioConfig),
    Webhook(WebhookConfig),
}

struct Common<'a> {
    medium: Option<Medium>,
    rate_per_sec: Option<f64>,
    concurrency: Option<usize>,
    timeout_secs: Option<f64>,
    max_attempts: Option<u32>,
    batch_size: Option<usize>,
    quiet_hours: Option<&'a str>,
    daily_cap: Option<u64>,
    cost_per_message: Option<f64>,
    retry_base_ms: Option<u64>,
    retry_cap_ms: Option<u64>,
}

/// What building a channel needs besides its table.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Root of the file outbox, e.g. `<output>/_outbox/as_of=<D>/`.
    pub outbox: PathBuf,
}

impl ChannelConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelConfig::File(_) => TYPES[0],
            ChannelConfig::Sendgrid(_) => TYPES[1],
            ChannelConfig::Mailgun(_) => TYPES[2],
            ChannelConfig::Twilio(_) => TYPES[3],
            ChannelConfig::Webhook(_) => TYPES[4],
        }
    }

    /// Names of the environment variables holding this channel's secrets.
    pub fn secret_env_names(&self) -> Vec<&str> {
        match self {
            ChannelConfig::File(_) => vec![],
            ChannelConfig::Sendgrid(c) => vec![&c.api_key_env],
            ChannelConfig::Mailgun(c) => vec![&c.api_key_env],
            ChannelConfig::Twilio(c) => vec![&c.account_sid_env, &c.auth_token_env],
            ChannelConfig::Webhook(c) => vec![&c.secret_env],
        }
    }

    /// Checks everything that can be checked without I/O and resolves the shared settings.
    pub fn validate(&self, name: &str) -> Result<ChannelSettings, ChannelError> {
        let err = |reason: String| ChannelError::Config {
            channel: name.to_string(),
            reason,
        };
        let (common, implied, default_batch) = match self {
            ChannelConfig::File(c) => (c.common(), None, 10_000),
            ChannelConfig::Sendgrid(c) => {
                check_url(c.base_url.as_deref(), "base_url").map_err(err)?;
                check_env_name(&c.api_key_env, "api_key_env").map_err(err)?;
                check_from_email(&c.from).map_err(err)?;
                (c.common(), Some(Medium::Email), 1000)
            }
            ChannelConfig::Mailgun(c) => {
                check_url(c.base_url.as_deref(), "base_url").map_err(err)?;
                check_env_name(&c.api_key_env, "api_key_env").map_err(err)?;
                check_from_email(&c.from).map_err(err)?;
                if c.domain.trim().is_empty() || c.domain.contains('/') {
                    return Err(err(format!("domain {:?} is not a domain name", c.domain)));
                }
                (c.common(), Some(Medium::Email), 1000)
            }
            ChannelConfig::Twilio(c) => {
                check_url(c.base_url.as_deref(), "base_url").map_err(err)?;
                check_env_name(&c.account_sid_env, "account_sid_env").map_err(err)?;
                check_env_name(&c.auth_token_env, "auth_token_env").map_err(err)?;
                match (&c.from, &c.messaging_service_sid) {
                    (Some(_), None) | (None, Some(_)) => {}
                    _ => {
                        return Err(err(
                            "set exactly one of `from` and `messaging_service_sid`".into()
                        ));
                    }
                }
                (c.common(), Some(Medium::Sms), 1)
            }
            ChannelConfig::Webhook(c) => {
                check_url(Some(&c.url), "url").map_err(err)?;
                check_env_name(&c.secret_env, "secret_env").map_err(err)?;
                (c.common(), None, 100)
            }
        };
        let medium = match (implied, common.medium) {
            (Some(i), Some(m)) if i != m => {
                return Err(err(format!(
                    "type {} sends {}, not {}",
                    self.type_name(),
                    i.as_str(),
                    m.as_str()
                )));
            }
            (Some(i), _) => i,
            (None, Some(m)) => m,
            (None, None) => {
                return Err(err(format!(
                    "type {} needs `medium = \"email\"` or `\"sms\"`",
                    self.type_name()
                )));
            }
        };
        let rate = common.rate_per_sec.unwrap_or(100.0);
        if !(rate.is_finite() && rate > 0.0) {
            return Err(err(format!("rate_per_sec must be > 0, got {rate}")));
        }
        let timeout = common.timeout_secs.unwrap_or(10.0);
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(err(format!("timeout_secs must be > 0, got {timeout}")));
        }
        let positive = |v: Option<usize>, key: &str, default: usize| match v {
            Some(0) => Err(err(format!("{key} must be at least 1"))),
            v => Ok(v.unwrap_or(default)),
        };
        let concurrency = positive(common.concurrency, "concurrency", 4)?;
        let batch_size = positive(common.batch_size, "batch_size", default_batch)?;
        // Twilio takes one recipient per request; SendGrid and Mailgun at most 1000.
        let max_limit = match self {
            ChannelConfig::Twilio(_) => 1,
            ChannelConfig::Sendgrid(_) | ChannelConfig::Mailgun(_) => 1000,
            ChannelConfig::File(_) | ChannelConfig::Webhook(_) => usize::MAX,
        };
        if batch_size > max_limit {
            return Err(err(format!(
                "batch_size {batch_size} is over the provider's limit of {max_limit}"
            )));
        }
        let max_attempts = match common.max_attempts {
            Some(0) => return Err(err("max_attempts must be at least 1".into())),
            v => v.unwrap_or(5),
        };
        let quiet_hours = match common.quiet_hours {
            Some(s) => QuietHours::parse(s).map_err(|e| err(e.to_string()))?,
            None => QuietHours::default_for(medium),
        };
        let cost = common.cost_per_message.unwrap_or(0.0);
        if !(cost.is_finite() && cost >= 0.0) {
            return Err(err(format!("cost_per_message must be >= 0, got {cost}")));
        }
        let base = Duration::from_millis(common.retry_base_ms.unwrap_or(500));
        let cap = Duration::from_millis(common.retry_cap_ms.unwrap_or(60_000)).max(base);
        Ok(ChannelSettings {
            name: name.to_string(),
            medium,
            rate_per_sec: rate,
            concurrency,
            timeout: Duration::from_secs_f64(timeout),
            batch_size,
            quiet_hours,
            daily_cap: common.daily_cap,
            cost_per_message: cost,
            retry: RetryPolicy {
                max_attempts,
                base,
                cap,
            },
        })
    }

    /// Validates, reads the secrets through `env` and builds the live channel.
    pub fn build(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn Channel>, ChannelError> {
        let settings = self.validate(name)?;
        let secret = |var: &str| {
            env(var)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ChannelError::MissingSecret {
                    channel: name.to_string(),
                    env_var: var.to_string(),
                })
        };
        Ok(match self {
            ChannelConfig::File(_) => {
                Arc::new(super::file::FileChannel::new(settings, ctx.outbox.clone()))
            }
            ChannelConfig::Sendgrid(c) => Arc::new(super::sendgrid::Sendgrid::new(
                settings,
                c,
                secret(&c.api_key_env)?,
            )?),
            ChannelConfig::Mailgun(c) => Arc::new(super::mailgun::Mailgun::new(
                settings,
                c,
                secret(&c.api_key_env)?,
            )?),
            ChannelConfig::Twilio(c) => Arc::new(super::twilio::Twilio::new(
                settings,
                c,
                secret(&c.account_sid_env)?,
                secret(&c.auth_token_env)?,
            )?),
            ChannelConfig::Webhook(c) => Arc::new(super::webhook::Webhook::new(
                settings,
                c,
                secret(&c.secret_env)?,
            )?),
        })
    }
}

fn check_url(url: Option<&str>, key: &str) -> Result<(), String> {
    let Some(u) = url else { return Ok(()) };
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Ok(()),
        _ => Err(format!("{key} is not an http(s) URL")),
    }
}

fn check_env_name(var: &str, key: &str) -> Result<(), String> {
    let ok = !var.is_empty()
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !var.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key} must be the NAME of an environment variable (letters, digits, _), not its value"
        ))
    }
}

fn check_from_email(from: &str) -> Result<(), String> {
    // Accepts `a@b.c` and `Name <a@b.c>`.
    let addr = match (from.find('<'), from.rfind('>')) {
        (Some(i), Some(j)) if i < j => &from[i + 1..j],
        _ => from,
    };
    match addr.split_once('@') {
        Some((l, d)) if !l.is_empty() && d.contains('.') && !addr.contains(' ') => Ok(()),
        _ => Err("`from` is not an e-mail address".into()),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
