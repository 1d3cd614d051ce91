//! Mailgun batch sending: one form-encoded `POST /v3/{domain}/messages` for up to 1000
//! recipients, basic auth `api:KEY`, per-recipient data (idempotency key, unsubscribe
//! header, and the rendered subject and bodies when they differ) in `recipient-variables`
//! and referenced as `%recipient.NAME%`. 200 with an `id` means accepted.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::MailgunConfig;
use super::http::{self, Body, Prepared};
use super::split::{SubResult, send_split, unique_address_groups};
use super::{
    Channel, ChannelError, ChannelSettings, LIST_UNSUBSCRIBE_POST, Outcome, RequestPreview,
    list_unsubscribe,
};
use crate::campaign::message::Message;

pub const DEFAULT_BASE_URL: &str = "https://api.mailgun.net";

/// A Mailgun channel.
pub struct Mailgun {
    settings: ChannelSettings,
    client: reqwest::Client,
    url: String,
    from: String,
    auth: String,
    key_env: String,
}

#[derive(Deserialize)]
struct Answer {
    id: Option<String>,
    message: Option<String>,
}

impl Mailgun {
    pub fn new(
        settings: ChannelSettings,
        c: &MailgunConfig,
        api_key: String,
    ) -> Result<Mailgun, ChannelError> {
        use base64::Engine as _;
        let base = c.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let domain: String = url::form_urlencoded::byte_serialize(c.domain.as_bytes()).collect();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("api:{api_key}"));
        Ok(Mailgun {
            client: http::client(&settings.name, settings.timeout)?,
            url: format!("{}/v3/{domain}/messages", base.trim_end_matches('/')),
            from: c.from.clone(),
            auth: format!("Basic {auth}"),
            key_env: c.api_key_env.clone(),
            settings,
        })
    }

    /// The request for `batch` (addresses must be unique within it).
    pub fn prepare(&self, batch: &[&Message]) -> Prepared {
        let first = batch[0];
        let same = batch
            .iter()
            .all(|m| m.subject == first.subject && m.text == first.text && m.html == first.html);
        let mut vars = Map::new();
        let mut form: Vec<(String, String)> = vec![("from".into(), self.from.clone())];
        for m in batch {
            form.push(("to".into(), m.to.clone()));
            let mut v = json!({ "idempotency_key": m.idempotency_key });
            v["list_unsubscribe"] = json!(list_unsubscribe(m).unwrap_or_default());
            if !same {
                v["subject"] = json!(m.subject.as_deref().unwrap_or(""));
                v["text"] = json!(m.text);
                v["html"] = json!(m.html.as_deref().unwrap_or(""));
            }
            vars.insert(m.to.clone(), v);
        }
        let (subject, text, html) = if same {
            (
                first.subject.clone().unwrap_or_default(),
                first.text.clone(),
                first.html.clone(),
            )
        } else {
            (
                "%recipient.subject%".into(),
                "%recipient.text%".into(),
                batch
                    .iter()
                    .any(|m| m.html.is_some())
                    .then(|| "%recipient.html%".into()),
            )
        };
        form.push(("subject".into(), subject));
        form.push(("text".into(), text));
        if let Some(h) = html {
            form.push(("html".into(), h));
        }
        form.push((
            "v:idempotency_key".into(),
            "%recipient.idempotency_key%".into(),
        ));
        if batch.iter().any(|m| list_unsubscribe(m).is_some()) {
            form.push((
                "h:List-Unsubscribe".into(),
                "%recipient.list_unsubscribe%".into(),
            ));
            form.push((
                "h:List-Unsubscribe-Post".into(),
                LIST_UNSUBSCRIBE_POST.into(),
            ));
        }
        form.push((
            "recipient-variables".into(),
            Value::Object(vars).to_string(),
        ));
        Prepared {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers: vec![],
            secret_headers: vec![("Authorization".into(), self.auth.clone())],
            body: Body::Form(form),
        }
    }

    async fn send_sub(&self, sub: Vec<&Message>) -> Result<SubResult, ChannelError> {
        let resp = match http::execute(&self.client, &self.prepare(&sub)).await {
            Ok(r) => r,
            Err(reason) => {
                return Ok(SubResult::Settled(
                    sub.iter()
                        .map(|_| Outcome::retriable(reason.clone(), None))
                        .collect(),
                ));
            }
        };
        if let Some(o) = http::common_status(&self.settings.name, &self.key_env, &resp, &sub)? {
            return Ok(SubResult::Settled(o));
        }
        let answer = serde_json::from_str::<Answer>(&resp.body).ok();
        if (200..300).contains(&resp.status) {
            let id = answer.and_then(|a| a.id);
            return Ok(SubResult::Settled(
                sub.iter()
                    .map(|_| Outcome::Delivered {
                        provider_id: id.clone(),
                    })
                    .collect(),
            ));
        }
        let message = answer.and_then(|a| a.message).unwrap_or(resp.body.clone());
        let why = format!(
            "HTTP {} from Mailgun: {}",
            resp.status,
            http::excerpt(&message, &sub)
        );
        let named: Vec<(usize, String)> = sub
            .iter()
            .position(|m| message.contains(&m.to))
            .map(|j| vec![(j, why.clone())])
            .unwrap_or_default();
        let lower = message.to_ascii_lowercase();
        let split =
            lower.contains("address") || lower.contains("'to'") || lower.contains("recipient");
        Ok(SubResult::Refused {
            named,
            reason: why,
            split,
        })
    }
}

impl Channel for Mailgun {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn send<'a>(
        &'a self,
        batch: &'a [Message],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ChannelError>> {
        Box::pin(send_split(
            batch,
            unique_address_groups(batch),
            move |sub| Box::pin(self.send_sub(sub)),
        ))
    }

    fn preview(&self, batch: &[Message]) -> Vec<RequestPreview> {
        unique_address_groups(batch)
            .into_iter()
            .map(|g| {
                let sub: Vec<&Message> = g.iter().map(|&i| &batch[i]).collect();
                self.prepare(&sub).preview(&self.settings.name, &sub)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
