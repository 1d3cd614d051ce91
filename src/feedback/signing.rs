//! The providers' webhook signatures, made exactly as each provider makes them: the
//! verifiers compare against these, and tests (unit and integration) sign the requests
//! they send to the listener with them. Formats, from the providers' pages:
//!
//! - SendGrid, "Getting Started with the Event Webhook Security Features"
//!   (<https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features>):
//!   ECDSA (P-256, SHA-256) over the `X-Twilio-Email-Event-Webhook-Timestamp` value followed
//!   by the raw body, base64 of the DER signature in `X-Twilio-Email-Event-Webhook-Signature`;
//!   the verification key is shown as base64 of the DER SubjectPublicKeyInfo.
//! - Mailgun, "Securing Webhooks"
//!   (<https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks>):
//!   `signature = hex(HMAC-SHA256(webhook signing key, timestamp ++ token))`, sent in the
//!   body as `{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}`.
//! - Twilio, "Webhooks security" (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>):
//!   `X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL ++ each POST parameter's name
//!   and value, sorted by name))`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use p256::pkcs8::EncodePublicKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::sendgrid::{SIGNATURE_HEADER as SG_SIGNATURE, TIMESTAMP_HEADER as SG_TIMESTAMP};

/// A SendGrid Signed Event Webhook key pair for tests: the public key as SendGrid shows
/// it (base64 DER) and the private key that signs.
#[derive(Clone)]
pub struct SendgridKeys {
    pub public_key: String,
    pub signing_key: SigningKey,
}

impl std::fmt::Debug for SendgridKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendgridKeys")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// The same key pair for the same `seed`, every time (the private scalar is derived from
/// SHA-256 of the seed): tests need no key files and no randomness.
pub fn sendgrid_test_keys(seed: u64) -> SendgridKeys {
    let mut counter: u32 = 0;
    let signing_key = loop {
        let mut h = Sha256::new();
        h.update(b"winback sendgrid test key");
        h.update(seed.to_be_bytes());
        h.update(counter.to_be_bytes());
        // A digest at or above the curve order (probability ~2^-32) is skipped.
        if let Ok(k) = SigningKey::from_bytes(&h.finalize()) {
            break k;
        }
        counter += 1;
    };
    let der = signing_key
        .verifying_key()
        .to_public_key_der()
        .expect("a P-256 public key always encodes as DER");
    SendgridKeys {
        public_key: STANDARD.encode(der.as_bytes()),
        signing_key,
    }
}

/// The two headers SendGrid sends with a signed event batch `body` at `timestamp` (Unix
/// seconds): `(name, value)` for the signature and the timestamp.
pub fn sendgrid_headers(
    key: &SigningKey,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 2] {
    let ts = timestamp.to_string();
    let mut signed = ts.clone().into_bytes();
    signed.extend_from_slice(body);
    let signature: Signature = key.sign(&signed);
    [
        (SG_SIGNATURE, STANDARD.encode(signature.to_der().as_bytes())),
        (SG_TIMESTAMP, ts),
    ]
}

/// The HMAC Mailgun computes: hex of HMAC-SHA256(`signing_key`, `timestamp ++ token`).
pub fn mailgun_hex(signing_key: &str, timestamp: &str, token: &str) -> String {
    hex::encode(
        mailgun_mac(signing_key, timestamp, token)
            .finalize()
            .into_bytes(),
    )
}

pub(crate) fn mailgun_mac(signing_key: &str, timestamp: &str, token: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes())
        .expect("HMAC accepts a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac
}

/// The `signature` object of a Mailgun webhook body.
pub fn mailgun_signature(signing_key: &str, timestamp: i64, token: &str) -> Value {
    let ts = timestamp.to_string();
    json!({
        "timestamp": ts,
        "token": token,
        "signature": mailgun_hex(signing_key, &ts, token),
    })
}

/// A whole Mailgun webhook body: the signature and one event's `event-data`.
pub fn mailgun_body(signing_key: &str, timestamp: i64, token: &str, event_data: Value) -> Vec<u8> {
    let body = json!({
        "signature": mailgun_signature(signing_key, timestamp, token),
        "event-data": event_data,
    });
    body.to_string().into_bytes()
}

/// The `X-Twilio-Signature` value Twilio sends when it POSTs `params` to `url` (the full
/// URL it was given, query string included).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

pub(crate) fn twilio_mac(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
) -> Hmac<sha1::Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // By name (a name given twice: by value, as Twilio's own libraries sort them).
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC accepts a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}
