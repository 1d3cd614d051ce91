//! Settling `unknown` e-mails with SendGrid's Email Activity API:
//! `GET /v3/messages?query=(unique_args['idempotency_key']="K" OR ...)&limit=1000`.
//!
//! Formats, from SendGrid's published pages:
//! - query language and fields: <https://www.twilio.com/docs/sendgrid/for-developers/sending-email/getting-started-email-activity-api>;
//!   v3 `custom_args` are stored and queried as `unique_args`
//!   (<https://www.twilio.com/docs/sendgrid/for-developers/sending-email/unique-arguments>), with the
//!   map-subscript form `unique_args['name']="value"` (sendgrid-nodejs issue 1098);
//! - answer `{"messages":[{"msg_id","to_email","status",...}]}`, `status` one of `processed`,
//!   `delivered`, `not_delivered`, no paging (<https://twilio.com/docs/sendgrid/api-reference/email-activity/filter-all-messages>);
//! - 6 requests per minute (<https://www.twilio.com/docs/sendgrid/api-reference/email-activity>);
//! - it needs the paid Email Activity add-on; without it SendGrid answers 400
//!   "authorization required" or 403 "access forbidden": then nothing can be settled here.
//!
//! The answer names the address, not the custom argument, so a query never holds two
//! recipients with the same address: each message found is matched by address.

use std::time::Duration;

use serde::Deserialize;

use crate::channels::http::{self, Endpoint};
use crate::channels::lookup::{Settlement, Unsettled};
use crate::channels::outcome::ChannelError;

/// Keys per query (the URL stays under 8 KB).
const KEYS_PER_QUERY: usize = 40;

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    messages: Vec<Found>,
}

#[derive(Deserialize)]
struct Found {
    msg_id: Option<String>,
    to_email: Option<String>,
    status: Option<String>,
}

/// SendGrid's Email Activity API, as a channel reads it.
pub struct Activity {
    pub endpoint: Endpoint,
    /// `https://api.sendgrid.com`, or the configured `base_url`.
    pub base: String,
    /// Requests per minute (SendGrid allows 6).
    pub per_min: f64,
}

impl Activity {
    pub async fn lookup(&self, sends: &[Unsettled]) -> Result<Vec<Settlement>, ChannelError> {
        let mut out: Vec<Option<Settlement>> = vec![None; sends.len()];
        let pause = Duration::from_secs_f64(60.0 / self.per_min.max(0.01));
        for (n, query) in queries(sends).into_iter().enumerate() {
            if n > 0 {
                tokio::time::sleep(pause).await;
            }
            let keys: Vec<String> = query
                .iter()
                .map(|&i| {
                    format!(
                        "unique_args['idempotency_key']=\"{}\"",
                        sends[i].idempotency_key.replace('"', "")
                    )
                })
                .collect();
            let mut url = url::Url::parse(&format!("{}/v3/messages", self.base))
                .map_err(|e| self.endpoint.unavailable(format!("bad base_url: {e}")))?;
            url.query_pairs_mut()
                .append_pair("query", &format!("({})", keys.join(" OR ")))
                .append_pair("limit", "1000");
            let resp = self.endpoint.get(url.to_string(), "email activity").await?;
            match resp.status {
                200..=299 => {}
                400 | 403 | 404 => {
                    let why = format!(
                        "SendGrid's Email Activity API answered {} ({}): it needs the paid Email Activity add-on and a key allowed to read it; these rows cannot be reconciled here (check them in SendGrid's activity feed, or set on_unknown = \"resend\")",
                        resp.status,
                        http::excerpt(&resp.body, &[])
                    );
                    return Ok(vec![Settlement::open(why); sends.len()]);
                }
                s => {
                    return Err(self
                        .endpoint
                        .unavailable(format!("the Email Activity API answered HTTP {s}")));
                }
            }
            let answer: Answer = serde_json::from_str(&resp.body).map_err(|e| {
                self.endpoint
                    .unavailable(format!("unexpected Email Activity answer: {e}"))
            })?;
            for &i in &query {
                let to = sends[i].to.to_ascii_lowercase();
                let hits: Vec<&Found> = answer
                    .messages
                    .iter()
                    .filter(|m| {
                        m.to_email
                            .as_deref()
                            .is_some_and(|t| t.eq_ignore_ascii_case(&to))
                    })
                    .collect();
                out[i] = Some(settle(&hits));
            }
        }
        Ok(out
            .into_iter()
            .map(|s| s.unwrap_or_else(|| Settlement::open("not looked up")))
            .collect())
    }
}

/// What the messages SendGrid lists for one recipient's key prove.
fn settle(hits: &[&Found]) -> Settlement {
    match hits {
        [] => Settlement::NotAccepted {
            reason: "reconciled: SendGrid lists no message with this idempotency key".into(),
        },
        [m] if m.status.as_deref() == Some("not_delivered") => Settlement::AcceptedFailed {
            provider_id: m.msg_id.clone(),
            reason: "reconciled: SendGrid accepted it, status not_delivered".into(),
        },
        [m] => Settlement::Accepted {
            provider_id: m.msg_id.clone(),
            reason: format!(
                "reconciled: SendGrid status {}",
                m.status.as_deref().unwrap_or("?")
            ),
        },
        _ => Settlement::open("SendGrid lists several messages with this idempotency key"),
    }
}

/// Queries of at most [`KEYS_PER_QUERY`] keys, no address twice in one.
fn queries(sends: &[Unsettled]) -> Vec<Vec<usize>> {
    let mut out: Vec<(std::collections::HashSet<String>, Vec<usize>)> = Vec::new();
    for (i, s) in sends.iter().enumerate() {
        let key = s.to.to_ascii_lowercase();
        match out
            .iter_mut()
            .find(|(seen, q)| q.len() < KEYS_PER_QUERY && !seen.contains(&key))
        {
            Some((seen, q)) => {
                seen.insert(key);
                q.push(i);
            }
            None => out.push(([key].into_iter().collect(), vec![i])),
        }
    }
    out.into_iter().map(|(_, q)| q).collect()
}
