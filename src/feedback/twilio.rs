//! Twilio's messaging webhooks: status callbacks of the SMS winback sent, and incoming
//! messages (a STOP reply), form-encoded POSTs signed with `X-Twilio-Signature`.
//!
//! Formats, from Twilio's pages:
//! - "Webhooks security" (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>):
//!   base64 HMAC-SHA1, keyed with the auth token, of the full URL Twilio called followed by
//!   each POST parameter's name and value, sorted by name (worked example: URL
//!   `https://mycompany.com/myapp.php?foo=1&bar=2`, token `12345`, five parameters,
//!   signature `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`, checked in the tests). The signature has no
//!   timestamp: a replayed callback is caught by its event id, not by its age.
//! - status callbacks ("Track the Message Status of Outbound Messages",
//!   <https://www.twilio.com/docs/guides/how-to-confirm-delivery-in-node-js>):
//!   `MessageSid`, `MessageStatus` (`queued`, `sent`, `delivered`, `undelivered`, `failed`,
//!   ...), `ErrorCode`, `To`, `From`.
//! - error codes (<https://www.twilio.com/docs/api/errors>): 30005 unknown destination
//!   handset, 30006 landline or unreachable carrier, 21211 invalid 'To' number, 21614 'To'
//!   is not a mobile number are permanent (hard bounces); 21610 is a recipient who replied
//!   STOP (an unsubscribe); everything else (30003 handset off or out of coverage, 30007
//!   carrier filtering, 30008 unknown, ...) may pass another day: a soft bounce.
//! - incoming messages and opt-out keywords ("Advanced Opt-Out",
//!   <https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out>): Twilio handles
//!   STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE and OPTOUT by default; with
//!   Advanced Opt-Out the request carries `OptOutType` (`STOP`, `START`, `HELP`), which then
//!   decides (custom keywords included).

use chrono::{DateTime, Utc};
use hmac::Mac;

use super::signing::twilio_mac;
use super::{FeedbackError, FeedbackEvent, FeedbackKind};
use crate::message::Medium;

pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Twilio's default opt-out keywords (a message that is exactly one of them, any case).
pub const OPT_OUT_KEYWORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];

/// Error codes that mean the number will never receive an SMS.
const PERMANENT_ERRORS: &[&str] = &["30005", "30006", "21211", "21614"];
/// "Attempt to send to unsubscribed recipient".
const UNSUBSCRIBED_ERROR: &str = "21610";

/// The parameters of an `application/x-www-form-urlencoded` body, in order.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Verifies one request (the URL Twilio was given, query string included; its form
/// parameters; the `X-Twilio-Signature` value if present) and returns the event, if it is
/// one winback acts on. `now` stamps it: Twilio's callbacks carry no event time.
pub fn parse(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<FeedbackEvent>, FeedbackError> {
    verify(auth_token, url, params, signature)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let sid = get("MessageSid")
        .or_else(|| get("SmsSid"))
        .ok_or_else(|| FeedbackError::Malformed("no `MessageSid`".into()))?;
    let event =
        |kind, event_id: String, address: Option<&str>, detail: Option<String>| FeedbackEvent {
            provider: "twilio",
            event_id,
            kind,
            medium: Medium::Sms,
            address: address.map(str::to_string),
            idempotency_key: None,
            provider_message_id: Some(sid.to_string()),
            at: now,
            detail,
        };
    let has = |name: &str| params.iter().any(|(n, _)| n == name);
    let status = get("MessageStatus").or_else(|| get("SmsStatus"));
    if has("Body") || has("OptOutType") || status == Some("received") {
        // An incoming message: an unsubscribe when it is an opt-out, from `From`.
        let opt_out = match get("OptOutType") {
            Some(t) => t.eq_ignore_ascii_case("STOP"),
            None => get("Body")
                .is_some_and(|b| OPT_OUT_KEYWORDS.iter().any(|k| b.eq_ignore_ascii_case(k))),
        };
        return Ok(opt_out
            .then(|| {
                event(
                    FeedbackKind::Unsubscribe,
                    sid.to_string(),
                    get("From"),
                    Some("SMS opt-out reply".into()),
                )
            })
            .into_iter()
            .collect());
    }
    let status = status
        .ok_or_else(|| FeedbackError::Malformed("neither `MessageStatus` nor `Body`".into()))?;
    let code = get("ErrorCode");
    let kind = match status {
        "delivered" => FeedbackKind::Delivered,
        "undelivered" | "failed" => match code {
            Some(UNSUBSCRIBED_ERROR) => FeedbackKind::Unsubscribe,
            Some(c) if PERMANENT_ERRORS.contains(&c) => FeedbackKind::HardBounce,
            _ => FeedbackKind::SoftBounce,
        },
        _ => return Ok(vec![]),
    };
    let detail = code.map(|c| format!("{status}: error {c}"));
    Ok(vec![event(
        kind,
        format!("{sid}:{status}"),
        get("To"),
        detail,
    )])
}

/// Constant-time comparison of the header with the HMAC of the URL and the parameters.
fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<(), FeedbackError> {
    use base64::Engine;
    let given = signature
        .map(str::trim)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or(FeedbackError::BadSignature)?;
    twilio_mac(auth_token, url, params)
        .verify_slice(&given)
        .map_err(|_| FeedbackError::BadSignature)
}
