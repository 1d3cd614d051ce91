//! A signed JSON webhook: `POST url` with `{"messages":[...]}` (each with its idempotency
//! key), `X-Winback-Timestamp: <unix seconds>` and
//! `X-Winback-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`, so a
//! receiver can refuse a replayed request (an old timestamp) as well as a forged one.
//! Only a 2xx counts as delivered, and retries are finite: unlike arroyo's webhook sink,
//! which takes any response as success and retries forever.
//!
//! Receivers deduplicate by `idempotency_key` (the README says so), which is why this is
//! the one channel whose possibly-processed requests (a timeout, a 5xx) are retried with
//! the same keys: see [`Api::policy`] below. A 4xx may name the recipients it refuses,
//! `{"rejected": [{"idempotency_key": "...", "reason": "..."}]}`: those are rejected and
//! the others sent again; a 4xx that names none stops the channel (it is about the
//! endpoint or its configuration, not the audience).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::api::{Api, HttpChannel, Refusal};
use super::classify::Policy;
use super::http::{self, Body, Endpoint, PreparedRequest, Response};
use super::outcome::{ChannelError, Outcome};
use super::settings::{self, ChannelSettings, Limits, channel_config};
use super::split::all;
use crate::message::Message;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Winback-Signature";
/// The header carrying the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Winback-Timestamp";

channel_config!(
    /// `type = "webhook"`.
    WebhookConfig {
        url: String,
        secret_env: String,
    }
);

impl WebhookConfig {
    pub fn secret_env_names(&self) -> Vec<&str> {
        vec![&self.secret_env]
    }

    /// Checks the table without I/O: https, or http to a loopback address only.
    pub fn validate(&self, name: &str) -> Result<ChannelSettings, ChannelError> {
        let err = |reason: String| settings::config_error(name, reason);
        settings::check_secure_url(&self.url, "url").map_err(err)?;
        settings::check_env_name(&self.secret_env, "secret_env").map_err(err)?;
        self.common().resolve(
            name,
            Limits {
                type_name: "webhook",
                medium: None,
                default_batch: 100,
                max_batch: usize::MAX,
                reconcile_after: settings::DEFAULT_RECONCILE_AFTER,
                schedule: None,
            },
        )
    }
}

/// The live channel, its secret read through `env`.
pub fn build(
    settings: ChannelSettings,
    c: &WebhookConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HttpChannel<Webhook>, ChannelError> {
    let secret = settings::secret(&settings.name, env, &c.secret_env)?;
    Ok(HttpChannel::new(Webhook::new(settings, c, secret)?))
}

/// A webhook channel.
pub struct Webhook {
    settings: ChannelSettings,
    /// No `Authorization`: requests are signed with the secret instead.
    endpoint: Endpoint,
    url: String,
    secret: String,
}

#[derive(Deserialize)]
struct RefusedBody {
    #[serde(default)]
    rejected: Vec<RefusedOne>,
}

#[derive(Deserialize)]
struct RefusedOne {
    idempotency_key: String,
    #[serde(default)]
    reason: Option<String>,
}

impl Webhook {
    pub fn new(
        settings: ChannelSettings,
        c: &WebhookConfig,
        secret: String,
    ) -> Result<Webhook, ChannelError> {
        Ok(Webhook {
            endpoint: Endpoint::new(
                &settings.name,
                settings.timeout,
                String::new(),
                c.secret_env.clone(),
            )?,
            url: c.url.clone(),
            secret,
            settings,
        })
    }

    /// `sha256=<hex>` of `timestamp.body` under the channel's secret.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        sign(self.secret.as_bytes(), timestamp, body)
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Api for Webhook {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The receiver deduplicates by idempotency key: a request that may have been
    /// processed is sent again with the same keys rather than left `unknown`.
    fn policy(&self) -> Policy {
        Policy {
            receiver_deduplicates: true,
            unavailable_with_retry_after_is_not_accepted: false,
        }
    }

    fn requests(&self, batch: &[Message]) -> Vec<Vec<usize>> {
        vec![all(batch)]
    }

    fn prepare(&self, sub: &[&Message]) -> PreparedRequest {
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            messages: &'a [&'a Message],
        }
        // A Message always serialises (strings and numbers only).
        let bytes = serde_json::to_vec(&Envelope { messages: sub }).unwrap_or_default();
        let timestamp = chrono::Utc::now().timestamp();
        PreparedRequest {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers: vec![(TIMESTAMP_HEADER.into(), timestamp.to_string())],
            secret_headers: vec![(SIGNATURE_HEADER.into(), self.sign(timestamp, &bytes))],
            body: Body::Json(bytes),
        }
    }

    fn accepted(&self, _resp: &Response, sub: &[&Message]) -> Vec<Outcome> {
        vec![Outcome::Delivered { provider_id: None }; sub.len()]
    }

    fn refused(&self, resp: &Response, sub: &[&Message]) -> Refusal {
        let reason = format!(
            "HTTP {} from the webhook: {}",
            resp.status,
            http::excerpt(&resp.body, sub)
        );
        let rejected = serde_json::from_str::<RefusedBody>(&resp.body)
            .map(|b| b.rejected)
            .unwrap_or_default();
        let named: Vec<(usize, String)> = rejected
            .iter()
            .filter_map(|r| {
                let j = sub
                    .iter()
                    .position(|m| m.idempotency_key == r.idempotency_key)?;
                let why = r.reason.as_deref().map_or(reason.clone(), |w| {
                    format!("{reason}: {}", http::excerpt(w, sub))
                });
                Some((j, why))
            })
            .collect();
        if named.is_empty() {
            return Refusal::Sender {
                setting: "url".into(),
                reason,
            };
        }
        Refusal::Recipients {
            named,
            reason,
            split: false,
        }
    }
}

#[cfg(test)]
mod tests;
