//! Settling `unknown` e-mails with Mailgun's Events API: `GET /v3/{domain}/events` with
//! `event=accepted`, `recipient=ADDR`, `begin` (epoch seconds) a little before the attempt,
//! `ascending=yes`, `limit=300`, following `paging.next` until a page comes back empty
//! (<https://documentation.mailgun.com/docs/mailgun/api-reference/send/mailgun/events/get-v3-domain_name-events>).
//!
//! Mailgun documents no filter on user variables, so events are matched on the
//! `user-variables.idempotency_key` each of our messages carries (`v:idempotency_key`): a
//! top-level map of each event item, values as strings. Mailgun indexes events with a lag
//! (its guide: trust a page once its last event is about 30 minutes old), hence the
//! channel's longer default `reconcile_after_secs`.

use serde::Deserialize;
use serde_json::Value;

use crate::channels::http::Endpoint;
use crate::channels::lookup::{CLOCK_SKEW, Settlement, Unsettled};
use crate::channels::outcome::ChannelError;

/// Pages read at most per recipient (300 events each).
const MAX_PAGES: usize = 10;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default)]
    paging: Paging,
}

#[derive(Deserialize, Default)]
struct Paging {
    next: Option<String>,
}

/// Mailgun's Events API of one domain, as a channel reads it.
pub struct Events {
    pub endpoint: Endpoint,
    /// `{base}/v3/{domain}/events`.
    pub url: String,
}

impl Events {
    pub async fn lookup(&self, sends: &[Unsettled]) -> Result<Vec<Settlement>, ChannelError> {
        let mut out = Vec::with_capacity(sends.len());
        for s in sends {
            out.push(self.one(s).await?);
        }
        Ok(out)
    }

    async fn one(&self, s: &Unsettled) -> Result<Settlement, ChannelError> {
        let mut url = url::Url::parse(&self.url)
            .map_err(|e| self.endpoint.unavailable(format!("bad base_url: {e}")))?;
        url.query_pairs_mut()
            .append_pair("event", "accepted")
            .append_pair("recipient", &s.to)
            .append_pair(
                "begin",
                &(s.attempted_at - CLOCK_SKEW).timestamp().to_string(),
            )
            .append_pair("ascending", "yes")
            .append_pair("limit", "300");
        let mut next = url.to_string();
        let mut found: Vec<Option<String>> = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.endpoint.get(next.clone(), "reading events").await?;
            if !(200..300).contains(&resp.status) {
                return Err(self
                    .endpoint
                    .unavailable(format!("reading events: HTTP {}", resp.status)));
            }
            let page: Page = serde_json::from_str(&resp.body).map_err(|e| {
                self.endpoint
                    .unavailable(format!("unexpected events answer: {e}"))
            })?;
            if page.items.is_empty() {
                return Ok(settle(&found));
            }
            for item in &page.items {
                let key = item
                    .get("user-variables")
                    .and_then(|v| v.get("idempotency_key"))
                    .and_then(Value::as_str);
                if key == Some(s.idempotency_key.as_str()) {
                    let id = item
                        .pointer("/message/headers/message-id")
                        .and_then(Value::as_str)
                        .map(|m| format!("<{}>", m.trim_matches(['<', '>'])));
                    found.push(id);
                }
            }
            match page.paging.next {
                Some(n) if n != next => next = n,
                _ => return Ok(settle(&found)),
            }
        }
        Ok(match found.as_slice() {
            [] => Settlement::open(format!(
                "Mailgun lists more than {} events for this recipient: check it by hand",
                MAX_PAGES * 300
            )),
            _ => settle(&found),
        })
    }
}

/// What the accepted events carrying the key prove.
fn settle(found: &[Option<String>]) -> Settlement {
    match found {
        [] => Settlement::NotAccepted {
            reason: "reconciled: Mailgun lists no accepted event with this idempotency key".into(),
        },
        [id] => Settlement::Accepted {
            provider_id: id.clone(),
            reason: "reconciled: Mailgun accepted it".into(),
        },
        _ => Settlement::open("Mailgun lists several accepted events with this idempotency key"),
    }
}
