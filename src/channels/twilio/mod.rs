//! Twilio Programmable Messaging: one form-encoded `POST .../Messages.json` per SMS, basic
//! auth with the account SID and auth token; 201 returns the message `sid` we record, and a
//! 400 (e.g. code 21211, invalid `To`) rejects that one recipient only.

pub mod reconcile;

use futures::future::BoxFuture;
use serde::Deserialize;

use super::config::TwilioConfig;
use super::http::{self, Body, Prepared};
use super::{Channel, ChannelError, ChannelSettings, Outcome, RequestPreview};
use crate::campaign::message::Message;

pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// A Twilio channel.
pub struct Twilio {
    settings: ChannelSettings,
    client: reqwest::Client,
    url: String,
    sender: (&'static str, String),
    auth: String,
    token_env: String,
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
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"));
        Ok(Twilio {
            client: http::client(&settings.name, settings.timeout)?,
            url: format!("{base}/2010-04-01/Accounts/{sid_path}/Messages.json"),
            sender,
            auth: format!("Basic {auth}"),
            token_env: format!("{} / {}", c.account_sid_env, c.auth_token_env),
            settings,
        })
    }

    fn prepare(&self, m: &Message) -> Prepared {
        Prepared {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers: vec![(
                "X-Winback-Idempotency-Key".into(),
                m.idempotency_key.clone(),
            )],
            secret_headers: vec![("Authorization".into(), self.auth.clone())],
            body: Body::Form(vec![
                ("To".into(), m.to.clone()),
                (self.sender.0.into(), self.sender.1.clone()),
                ("Body".into(), m.text.clone()),
            ]),
        }
    }

    async fn send_one(&self, m: &Message) -> Result<Outcome, ChannelError> {
        let one = &[m];
        let resp = match http::execute(&self.client, &self.prepare(m)).await {
            Ok(r) => r,
            Err(reason) => return Ok(Outcome::retriable(reason, None)),
        };
        if let Some(mut o) = http::common_status(&self.settings.name, &self.token_env, &resp, one)?
        {
            return Ok(o.remove(0));
        }
        if (200..300).contains(&resp.status) {
            let sid = serde_json::from_str::<Created>(&resp.body)
                .ok()
                .and_then(|c| c.sid);
            return Ok(Outcome::Delivered { provider_id: sid });
        }
        let reason = match serde_json::from_str::<ApiError>(&resp.body) {
            Ok(e) => format!(
                "HTTP {} (Twilio code {}): {}",
                resp.status,
                e.code.map_or("-".to_string(), |c| c.to_string()),
                http::excerpt(e.message.as_deref().unwrap_or(""), one)
            ),
            Err(_) => format!("HTTP {}: {}", resp.status, http::excerpt(&resp.body, one)),
        };
        Ok(Outcome::rejected(reason))
    }
}

impl Channel for Twilio {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn send<'a>(
        &'a self,
        batch: &'a [Message],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ChannelError>> {
        Box::pin(async move {
            // batch_size is normally 1; a larger batch goes out one request at a time.
            let mut out = Vec::with_capacity(batch.len());
            for m in batch {
                out.push(self.send_one(m).await?);
            }
            Ok(out)
        })
    }

    fn preview(&self, batch: &[Message]) -> Vec<RequestPreview> {
        batch
            .iter()
            .map(|m| self.prepare(m).preview(&self.settings.name, &[m]))
            .collect()
    }
}

#[cfg(test)]
mod tests;
