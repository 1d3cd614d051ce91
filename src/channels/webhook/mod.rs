//! A signed JSON webhook: `POST url` with `{"messages":[...]}` (each with its idempotency
//! key) and `X-Winback-Signature: sha256=<hex HMAC-SHA256 of the body>`. Only a 2xx counts
//! as delivered, and retries are finite: unlike arroyo's webhook sink, which takes any
//! response as success and retries forever.

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::WebhookConfig;
use super::http::{self, Body, Prepared};
use super::{Channel, ChannelError, ChannelSettings, Outcome, RequestPreview};
use crate::campaign::message::Message;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Winback-Signature";

/// A webhook channel.
pub struct Webhook {
    settings: ChannelSettings,
    client: reqwest::Client,
    url: String,
    secret: String,
    secret_env: String,
}

impl Webhook {
    pub fn new(
        settings: ChannelSettings,
        c: &WebhookConfig,
        secret: String,
    ) -> Result<Webhook, ChannelError> {
        Ok(Webhook {
            client: http::client(&settings.name, settings.timeout)?,
            url: c.url.clone(),
            secret,
            secret_env: c.secret_env.clone(),
            settings,
        })
    }

    /// `sha256=<hex>` of `body` under the channel's secret.
    pub fn sign(&self, body: &[u8]) -> String {
        sign(self.secret.as_bytes(), body)
    }

    fn prepare(&self, batch: &[Message]) -> Prepared {
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            messages: &'a [Message],
        }
        // A Message always serialises (strings and numbers only).
        let bytes = serde_json::to_vec(&Envelope { messages: batch }).unwrap_or_default();
        Prepared {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers: vec![],
            secret_headers: vec![(SIGNATURE_HEADER.into(), self.sign(&bytes))],
            body: Body::Json(bytes),
        }
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Channel for Webhook {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn send<'a>(
        &'a self,
        batch: &'a [Message],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ChannelError>> {
        Box::pin(async move {
            let refs: Vec<&Message> = batch.iter().collect();
            let resp = match http::execute(&self.client, &self.prepare(batch)).await {
                Ok(r) => r,
                Err(reason) => return Ok(vec![Outcome::retriable(reason, None); batch.len()]),
            };
            if let Some(o) =
                http::common_status(&self.settings.name, &self.secret_env, &resp, &refs)?
            {
                return Ok(o);
            }
            let outcome = if (200..300).contains(&resp.status) {
                Outcome::Delivered { provider_id: None }
            } else {
                Outcome::rejected(format!(
                    "HTTP {} from the webhook: {}",
                    resp.status,
                    http::excerpt(&resp.body, &refs)
                ))
            };
            Ok(vec![outcome; batch.len()])
        })
    }

    fn preview(&self, batch: &[Message]) -> Vec<RequestPreview> {
        let refs: Vec<&Message> = batch.iter().collect();
        vec![self.prepare(batch).preview(&self.settings.name, &refs)]
    }
}

#[cfg(test)]
mod tests;
