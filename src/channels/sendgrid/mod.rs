//! SendGrid v3 Mail Send: up to 1000 recipients per `POST /v3/mail/send`, one
//! `personalization` each (its own `to`, subject, idempotency key in `custom_args` and
//! RFC 8058 unsubscribe headers). 202 means accepted; `X-Message-Id` is recorded.
//!
//! Per-recipient content: when every message of a batch has the same subject and bodies they
//! go once as `content`; otherwise `content` holds the placeholders `-winback-text-` and
//! `-winback-html-`, and each personalization carries its own subject and its rendered bodies
//! as `substitutions` (SendGrid allows 10,000 bytes of substitutions per personalization; a
//! recipient over that goes in a request of its own). So 1000 recipients stay one request.

mod lookup;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::{Api, HttpChannel, Refusal};
use super::channel::{LIST_UNSUBSCRIBE_POST, list_unsubscribe};
use super::http::{self, Body, Endpoint, PreparedRequest, Response};
use super::lookup::{Settlement, Unsettled};
use super::outcome::{ChannelError, Outcome};
use super::settings::{self, ChannelSettings, Limits, channel_config};
use super::split::unique_address_groups;
use crate::message::{Medium, Message};

channel_config!(
    /// `type = "sendgrid"`.
    SendgridConfig {
        #[serde(default)]
        base_url: Option<String>,
        api_key_env: String,
        from: String,
        /// Requests per minute to the Email Activity API when reconciling (SendGrid
        /// allows 6).
        #[serde(default)]
        activity_requests_per_min: Option<f64>,
        /// Every request of this channel in SendGrid's sandbox mode
        /// (`mail_settings.sandbox_mode.enable`): validated, answered 200, never delivered.
        #[serde(default)]
        sandbox: Option<bool>,
    }
);

impl SendgridConfig {
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
        self.common().resolve(
            name,
            Limits {
                type_name: "sendgrid",
                medium: Some(Medium::Email),
                default_batch: 1000,
                max_batch: 1000,
                reconcile_after: settings::DEFAULT_RECONCILE_AFTER,
                schedule: Some(SCHEDULE_LEAD),
            },
        )
    }
}

/// The live channel, its API key read through `env`.
pub fn build(
    settings: ChannelSettings,
    c: &SendgridConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HttpChannel<Sendgrid>, ChannelError> {
    let key = settings::secret(&settings.name, env, &c.api_key_env)?;
    Ok(HttpChannel::new(Sendgrid::new(settings, c, key)?))
}

pub const DEFAULT_BASE_URL: &str = "https://api.sendgrid.com";
/// `send_at` (a personalization's UNIX timestamp, integer seconds) may be at most 72 hours
/// ahead: <https://sendgrid.com/docs/for-developers/sending-email/scheduling-parameters>.
const SCHEDULE_LEAD: settings::ScheduleLead = settings::ScheduleLead {
    min: std::time::Duration::ZERO,
    max: std::time::Duration::from_secs(72 * 3600),
};
const TEXT_TAG: &str = "-winback-text-";
const HTML_TAG: &str = "-winback-html-";
/// SendGrid's limit on the substitutions of one personalization.
const MAX_SUBSTITUTION_BYTES: usize = 10_000;

/// A SendGrid channel.
pub struct Sendgrid {
    settings: ChannelSettings,
    endpoint: Endpoint,
    url: String,
    from: Value,
    /// Where reconciliation asks what SendGrid accepted.
    activity: lookup::Activity,
    sandbox: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    message: Option<String>,
    field: Option<String>,
}

impl Sendgrid {
    pub fn new(
        settings: ChannelSettings,
        c: &SendgridConfig,
        api_key: String,
    ) -> Result<Sendgrid, ChannelError> {
        let base = c.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let endpoint = Endpoint::new(
            &settings.name,
            settings.timeout,
            format!("Bearer {api_key}"),
            c.api_key_env.clone(),
        )?;
        Ok(Sendgrid {
            activity: lookup::Activity {
                endpoint: endpoint.clone(),
                base: base.trim_end_matches('/').to_string(),
                per_min: c.activity_requests_per_min.unwrap_or(6.0),
            },
            endpoint,
            url: format!("{}/v3/mail/send", base.trim_end_matches('/')),
            from: parse_from(&c.from),
            sandbox: c.sandbox.unwrap_or(false),
            settings,
        })
    }

    /// The request for `batch` (all of it in one request).
    pub fn prepare(&self, batch: &[&Message]) -> PreparedRequest {
        let first = batch[0];
        let same = batch
            .iter()
            .all(|m| m.subject == first.subject && m.text == first.text && m.html == first.html);
        let any_html = batch.iter().any(|m| m.html.is_some());
        let personalizations: Vec<Personalization<'_>> = batch
            .iter()
            .map(|m| Personalization {
                to: [Address { email: &m.to }],
                custom_args: CustomArgs {
                    idempotency_key: &m.idempotency_key,
                },
                headers: list_unsubscribe(m).map(|lu| Headers {
                    list_unsubscribe: lu,
                    list_unsubscribe_post: m
                        .unsubscribe_url
                        .as_ref()
                        .map(|_| LIST_UNSUBSCRIBE_POST),
                }),
                subject: (!same).then(|| m.subject.as_deref().unwrap_or("")),
                send_at: m.send_at.map(|t| t.timestamp()),
                substitutions: (!same).then(|| Substitutions {
                    text: &m.text,
                    html: any_html.then(|| html_of(m)),
                }),
            })
            .collect();
        let (text, html) = if same {
            (first.text.clone(), any_html.then(|| html_of(first)))
        } else {
            (TEXT_TAG.to_string(), any_html.then(|| HTML_TAG.to_string()))
        };
        let mut content = vec![Content {
            kind: "text/plain",
            value: text,
        }];
        if let Some(h) = html {
            content.push(Content {
                kind: "text/html",
                value: h,
            });
        }
        let body = MailSend {
            personalizations,
            from: &self.from,
            subject: same.then(|| first.subject.as_deref().unwrap_or("")),
            content,
            mail_settings: self.sandbox.then_some(MailSettings {
                sandbox_mode: Enable { enable: true },
            }),
        };
        PreparedRequest {
            method: reqwest::Method::POST,
            url: self.url.clone(),
            headers: vec![],
            secret_headers: self.endpoint.authorization(),
            // Plain structs of strings: serialisation cannot fail.
            body: Body::Json(serde_json::to_vec(&body).unwrap_or_default()),
        }
    }
}

/// The v3 mail/send body, borrowing from the messages (no `Value` tree for 1000 recipients).
#[derive(Serialize)]
struct MailSend<'a> {
    personalizations: Vec<Personalization<'a>>,
    from: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    content: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mail_settings: Option<MailSettings>,
}

/// `"mail_settings": {"sandbox_mode": {"enable": true}}`, a JSON boolean (SendGrid's "Sandbox
/// Mode", <https://www.twilio.com/docs/sendgrid/for-developers/sending-email/sandbox-mode>:
/// the request is validated and answered 200 instead of 202, nothing is delivered, and no
/// Event Webhook or Email Activity event is made).
#[derive(Serialize)]
struct MailSettings {
    sandbox_mode: Enable,
}

#[derive(Serialize)]
struct Enable {
    enable: bool,
}

#[derive(Serialize)]
struct Personalization<'a> {
    to: [Address<'a>; 1],
    custom_args: CustomArgs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    /// `defer = "schedule"`: when SendGrid delivers it (UNIX seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    send_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    substitutions: Option<Substitutions<'a>>,
}

#[derive(Serialize)]
struct Address<'a> {
    email: &'a str,
}

#[derive(Serialize)]
struct CustomArgs<'a> {
    idempotency_key: &'a str,
}

#[derive(Serialize)]
struct Headers {
    #[serde(rename = "List-Unsubscribe")]
    list_unsubscribe: String,
    #[serde(
        rename = "List-Unsubscribe-Post",
        skip_serializing_if = "Option::is_none"
    )]
    list_unsubscribe_post: Option<&'static str>,
}

#[derive(Serialize)]
struct Substitutions<'a> {
    #[serde(rename = "-winback-text-")]
    text: &'a str,
    #[serde(rename = "-winback-html-", skip_serializing_if = "Option::is_none")]
    html: Option<String>,
}

#[derive(Serialize)]
struct Content {
    #[serde(rename = "type")]
    kind: &'static str,
    value: String,
}

/// `personalizations.3.to.0.email` or `personalizations[3]...` -> 3.
fn personalization_index(field: &str) -> Option<usize> {
    let rest = field.strip_prefix("personalizations")?;
    let digits: String = rest
        .trim_start_matches(['.', '['])
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// `Name <a@b.c>` -> `{email, name}`; `a@b.c` -> `{email}`.
fn parse_from(from: &str) -> Value {
    match (from.find('<'), from.rfind('>')) {
        (Some(i), Some(j)) if i < j => {
            let name = from[..i].trim().trim_matches('"');
            let email = from[i + 1..j].trim();
            if name.is_empty() {
                json!({ "email": email })
            } else {
                json!({ "email": email, "name": name })
            }
        }
        _ => json!({ "email": from.trim() }),
    }
}

/// The HTML body, or the text escaped into a `<pre>` when a message has none.
fn html_of(m: &Message) -> String {
    m.html.clone().unwrap_or_else(|| {
        let t = m
            .text
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        format!("<pre>{t}</pre>")
    })
}

/// Groups of one request each: recipients whose substitutions fit go together, others alone.
fn groups(batch: &[Message]) -> Vec<Vec<usize>> {
    let (mut fit, mut alone) = (Vec::new(), Vec::new());
    for (i, m) in batch.iter().enumerate() {
        let size = m.text.len() + m.html.as_ref().map_or(0, String::len) + 64;
        if size > MAX_SUBSTITUTION_BYTES {
            alone.push(vec![i]);
        } else {
            fit.push(i);
        }
    }
    let mut all = vec![fit];
    all.extend(alone);
    all
}

impl Api for Sendgrid {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Recipients whose substitutions fit go together, in requests where no address is
    /// repeated (SendGrid refuses a whole request, 400, when one address is in two
    /// personalizations: customers sharing an inbox each get their own message, in
    /// different requests); a recipient over the substitution limit goes alone.
    fn requests(&self, batch: &[Message]) -> Vec<Vec<usize>> {
        groups(batch)
            .iter()
            .flat_map(|g| unique_address_groups(batch, g))
            .collect()
    }

    fn prepare(&self, sub: &[&Message]) -> PreparedRequest {
        Sendgrid::prepare(self, sub)
    }

    /// 202: every personalization accepted; `X-Message-Id` identifies the request.
    fn accepted(&self, resp: &Response, sub: &[&Message]) -> Vec<Outcome> {
        let id = resp
            .headers
            .get("x-message-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        vec![Outcome::Delivered { provider_id: id }; sub.len()]
    }

    /// A 4xx whose errors name personalizations (or an address) concerns recipients;
    /// anything else (the `from`, the content, the account) is the sender's and stops the
    /// channel rather than rejecting the audience.
    fn refused(&self, resp: &Response, sub: &[&Message]) -> Refusal {
        let errors = serde_json::from_str::<ErrorBody>(&resp.body)
            .map(|b| b.errors)
            .unwrap_or_default();
        let mut named = Vec::new();
        for e in &errors {
            let msg = http::excerpt(e.message.as_deref().unwrap_or("invalid recipient"), sub);
            let why = format!("HTTP {} from SendGrid: {msg}", resp.status);
            if let Some(j) = e.field.as_deref().and_then(personalization_index) {
                named.push((j, why));
            } else if let Some(j) = sub
                .iter()
                .position(|m| e.message.as_deref().is_some_and(|t| t.contains(&m.to)))
            {
                named.push((j, why));
            }
        }
        let reason = format!(
            "HTTP {} from SendGrid: {}",
            resp.status,
            http::excerpt(&resp.body, sub)
        );
        let about_recipients = errors.iter().any(|e| {
            e.field
                .as_deref()
                .is_some_and(|f| f.starts_with("personalizations"))
        });
        if !named.is_empty() || about_recipients {
            return Refusal::Recipients {
                named,
                reason,
                split: about_recipients,
            };
        }
        let setting = errors
            .iter()
            .filter_map(|e| e.field.as_deref())
            .find(|f| f.starts_with("from") || f.starts_with("reply_to"))
            .map_or("from / content", |_| "from");
        Refusal::Sender {
            setting: setting.into(),
            reason,
        }
    }

    fn lookup<'a>(
        &'a self,
        sends: &'a [Unsettled],
    ) -> BoxFuture<'a, Result<Vec<Settlement>, ChannelError>> {
        Box::pin(self.activity.lookup(sends))
    }
}

#[cfg(test)]
mod tests;
