//! Whether a failed attempt may have been processed by the provider, in one place, as data.
//!
//! SendGrid, Mailgun and Twilio take no idempotency key for sending: repeating a request they
//! accepted is a second e-mail or SMS. So only what the provider **cannot** have processed is
//! retried: no connection, a request not fully written, a 429 (which pauses the channel),
//! and a 503 with `Retry-After` where the provider documents that as "not accepted". A
//! timeout after the request was written, a reset or EOF before the status line, a 408 or
//! any other 5xx is *possibly processed*: the recipients become `unknown` with the reason and
//! are settled later by asking the provider (`winback sends --reconcile`).
//!
//! The webhook channel is the exception, chosen where its [`Policy`] is built: every message
//! carries its `idempotency_key` and receivers deduplicate by it, so a possibly-processed
//! webhook request may be repeated with the same keys.

use reqwest::header::HeaderMap;

/// What a provider's API guarantees, as the classification needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The receiver deduplicates by idempotency key: a possibly-processed request may be
    /// repeated (the webhook channel).
    pub receiver_deduplicates: bool,
    /// A 503 that carries `Retry-After` means the provider did not accept the request.
    pub unavailable_with_retry_after_is_not_accepted: bool,
}

impl Policy {
    /// An API without idempotency keys: nothing possibly processed is ever repeated.
    pub const NO_IDEMPOTENCY: Policy = Policy {
        receiver_deduplicates: false,
        unavailable_with_retry_after_is_not_accepted: false,
    };
}

/// How one attempt is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: the provider accepted it (the provider reads the answer for the ids).
    Accepted,
    /// 429: pause the whole channel and try again; no attempt used up.
    RateLimited,
    /// 401, 403: the credentials are wrong; stop the channel.
    Credentials,
    /// The provider cannot have processed it: try again after a backoff.
    NotProcessed(String),
    /// The provider may have processed it: `unknown`, never repeated blindly.
    MaybeProcessed(String),
    /// Any other 4xx: a permanent refusal whose meaning the provider decides (a recipient,
    /// or the sender's own configuration).
    Refused,
}

/// A transport failure, by whether the request can have reached the provider whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// No connection was made (refused, DNS, TLS handshake, connect timeout), or the body
    /// was not fully written: the provider has no complete request.
    NotSent(String),
    /// The request was written and no answer came (timeout, reset, EOF before the status).
    AfterSend(String),
}

/// The verdict on an answered request.
pub fn status(status: u16, headers: &HeaderMap, policy: Policy) -> Verdict {
    match status {
        200..=299 => Verdict::Accepted,
        429 => Verdict::RateLimited,
        401 | 403 => Verdict::Credentials,
        503 if policy.unavailable_with_retry_after_is_not_accepted
            && headers.contains_key(reqwest::header::RETRY_AFTER) =>
        {
            Verdict::NotProcessed("provider 503 (not accepted, Retry-After)".into())
        }
        408 | 500..=599 => possibly(format!("provider {status}"), policy),
        _ => Verdict::Refused,
    }
}

/// The verdict on a request that got no answer.
pub fn transport(t: &Transport, policy: Policy) -> Verdict {
    match t {
        Transport::NotSent(reason) => Verdict::NotProcessed(reason.clone()),
        Transport::AfterSend(reason) => possibly(reason.clone(), policy),
    }
}

fn possibly(reason: String, policy: Policy) -> Verdict {
    if policy.receiver_deduplicates {
        Verdict::NotProcessed(format!(
            "{reason} (receiver deduplicates by idempotency_key)"
        ))
    } else {
        Verdict::MaybeProcessed(reason)
    }
}

/// Sorts a reqwest failure by whether the request went out whole. A connect error
/// happens before anything is written; hyper's "error writing a body" means the body was
/// cut short (a provider cannot act on a request whose body it did not get in full).
/// Everything else (a timeout, a reset, a connection closed before the status line) may
/// have been processed.
pub fn transport_of(e: &reqwest::Error) -> Transport {
    if e.is_connect() {
        return Transport::NotSent("connection to the provider failed".into());
    }
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("error writing a body to connection") {
            return Transport::NotSent("request not fully written".into());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return Transport::AfterSend("timeout after send".into());
    }
    // The causes, not the error itself: its text holds the URL.
    let mut chain = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(&s.to_string());
        chain.push_str("; ");
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    if lower.contains("reset") || lower.contains("closed") || lower.contains("incomplete") {
        Transport::AfterSend("connection reset after send".into())
    } else {
        Transport::AfterSend(format!(
            "request failed after send: {}",
            chain.trim_end_matches("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEDUP: Policy = Policy {
        receiver_deduplicates: true,
        unavailable_with_retry_after_is_not_accepted: false,
    };

    #[test]
    fn only_what_cannot_have_been_processed_is_retried() {
        let none = HeaderMap::new();
        let p = Policy::NO_IDEMPOTENCY;
        assert_eq!(status(202, &none, p), Verdict::Accepted);
        assert_eq!(status(429, &none, p), Verdict::RateLimited);
        assert_eq!(status(401, &none, p), Verdict::Credentials);
        assert_eq!(status(403, &none, p), Verdict::Credentials);
        assert_eq!(
            status(500, &none, p),
            Verdict::MaybeProcessed("provider 500".into())
        );
        assert_eq!(
            status(408, &none, p),
            Verdict::MaybeProcessed("provider 408".into())
        );
        assert_eq!(status(400, &none, p), Verdict::Refused);
        assert_eq!(status(404, &none, p), Verdict::Refused);
        let mut retry = HeaderMap::new();
        retry.insert(reqwest::header::RETRY_AFTER, "5".parse().unwrap());
        // 503 + Retry-After is "not accepted" only where the provider says so.
        assert!(matches!(status(503, &retry, p), Verdict::MaybeProcessed(_)));
        let says = Policy {
            unavailable_with_retry_after_is_not_accepted: true,
            ..p
        };
        assert!(matches!(
            status(503, &retry, says),
            Verdict::NotProcessed(_)
        ));
        assert!(matches!(
            status(503, &none, says),
            Verdict::MaybeProcessed(_)
        ));
        assert!(matches!(
            transport(&Transport::NotSent("refused".into()), p),
            Verdict::NotProcessed(_)
        ));
        assert_eq!(
            transport(&Transport::AfterSend("timeout after send".into()), p),
            Verdict::MaybeProcessed("timeout after send".into())
        );
    }

    #[test]
    fn a_deduplicating_receiver_may_get_a_request_again() {
        let none = HeaderMap::new();
        assert!(matches!(
            status(502, &none, DEDUP),
            Verdict::NotProcessed(_)
        ));
        assert!(matches!(
            transport(&Transport::AfterSend("timeout after send".into()), DEDUP),
            Verdict::NotProcessed(_)
        ));
    }
}
