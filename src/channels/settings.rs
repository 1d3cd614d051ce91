//! The keys every `[channels.NAME]` table shares (appended to each provider's own config by
//! [`channel_config!`]), their checks, and the resolved [`ChannelSettings`] every channel
//! runs with. Providers import this module; it imports none of them.

use std::time::Duration;

use super::outcome::ChannelError;
use super::retry::RetryPolicy;
pub use crate::channel_rules::{Defer, QuietHours, ScheduleLead};
use crate::message::Medium;

/// The resolved per-channel settings every channel shares.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSettings {
    /// The `[channels.NAME]` key.
    pub name: String,
    pub medium: Medium,
    /// Requests per second (not recipients: providers limit API calls).
    pub rate_per_sec: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Recipients per request.
    pub batch_size: usize,
    /// Quiet hours in the recipient's local time.
    pub quiet_hours: QuietHours,
    /// What happens to a message in quiet hours when its batch is sent.
    pub defer: Defer,
    pub daily_cap: Option<u64>,
    pub cost_per_message: f64,
    /// Attempts per recipient per run, and the backoff between them.
    pub retry: RetryPolicy,
    /// How long after an attempt an `unknown` row may be settled by asking the provider
    /// (providers index what they accepted with a lag).
    pub reconcile_after: Duration,
}

impl ChannelSettings {
    /// What campaign planning needs to know of this channel.
    pub fn rules(&self) -> crate::channel_rules::ChannelRules {
        crate::channel_rules::ChannelRules {
            medium: self.medium,
            quiet_hours: self.quiet_hours,
            daily_cap: self.daily_cap.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
            cost_per_message: self.cost_per_message,
            defer: self.defer,
        }
    }
}

/// Declares a provider's config struct with the keys every channel shares appended
/// (serde's `flatten` cannot be combined with `deny_unknown_fields`, hence a macro).
macro_rules! channel_config {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// `"email"` or `"sms"`.
            #[serde(default)]
            pub medium: Option<$crate::message::Medium>,
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
            /// In quiet hours: `"next_run"` (default: deferred to the next run) or
            /// `"schedule"` (sent now for delivery when the window opens; providers that
            /// schedule only).
            #[serde(default)]
            pub defer: Option<String>,
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
            /// Seconds after an attempt before an `unknown` row is looked up (default 600).
            #[serde(default)]
            pub reconcile_after_secs: Option<u64>,
        }

        impl $name {
            pub(crate) fn common(&self) -> $crate::channels::settings::Common<'_> {
                $crate::channels::settings::Common {
                    medium: self.medium,
                    rate_per_sec: self.rate_per_sec,
                    concurrency: self.concurrency,
                    timeout_secs: self.timeout_secs,
                    max_attempts: self.max_attempts,
                    batch_size: self.batch_size,
                    quiet_hours: self.quiet_hours.as_deref(),
                    defer: self.defer.as_deref(),
                    daily_cap: self.daily_cap,
                    cost_per_message: self.cost_per_message,
                    retry_base_ms: self.retry_base_ms,
                    retry_cap_ms: self.retry_cap_ms,
                    reconcile_after_secs: self.reconcile_after_secs,
                }
            }
        }
    };
}
pub(crate) use channel_config;

/// The shared keys of one table, borrowed.
pub struct Common<'a> {
    pub medium: Option<Medium>,
    pub rate_per_sec: Option<f64>,
    pub concurrency: Option<usize>,
    pub timeout_secs: Option<f64>,
    pub max_attempts: Option<u32>,
    pub batch_size: Option<usize>,
    pub quiet_hours: Option<&'a str>,
    pub defer: Option<&'a str>,
    pub daily_cap: Option<u64>,
    pub cost_per_message: Option<f64>,
    pub retry_base_ms: Option<u64>,
    pub retry_cap_ms: Option<u64>,
    pub reconcile_after_secs: Option<u64>,
}

/// What a provider says of itself when its shared keys are resolved.
pub struct Limits {
    pub type_name: &'static str,
    /// The medium the provider sends (None: the table must say).
    pub medium: Option<Medium>,
    pub default_batch: usize,
    /// The provider's own limit of recipients per request.
    pub max_batch: usize,
    /// How long the provider takes to list what it accepted (the default settle delay).
    pub reconcile_after: Duration,
    /// How far ahead the provider schedules a delivery (None: it cannot).
    pub schedule: Option<ScheduleLead>,
}

/// Default settle delay of `unknown` rows.
pub const DEFAULT_RECONCILE_AFTER: Duration = Duration::from_secs(600);

impl Common<'_> {
    /// Checks the shared keys and resolves them for channel `name`.
    pub fn resolve(&self, name: &str, limits: Limits) -> Result<ChannelSettings, ChannelError> {
        let err = |reason: String| config_error(name, reason);
        let medium = match (limits.medium, self.medium) {
            (Some(i), Some(m)) if i != m => {
                return Err(err(format!(
                    "type {} sends {}, not {}",
                    limits.type_name,
                    i.as_str(),
                    m.as_str()
                )));
            }
            (Some(i), _) => i,
            (None, Some(m)) => m,
            (None, None) => {
                return Err(err(format!(
                    "type {} needs `medium = \"email\"` or `\"sms\"`",
                    limits.type_name
                )));
            }
        };
        let rate = self.rate_per_sec.unwrap_or(100.0);
        if !(rate.is_finite() && rate > 0.0) {
            return Err(err(format!("rate_per_sec must be > 0, got {rate}")));
        }
        let timeout = self.timeout_secs.unwrap_or(10.0);
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(err(format!("timeout_secs must be > 0, got {timeout}")));
        }
        let positive = |v: Option<usize>, key: &str, default: usize| match v {
            Some(0) => Err(err(format!("{key} must be at least 1"))),
            v => Ok(v.unwrap_or(default)),
        };
        let concurrency = positive(self.concurrency, "concurrency", 4)?;
        let batch_size = positive(self.batch_size, "batch_size", limits.default_batch)?;
        if batch_size > limits.max_batch {
            return Err(err(format!(
                "batch_size {batch_size} is over the provider's limit of {}",
                limits.max_batch
            )));
        }
        let max_attempts = match self.max_attempts {
            Some(0) => return Err(err("max_attempts must be at least 1".into())),
            v => v.unwrap_or(5),
        };
        let quiet_hours = match self.quiet_hours {
            Some(s) => QuietHours::parse(s).map_err(|e| err(e.to_string()))?,
            None => QuietHours::default_for(medium),
        };
        let defer = Defer::parse(self.defer.unwrap_or("next_run"), limits.schedule).map_err(err)?;
        let cost = self.cost_per_message.unwrap_or(0.0);
        if !(cost.is_finite() && cost >= 0.0) {
            return Err(err(format!("cost_per_message must be >= 0, got {cost}")));
        }
        let base = Duration::from_millis(self.retry_base_ms.unwrap_or(500));
        let cap = Duration::from_millis(self.retry_cap_ms.unwrap_or(60_000)).max(base);
        Ok(ChannelSettings {
            name: name.to_string(),
            medium,
            rate_per_sec: rate,
            concurrency,
            timeout: Duration::from_secs_f64(timeout),
            batch_size,
            quiet_hours,
            defer,
            daily_cap: self.daily_cap,
            cost_per_message: cost,
            retry: RetryPolicy {
                max_attempts,
                base,
                cap,
            },
            reconcile_after: self
                .reconcile_after_secs
                .map_or(limits.reconcile_after, Duration::from_secs),
        })
    }
}

pub fn config_error(channel: &str, reason: String) -> ChannelError {
    ChannelError::Config {
        channel: channel.to_string(),
        reason,
    }
}

/// An optional `base_url`-like key: an http(s) URL with a host.
pub fn check_url(url: Option<&str>, key: &str) -> Result<(), String> {
    let Some(u) = url else { return Ok(()) };
    match url::Url::parse(u) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => Ok(()),
        _ => Err(format!("{key} is not an http(s) URL")),
    }
}

/// An https URL, or http to a loopback host only (a local receiver or a test's fake):
/// messages and signatures never cross a network in clear text.
pub fn check_secure_url(url: &str, key: &str) -> Result<(), String> {
    check_url(Some(url), key)?;
    let p = url::Url::parse(url).map_err(|_| format!("{key} is not an http(s) URL"))?;
    let loopback = match p.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if p.scheme() == "http" && !loopback {
        return Err(format!(
            "{key} must be https (plain http is accepted for loopback addresses only)"
        ));
    }
    Ok(())
}

pub fn check_env_name(var: &str, key: &str) -> Result<(), String> {
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

pub fn check_from_email(from: &str) -> Result<(), String> {
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

/// The keys an e-mail API's table shares: an optional `base_url`, the name of the variable
/// holding the key, a `from` address.
pub fn check_email_api(
    name: &str,
    base_url: Option<&str>,
    api_key_env: &str,
    from: &str,
) -> Result<(), ChannelError> {
    let err = |reason: String| config_error(name, reason);
    check_url(base_url, "base_url").map_err(err)?;
    check_env_name(api_key_env, "api_key_env").map_err(err)?;
    check_from_email(from).map_err(err)
}

/// Reads secret `var` through `env`; empty counts as unset.
pub fn secret(
    channel: &str,
    env: &dyn Fn(&str) -> Option<String>,
    var: &str,
) -> Result<String, ChannelError> {
    env(var)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ChannelError::MissingSecret {
            channel: channel.to_string(),
            env_var: var.to_string(),
        })
}
