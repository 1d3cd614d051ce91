//! Settling `unknown` SMS rows (in flight at a crash) by asking Twilio what it accepted:
//! `GET .../Messages.json?To=..&DateSent>=..` lists the messages to a number since a date.
//! One message found means it went out (delivered, with its sid); none means Twilio never
//! took it (failed, so a later run may send it); several stay unknown for an operator.

use chrono::NaiveDate;
use serde::Deserialize;

use super::Twilio;
use crate::campaign::message::SendState;
use crate::channels::ChannelError;
use crate::channels::http::{self, Body, Prepared};
use crate::channels::retry::{self, StatusClass};

/// One message as Twilio lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProviderMessage {
    pub sid: String,
    pub status: String,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    messages: Vec<ProviderMessage>,
    next_page_uri: Option<String>,
}

/// Pages followed at most (50 messages each by default): a number texted more than this
/// since the date is ambiguous anyway.
const MAX_PAGES: usize = 10;

impl Twilio {
    /// The messages Twilio has to `to` sent on or after `since`.
    pub async fn list_messages(
        &self,
        to: &str,
        since: NaiveDate,
    ) -> Result<Vec<ProviderMessage>, ChannelError> {
        let err = |reason: String| ChannelError::Internal {
            channel: self.settings.name.clone(),
            reason,
        };
        let mut url = url::Url::parse(&self.url).map_err(|e| err(format!("bad URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("To", to)
            .append_pair("DateSent>", &since.to_string());
        let origin = url.origin().ascii_serialization();
        let mut next = Some(url.to_string());
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let Some(page_url) = next.take() else { break };
            let req = Prepared {
                method: reqwest::Method::GET,
                url: page_url,
                headers: vec![],
                secret_headers: vec![("Authorization".into(), self.auth.clone())],
                body: Body::Form(vec![]),
            };
            let resp = http::execute(&self.client, &req).await.map_err(err)?;
            match retry::classify(resp.status) {
                StatusClass::Success => {}
                StatusClass::Auth => {
                    return Err(ChannelError::Auth {
                        channel: self.settings.name.clone(),
                        env_var: self.token_env.clone(),
                        status: resp.status,
                    });
                }
                _ => return Err(err(format!("listing messages: HTTP {}", resp.status))),
            }
            let page: Page = serde_json::from_str(&resp.body)
                .map_err(|e| err(format!("listing messages: unexpected answer: {e}")))?;
            out.extend(page.messages);
            next = page.next_page_uri.map(|u| format!("{origin}{u}"));
        }
        Ok(out)
    }
}

/// What an `unknown` row becomes, given the messages Twilio lists for its number since it
/// was reserved: `(state, provider sid, reason)`, or None to leave it unknown.
pub fn settle(found: &[ProviderMessage]) -> Option<(SendState, Option<String>, String)> {
    let sent: Vec<&ProviderMessage> = found.iter().filter(|m| m.status != "canceled").collect();
    match sent.as_slice() {
        [] => Some((
            SendState::Failed,
            None,
            "reconciled: Twilio has no message to this number since the send; safe to resend"
                .into(),
        )),
        [m] if matches!(m.status.as_str(), "failed" | "undelivered") => Some((
            SendState::Rejected,
            Some(m.sid.clone()),
            format!("reconciled: Twilio accepted it, status {}", m.status),
        )),
        [m] => Some((
            SendState::Delivered,
            Some(m.sid.clone()),
            format!("reconciled: Twilio status {}", m.status),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::test_support::*;
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn lists_and_settles() {
        let server = MockServer::start().await;
        let to = phone_of(4);
        Mock::given(method("GET"))
            .and(path(format!("/2010-04-01/Accounts/{TW_SID}/Messages.json")))
            .and(query_param("To", to.as_str()))
            .and(query_param("DateSent>", "2025-03-10"))
            .and(header("authorization", basic(TW_SID, TW_TOKEN).as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_string(
                r#"{"messages":[{"sid":"SM9","status":"delivered","to":"x"}],"next_page_uri":null}"#,
            ))
            .expect(1)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let cfg: crate::channels::ChannelConfig =
            toml::from_str(&twilio_toml(&server.uri(), "")).unwrap();
        let settings = cfg.validate("sms").unwrap();
        let crate::channels::ChannelConfig::Twilio(c) = cfg else {
            unreachable!()
        };
        let tw = Twilio::new(settings, &c, TW_SID.into(), TW_TOKEN.into()).unwrap();
        let found = tw.list_messages(&to, as_of()).await.unwrap();
        assert_eq!(found.len(), 1);
        let (state, sid, _) = settle(&found).unwrap();
        assert_eq!((state, sid.as_deref()), (SendState::Delivered, Some("SM9")));
        assert_eq!(settle(&[]).unwrap().0, SendState::Failed);
        let two = vec![found[0].clone(), found[0].clone()];
        assert_eq!(settle(&two), None);
        drop(dir);
    }
}
