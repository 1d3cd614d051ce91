//! Mailgun batch sending: one form-encoded `POST /v3/{domain}/messages` for up to 1000
//! recipients, basic auth `api:KEY`, per-recipient data (idempotency key, unsubscribe
//! header, and the rendered subject and bodies when they differ) in `recipient-variables`
//! and referenced as `%recipient.NAME%`. 200 with an `id` means accepted.
//!
//! Refusals (texts from Mailgun's "Error codes" of the sending API,
//! <https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/messages>):
//! `from parameter is not a valid address`, `Domain not found: D` and `Domain D is not
//! allowed to send: ...` are the sender's configuration and stop the channel; only an
//! error naming a recipient (its address, or the `to` parameter) splits the batch.

mod lookup;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::api::{Api, HttpChannel, Refusal};
use super::channel::{LIST_UNSUBSCRIBE_POST, list_unsubscribe};
use super::http::{self, Body, Endpoint, PreparedRequest, Response};
use super::lookup::{Settlement, Unsettled};
use super::outcome::{ChannelError, Outcome};
use super::settings::{self, ChannelSettings, Limits, channel_config};
use super::split::{all, unique_address_groups};
use crate::message::{Medium, Message};

channel_config!(
    /// `type = "mailgun"`.
    MailgunConfig {
        #[serde(default)]
        base_url: Option<String>,
        domain: String,
        api_key_env: String,
        from: String,
        /// Every request of this channel in Mailgun's test mode (`o:testmode=yes`):
        /// accepted, never delivered (and charged).
        #[serde(default)]
        sandbox: Option<bool>,
    }
);

impl MailgunConfig {
    pub fn secret_env_names(&self) -> Vec<&str> {
        vec![&self.api_key_env]
    }

    /// Checks the table without I/O.
    pub fn validate(&self, name: &str) -> Result<ChannelSettings, ChannelError> {
        settings::check_email_api(
            name,
            self.base_url.as_deref(),
            &self.api_key_env,
            &self.from,
        )?;
        if self.domain.trim().is_empty() || self.domain.contains('/') {
            return Err(settings::config_error(
                name,
                format!("domain {:?} is not a domain name", self.domain),
            ));
        }
        self.common().resolve(
            name,
            Limits {
                type_name: "mailgun",
                medium: Some(Medium::Email),
                default_batch: 1000,
                max_batch: 1000,
                // Mailgun: trust an events page once its last event is about 30 min old.
                reconcile_after: std::time::Duration::from_secs(30 * 60),
                schedule: Some(SCHEDULE_LEAD),
            },
        )
    }
}

/// The live channel, its API key read through `env`.
pub fn build(
    settings: ChannelSettings,
    c: &MailgunConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HttpChannel<Mailgun>, ChannelError> {
    let key = settings::secret(&settings.name, env, &c.api_key_env)?;
    Ok(HttpChannel::new(Mailgun::new(settings, c, key)?))
}

pub const DEFAULT_BASE_URL: &str = "https://api.mailgun.net";
/// `o:deliverytime` (an RFC 2822 date) schedules the whole request; Mailgun keeps a
/// scheduled message up to 3 days ahead (7 on plans with longer storage):
/// <https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/schedule-delivery>.
const SCHEDULE_LEAD: settings::ScheduleLead = settings::ScheduleLead {
    min: std::time::Duration::ZERO,
    max: std::time::Duration::from_secs(72 * 3600),
};

/// A Mailgun channel.
pub struct Mailgun {
    settings: ChannelSettings,
    endpoint: Endpoint,
    url: String,
    /// Where reconciliation asks what Mailgun accepted.
    events: lookup::Events,
    from: String,
    sandbox: bool,
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
        let endpoint = Endpoint::new(
            &settings.name,
            settings.timeout,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("api:{api_key}"))
            ),
            c.api_key_env.clone(),
        )?;
        let base = base.trim_end_matches('/');
        Ok(Mailgun {
            events: lookup::Events {
                endpoint: endpoint.clone(),
                url: format!("{base}/v3/{domain}/events"),
            },
            endpoint,
            url: format!("{base}/v3/{domain}/messages"),
            from: c.from.clone(),
            sandbox: c.sandbox.unwrap_or(false),
            settings,
        })
    }

    /// The request for `batch` (addresses must be unique within it).
    pub fn prepare(&self, batch: &[&Message]) -> PreparedRequest {
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
        if self.sandbox {
            // "Sending in Test Mode": `o:testmode` set to `yes` (or `true`): Mailgun accepts
            // the message and does not send it, and charges it
            // (<https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/test-mode>).
            form.push(("o:testmode".into(), "yes".into()));
        }
        // `requests` groups a batch by delivery time: one `o:deliverytime` per request.
        if let Some(at) = first.send_at {
            form.push(("o:deliverytime".into(), at.to_rfc2822()));
        }
        form.push((
            "recipient-variables".into(),
            Value::Object(vars).to_string(),
        ));
        PreparedRequest {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers: vec![],
            secret_headers: self.endpoint.authorization(),
            body: Body::Form(form),
        }
    }
}

impl Api for Mailgun {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Recipient variables are keyed by address: no address twice in one request; and
    /// `o:deliverytime` is the request's: one delivery time per request.
    fn requests(&self, batch: &[Message]) -> Vec<Vec<usize>> {
        if batch.iter().all(|m| m.send_at.is_none()) {
            return unique_address_groups(batch, &all(batch));
        }
        let mut by_time: std::collections::BTreeMap<_, Vec<usize>> = Default::default();
        for (i, m) in batch.iter().enumerate() {
            by_time.entry(m.send_at).or_default().push(i);
        }
        by_time
            .values()
            .flat_map(|idx| unique_address_groups(batch, idx))
            .collect()
    }

    fn prepare(&self, sub: &[&Message]) -> PreparedRequest {
        Mailgun::prepare(self, sub)
    }

    fn accepted(&self, resp: &Response, sub: &[&Message]) -> Vec<Outcome> {
        let id = serde_json::from_str::<Answer>(&resp.body)
            .ok()
            .and_then(|a| a.id);
        vec![Outcome::Delivered { provider_id: id }; sub.len()]
    }

    fn refused(&self, resp: &Response, sub: &[&Message]) -> Refusal {
        let message = serde_json::from_str::<Answer>(&resp.body)
            .ok()
            .and_then(|a| a.message)
            .unwrap_or_else(|| resp.body.clone());
        let why = format!(
            "HTTP {} from Mailgun: {}",
            resp.status,
            http::excerpt(&message, sub)
        );
        let lower = message.to_ascii_lowercase();
        if lower.starts_with("from ")
            || lower.contains("'from'")
            || lower.contains("from parameter")
        {
            return Refusal::Sender {
                setting: "from".into(),
                reason: why,
            };
        }
        if lower.contains("domain") {
            return Refusal::Sender {
                setting: "domain".into(),
                reason: why,
            };
        }
        let named: Vec<(usize, String)> = sub
            .iter()
            .position(|m| message.contains(&m.to))
            .map(|j| vec![(j, why.clone())])
            .unwrap_or_default();
        let about_to = lower.starts_with("to ")
            || lower.contains("'to'")
            || lower.contains("to parameter")
            || lower.contains("recipient");
        if named.is_empty() && !about_to {
            return Refusal::Sender {
                setting: "from / domain".into(),
                reason: why,
            };
        }
        Refusal::Recipients {
            named,
            reason: why,
            split: about_to,
        }
    }

    fn lookup<'a>(
        &'a self,
        sends: &'a [Unsettled],
    ) -> BoxFuture<'a, Result<Vec<Settlement>, ChannelError>> {
        Box::pin(self.events.lookup(sends))
    }
}

#[cfg(test)]
mod tests;
