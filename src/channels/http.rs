//! The HTTP plumbing the API channels share: one prepared request type that both `send`
//! executes and `--dry-run` previews (secrets masked), a rustls client with the channel's
//! timeout, and the mapping of transport failures and statuses to outcomes.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::channel::RequestPreview;
use super::classify::{self, Transport};
use super::outcome::ChannelError;
use crate::mask;
use crate::message::Message;

/// The body of a prepared request.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Serialised JSON, built once (large batches are not kept as a `Value` tree).
    Json(Vec<u8>),
    /// `application/x-www-form-urlencoded` pairs, in order (keys may repeat).
    Form(Vec<(String, String)>),
}

/// A request ready to go out, built once per (sub-)batch.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub method: reqwest::Method,
    pub url: String,
    /// Headers shown as-is in a preview.
    pub headers: Vec<(String, String)>,
    /// Headers whose values are secret (Authorization, signatures): masked in a preview.
    pub secret_headers: Vec<(String, String)>,
    pub body: Body,
}

impl PreparedRequest {
    /// The body bytes exactly as sent.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Json(v) => v.clone(),
            Body::Form(pairs) => url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes(),
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self.body {
            Body::Json(_) => "application/json",
            Body::Form(_) => "application/x-www-form-urlencoded",
        }
    }

    /// The dry-run view: secret header values replaced by `***`.
    pub fn preview(&self, channel: &str, batch: &[&Message]) -> RequestPreview {
        let mut headers: Vec<(String, String)> =
            vec![("Content-Type".to_string(), self.content_type().to_string())];
        headers.extend(self.headers.iter().cloned());
        headers.extend(
            self.secret_headers
                .iter()
                .map(|(k, _)| (k.clone(), mask::MASK.to_string())),
        );
        let body = match &self.body {
            Body::Json(v) => serde_json::from_slice(v).unwrap_or_default(),
            Body::Form(pairs) => serde_json::Value::Array(
                pairs
                    .iter()
                    .map(|(k, v)| serde_json::json!([k, v]))
                    .collect(),
            ),
        };
        RequestPreview {
            channel: channel.to_string(),
            method: self.method.to_string(),
            url: self.url.clone(),
            headers,
            body,
            idempotency_keys: batch.iter().map(|m| m.idempotency_key.clone()).collect(),
        }
    }
}

/// A provider's answer, body read (and truncated) in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

/// The largest response body kept (error bodies are short; a runaway body is cut).
const MAX_BODY: usize = 64 * 1024;

/// A rustls client with the channel's request timeout and pooled keep-alive connections.
pub fn client(channel: &str, timeout: Duration) -> Result<reqwest::Client, ChannelError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(256)
        // An API answers; it does not redirect a POST elsewhere (a 3xx is a refusal).
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("winback/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ChannelError::Internal {
            channel: channel.to_string(),
            reason: format!("cannot build the HTTP client: {}", e.without_url()),
        })
}

/// Executes `req`. A transport failure comes back sorted by whether the request can have
/// reached the provider whole, with a reason that holds no URL (URLs can hold account ids).
/// Once the status line is in, a body that cannot be read is taken as empty: the status
/// alone says whether the provider accepted the request.
pub async fn execute(
    client: &reqwest::Client,
    req: &PreparedRequest,
) -> Result<Response, Transport> {
    let mut b = client
        .request(req.method.clone(), &req.url)
        .header(reqwest::header::CONTENT_TYPE, req.content_type())
        .body(req.body_bytes());
    for (k, v) in req.headers.iter().chain(&req.secret_headers) {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp = b.send().await.map_err(|e| classify::transport_of(&e))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = match resp.bytes().await {
        Ok(bytes) => String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned(),
        Err(e) => {
            tracing::warn!(status, error = %e.without_url(), "the provider's answer was cut short after its status");
            String::new()
        }
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A short, address-free excerpt of a provider's answer, for ledger reasons and logs.
pub fn excerpt(body: &str, batch: &[&Message]) -> String {
    let cut: String = body.chars().take(300).collect();
    let one_line = cut.split_whitespace().collect::<Vec<_>>().join(" ");
    mask::scrub_addresses(&one_line, batch.iter().map(|m| m.to.as_str()))
}

/// Tries of one look-up request while the provider answers 429.
pub const LOOKUP_TRIES: u32 = 5;

/// A provider's API as a channel talks to it: the client (the channel's timeout, pooled
/// connections), the `Authorization` value, and the variable(s) to name when it is refused.
/// Sending and the reconciliation look-ups share it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub channel: String,
    pub client: reqwest::Client,
    /// The `Authorization` header value.
    pub auth: String,
    /// The environment variable(s) to name when the credentials are refused.
    pub credentials_env: String,
}

impl Endpoint {
    pub fn new(
        channel: &str,
        timeout: Duration,
        auth: String,
        credentials_env: String,
    ) -> Result<Endpoint, ChannelError> {
        Ok(Endpoint {
            channel: channel.to_string(),
            client: client(channel, timeout)?,
            auth,
            credentials_env,
        })
    }

    /// The `Authorization` header, for `PreparedRequest::secret_headers`.
    pub fn authorization(&self) -> Vec<(String, String)> {
        vec![("Authorization".into(), self.auth.clone())]
    }

    /// `GET url`. A 429 is waited out (`Retry-After` / `X-RateLimit-Reset`, else 1, 2, 4,
    /// 8 s) up to [`LOOKUP_TRIES`] times; refused credentials (401) are an error naming the
    /// variable; no answer is [`ChannelError::Unavailable`]; any other status comes back
    /// for the caller to read. A look-up only reads, so repeating it is always safe.
    pub async fn get(&self, url: String, what: &str) -> Result<Response, ChannelError> {
        let req = PreparedRequest {
            method: reqwest::Method::GET,
            url,
            headers: vec![],
            secret_headers: self.authorization(),
            body: Body::Json(vec![]),
        };
        for attempt in 0..LOOKUP_TRIES {
            let resp = execute(&self.client, &req)
                .await
                .map_err(|t| self.unavailable(format!("{what}: no answer ({t:?})")))?;
            match resp.status {
                401 => {
                    return Err(ChannelError::Auth {
                        channel: self.channel.clone(),
                        env_var: self.credentials_env.clone(),
                        status: resp.status,
                    });
                }
                429 if attempt + 1 < LOOKUP_TRIES => {
                    let wait = super::retry::retry_after(&resp.headers, chrono::Utc::now())
                        .unwrap_or(Duration::from_secs(1 << attempt))
                        .min(super::retry::MAX_PROVIDER_WAIT);
                    tracing::warn!(channel = %self.channel, wait_ms = wait.as_millis() as u64,
                        "{what}: rate limited by the provider, waiting");
                    tokio::time::sleep(wait).await;
                }
                429 => {
                    return Err(self.unavailable(format!(
                        "{what}: still rate limited after {LOOKUP_TRIES} tries"
                    )));
                }
                _ => return Ok(resp),
            }
        }
        unreachable!("the last try returns")
    }

    pub fn unavailable(&self, reason: String) -> ChannelError {
        ChannelError::Unavailable {
            channel: self.channel.clone(),
            reason,
        }
    }
}
