//! Twilio Programmable Messaging: one form-encoded `POST .../Messages.json` per SMS, basic
//! auth with the account SID and auth token; 201 returns the message `sid` we record.
//!
//! A 400's `code` says whose problem it is (codes from <https://www.twilio.com/docs/api/errors>):
//! 21211 (invalid `To`), 21614 (`To` not a mobile number), 21612 (`To` not reachable) and
//! 21408 (the destination's region is not enabled) reject that recipient; 21610 (the
//! recipient replied STOP) rejects them and records an SMS opt-out; 21606, 21212, 21659
//! (a `From` Twilio does not accept) and 20404 (no such account) stop the channel, naming
//! the setting. Twilio warns that it splits codes over time, so an unlisted code is the
//! recipient's only when its message is about the `To` number; otherwise the channel stops.

pub mod reconcile;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::api::{Api, HttpChannel, Refusal, one_each};
use super::http::{self, Body, Endpoint, PreparedRequest, Response};
use super::lookup::{Settlement, Unsettled};
use super::outcome::{ChannelError, Outcome};
use super::settings::{self, ChannelSettings, Limits, channel_config};
use crate::message::{Medium, Message};

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
        /// Refused when true: Twilio has no sandbox flag on a request (see `validate`).
        #[serde(default)]
        sandbox: Option<bool>,
    }
);

impl TwilioConfig {
    pub fn secret_env_names(&self) -> Vec<&str> {
        vec![&self.account_sid_env, &self.auth_token_env]
    }

    /// Checks the table without I/O.
    pub fn validate(&self, name: &str) -> Result<ChannelSettings, ChannelError> {
        let err = |reason: String| settings::config_error(name, reason);
        settings::check_url(self.base_url.as_deref(), "base_url").map_err(err)?;
        settings::check_env_name(&self.account_sid_env, "account_sid_env").map_err(err)?;
        settings::check_env_name(&self.auth_token_env, "auth_token_env").map_err(err)?;
        if self.sandbox == Some(true) {
            // Twilio's way to send without delivering is its test credentials (a test
            // Account SID and auth token, with the magic `From` +15005550006), not a flag:
            // <https://www.twilio.com/docs/iam/test-credentials>.
            return Err(err(
                "Twilio has no sandbox flag: remove `sandbox` and point account_sid_env and                  auth_token_env at your Twilio test credentials (Console, API keys & tokens,                  Test credentials) with from = \"+15005550006\": Twilio then charges                  nothing and delivers nothing"
                    .into(),
            ));
        }
        match (&self.from, &self.messaging_service_sid) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(err(
                    "set exactly one of `from` and `messaging_service_sid`".into()
                ));
            }
        }
        let resolved = self.common().resolve(
            name,
            Limits {
                type_name: "twilio",
                medium: Some(Medium::Sms),
                default_batch: 1,
                max_batch: 1,
                reconcile_after: settings::DEFAULT_RECONCILE_AFTER,
                schedule: Some(SCHEDULE_LEAD),
            },
        )?;
        if matches!(resolved.defer, settings::Defer::Schedule(_))
            && self.messaging_service_sid.is_none()
        {
            return Err(err(
                "defer = \"schedule\" needs `messaging_service_sid`: Twilio schedules messages of a Messaging Service only (set it instead of `from`, or use defer = \"next_run\")".into(),
            ));
        }
        Ok(resolved)
    }
}

/// The live channel, its credentials read through `env`.
pub fn build(
    settings: ChannelSettings,
    c: &TwilioConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HttpChannel<Twilio>, ChannelError> {
    let sid = settings::secret(&settings.name, env, &c.account_sid_env)?;
    let token = settings::secret(&settings.name, env, &c.auth_token_env)?;
    Ok(HttpChannel::new(Twilio::new(settings, c, sid, token)?))
}

pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// `SendAt` (UTC, `YYYY-MM-DDTHH:MM:SSZ`) with `ScheduleType=fixed`, on a Messaging Service
/// only, between 15 minutes and 35 days ahead (<https://www.twilio.com/docs/messaging/features/message-scheduling>,
/// errors 35114/35115/35118 at <https://www.twilio.com/docs/api/errors/35115>; newer pages
/// say 5 minutes, the older 15 is kept, plus a minute for the request to arrive).
const SCHEDULE_LEAD: settings::ScheduleLead = settings::ScheduleLead {
    min: std::time::Duration::from_secs(16 * 60),
    max: std::time::Duration::from_secs(35 * 86_400),
};

/// A Twilio channel.
pub struct Twilio {
    settings: ChannelSettings,
    endpoint: Endpoint,
    url: String,
    /// `("From", number)` or `("MessagingServiceSid", sid)`.
    sender: (&'static str, String),
    /// Where reconciliation asks what Twilio accepted.
    messages: reconcile::MessageList,
}

#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<i64>,
    message: Option<String>,
}

impl Twilio {
    pub fn new(
        settings: ChannelSettings,
        c: &TwilioConfig,
        account_sid: String,
        auth_token: String,
    ) -> Result<Twilio, ChannelError> {
        let base = c.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let base = base.trim_end_matches('/');
        let sid_path: String =
            url::form_urlencoded::byte_serialize(account_sid.as_bytes()).collect();
        let sender = match (&c.from, &c.messaging_service_sid) {
            (_, Some(ms)) => ("MessagingServiceSid", ms.clone()),
            (Some(f), None) => ("From", f.clone()),
            (None, None) => {
                return Err(ChannelError::Config {
                    channel: settings.name.clone(),
                    reason: "set `from` or `messaging_service_sid`".into(),
                });
            }
        };
        use base64::Engine as _;
        let endpoint = Endpoint::new(
            &settings.name,
            settings.timeout,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{account_sid}:{auth_token}"))
            ),
            format!("{} / {}", c.account_sid_env, c.auth_token_env),
        )?;
        let url = format!("{base}/2010-04-01/Accounts/{sid_path}/Messages.json");
        Ok(Twilio {
            messages: reconcile::MessageList {
                endpoint: endpoint.clone(),
                url: url.clone(),
                sender: sender.clone(),
            },
            endpoint,
            url,
            sender,
            settings,
        })
    }

    fn prepare(&self, m: &Message) -> PreparedRequest {
        let mut form = vec![
            ("To".into(), m.to.clone()),
            (self.sender.0.into(), self.sender.1.clone()),
            ("Body".into(), m.text.clone()),
        ];
        if let Some(at) = m.send_at {
            form.push(("SendAt".into(), at.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
            form.push(("ScheduleType".into(), "fixed".into()));
        }
        PreparedRequest {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers: vec![(
                "X-Winback-Idempotency-Key".into(),
                m.idempotency_key.clone(),
            )],
            secret_headers: self.endpoint.authorization(),
            body: Body::Form(form),
        }
    }
}

/// Whose problem a refused SMS is, by Twilio's error code.
fn refusal(code: Option<i64>, message: &str, reason: String) -> Refusal {
    let recipient = |o: Outcome| Refusal::Settled(vec![o]);
    match code {
        Some(21610) => recipient(Outcome::OptedOut { reason }),
        Some(21211 | 21614 | 21612 | 21408) => recipient(Outcome::rejected(reason)),
        Some(21606 | 21212 | 21659) => Refusal::Sender {
            setting: "from".into(),
            reason,
        },
        Some(20003 | 20404) => Refusal::Sender {
            setting: "account_sid_env".into(),
            reason,
        },
        _ if message.contains("'To'") || message.contains("To number") => {
            recipient(Outcome::rejected(reason))
        }
        _ => Refusal::Sender {
            setting: "from".into(),
            reason,
        },
    }
}

impl Api for Twilio {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn requests(&self, batch: &[Message]) -> Vec<Vec<usize>> {
        one_each(batch)
    }

    fn prepare(&self, sub: &[&Message]) -> PreparedRequest {
        Twilio::prepare(self, sub[0])
    }

    fn accepted(&self, resp: &Response, sub: &[&Message]) -> Vec<Outcome> {
        let sid = serde_json::from_str::<Created>(&resp.body)
            .ok()
            .and_then(|c| c.sid);
        vec![Outcome::Delivered { provider_id: sid }; sub.len()]
    }

    fn refused(&self, resp: &Response, sub: &[&Message]) -> Refusal {
        match serde_json::from_str::<ApiError>(&resp.body) {
            Ok(e) => {
                let message = e.message.unwrap_or_default();
                let reason = format!(
                    "HTTP {} (Twilio code {}): {}",
                    resp.status,
                    e.code.map_or("-".to_string(), |c| c.to_string()),
                    http::excerpt(&message, sub)
                );
                refusal(e.code, &message, reason)
            }
            Err(_) => Refusal::Sender {
                setting: "base_url".into(),
                reason: format!(
                    "HTTP {} with no Twilio error: {}",
                    resp.status,
                    http::excerpt(&resp.body, sub)
                ),
            },
        }
    }

    fn lookup<'a>(
        &'a self,
        sends: &'a [Unsettled],
    ) -> BoxFuture<'a, Result<Vec<Settlement>, ChannelError>> {
        Box::pin(self.messages.lookup(sends))
    }
}

#[cfg(test)]
mod tests;
