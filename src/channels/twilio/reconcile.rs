//! Settling `unknown` SMS by asking Twilio what it accepted:
//! `GET .../Messages.json?To=..&From=..&PageSize=..` lists the messages to a number, newest
//! first, following `next_page_uri`
//! (<https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources>).
//!
//! No `DateSent` filter: a message still `queued` (or `accepted`/`scheduled` through a
//! Messaging Service) has no `date_sent` yet and would be missed, and a missed message
//! would be sent twice. Messages are matched on `date_created` (RFC 2822) near the attempt,
//! on the sender (`from`, or `messaging_service_sid`, which the list cannot filter on) and
//! on an outbound `direction`. Any status but `canceled` means Twilio took it; `failed` and
//! `undelivered` mean it took it and could not deliver. "Not accepted" is concluded only
//! when every page was read and none matched.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::channels::http::Endpoint;
use crate::channels::lookup::{CLOCK_SKEW, Settlement, Unsettled};
use crate::channels::outcome::ChannelError;

/// One message as Twilio lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProviderMessage {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    messages: Vec<ProviderMessage>,
    next_page_uri: Option<String>,
}

/// Pages read at most per number (100 messages each): a number texted more than this is
/// left `unknown` for an operator.
const MAX_PAGES: usize = 10;
const PAGE_SIZE: &str = "100";

/// How long after the attempt a message of it can have been created.
const LATEST_AFTER_ATTEMPT: chrono::Duration = chrono::Duration::minutes(30);

/// Twilio's list of an account's messages, as a channel reads it.
pub struct MessageList {
    pub endpoint: Endpoint,
    /// `.../Accounts/{sid}/Messages.json`.
    pub url: String,
    /// `("From", number)` or `("MessagingServiceSid", sid)`: whose messages count.
    pub sender: (&'static str, String),
}

impl MessageList {
    pub async fn lookup(&self, sends: &[Unsettled]) -> Result<Vec<Settlement>, ChannelError> {
        let mut out = Vec::with_capacity(sends.len());
        for s in sends {
            let (listed, complete) = self.list(&s.to).await?;
            out.push(self.settle(&listed, complete, s.attempted_at));
        }
        Ok(out)
    }

    /// The messages Twilio lists to `to` (from this channel's number, when it has one), and
    /// whether every page was read.
    pub async fn list(&self, to: &str) -> Result<(Vec<ProviderMessage>, bool), ChannelError> {
        let mut url = url::Url::parse(&self.url)
            .map_err(|e| self.endpoint.unavailable(format!("bad URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("To", to);
            if self.sender.0 == "From" {
                q.append_pair("From", &self.sender.1);
            }
            q.append_pair("PageSize", PAGE_SIZE);
        }
        let origin = url.origin().ascii_serialization();
        let mut next = Some(url.to_string());
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some(page_url) = next.take() else {
                return Ok((out, true));
            };
            let resp = self.endpoint.get(page_url, "listing messages").await?;
            if !(200..300).contains(&resp.status) {
                return Err(self
                    .endpoint
                    .unavailable(format!("listing messages: HTTP {}", resp.status)));
            }
            let page: Page = serde_json::from_str(&resp.body).map_err(|e| {
                self.endpoint
                    .unavailable(format!("listing messages: unexpected answer: {e}"))
            })?;
            out.extend(page.messages);
            next = page.next_page_uri.map(|u| format!("{origin}{u}"));
        }
        Ok((out, next.is_none()))
    }

    fn is_ours(&self, m: &ProviderMessage) -> bool {
        let outbound = m
            .direction
            .as_deref()
            .is_none_or(|d| d.starts_with("outbound"));
        let sender = match self.sender.0 {
            "From" => m.from.as_deref().is_none_or(|f| f == self.sender.1),
            _ => m.messaging_service_sid.as_deref() == Some(self.sender.1.as_str()),
        };
        outbound && sender
    }

    /// What the listed messages prove about the attempt made at `at`.
    pub fn settle(
        &self,
        listed: &[ProviderMessage],
        complete: bool,
        at: DateTime<Utc>,
    ) -> Settlement {
        let window = (at - CLOCK_SKEW)..=(at + LATEST_AFTER_ATTEMPT);
        let mut undated = false;
        let candidates: Vec<&ProviderMessage> = listed
            .iter()
            .filter(|m| self.is_ours(m) && m.status != "canceled")
            .filter(|m| match created(m) {
                Some(t) => window.contains(&t),
                None => {
                    undated = true;
                    false
                }
            })
            .collect();
        match candidates.as_slice() {
            [] if undated => {
                Settlement::open("Twilio lists a message to this number without a date")
            }
            [] if complete => Settlement::NotAccepted {
                reason: "reconciled: Twilio lists no message to this number near the attempt"
                    .into(),
            },
            [] => Settlement::open(format!(
                "Twilio lists more than {} messages to this number: check it by hand",
                MAX_PAGES * 100
            )),
            [m] if matches!(m.status.as_str(), "failed" | "undelivered") => {
                Settlement::AcceptedFailed {
                    provider_id: Some(m.sid.clone()),
                    reason: format!("reconciled: Twilio accepted it, status {}", m.status),
                }
            }
            [m] => Settlement::Accepted {
                provider_id: Some(m.sid.clone()),
                reason: format!("reconciled: Twilio status {}", m.status),
            },
            _ => Settlement::open("Twilio lists several messages to this number near the attempt"),
        }
    }
}

/// Twilio dates: RFC 2822 (`Fri, 24 May 2019 17:44:50 +0000`).
fn created(m: &ProviderMessage) -> Option<DateTime<Utc>> {
    let d = m.date_created.as_deref()?;
    DateTime::parse_from_rfc2822(d)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
