//! SendGrid's keys and signatures: the SDKs' published vector, the key formats accepted,
//! and the test key pairs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::Signature;

use super::FeedbackError;
use super::sendgrid;
use super::signing::{sendgrid_headers, sendgrid_test_keys};

/// The vector every SendGrid SDK tests its verifier with (sendgrid-python
/// `test/test_eventwebhook.py`, sendgrid-go, sendgrid-nodejs...): SendGrid's own key,
/// payload, timestamp and signature.
#[test]
fn sendgrids_published_vector_verifies() {
    let key = sendgrid::public_key(
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==",
    )
    .unwrap();
    let payload =
        br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
    let signature = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";
    assert_eq!(
        sendgrid::verify_signature(&key, signature, "1588788367", payload),
        Ok(())
    );
    assert_eq!(
        sendgrid::verify_signature(&key, signature, "1388788367", payload),
        Err(FeedbackError::BadSignature)
    );
}

#[test]
fn the_key_is_read_as_base64_der_or_pem_and_garbage_is_refused() {
    let keys = sendgrid_test_keys(3);
    let b64 = &keys.public_key;
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
        &b64[..64],
        &b64[64..]
    );
    assert_eq!(
        sendgrid::public_key(&pem).unwrap(),
        sendgrid::public_key(b64).unwrap()
    );
    assert_eq!(
        sendgrid::public_key(b64).unwrap(),
        *keys.signing_key.verifying_key()
    );
    assert!(sendgrid::public_key("not a key").is_err());
    assert!(sendgrid::public_key("AAAA").is_err());
    // The same seed always gives the same key, another seed another one.
    assert_eq!(sendgrid_test_keys(3).public_key, keys.public_key);
    assert_ne!(sendgrid_test_keys(4).public_key, keys.public_key);
}

#[test]
fn a_high_s_signature_is_the_same_signature() {
    let body = b"[]";
    let keys = sendgrid_test_keys(7);
    let key = sendgrid::public_key(&keys.public_key).unwrap();
    let [(_, sig), (_, ts)] = sendgrid_headers(&keys.signing_key, 1_765_000_000, body);
    let low = Signature::from_der(&STANDARD.decode(&sig).unwrap()).unwrap();
    let (r, s) = low.split_scalars();
    // (r, n - s): what a signer that does not normalise s (Go's crypto/ecdsa) sends half
    // the time.
    let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    assert_ne!(high, low);
    let high_b64 = STANDARD.encode(high.to_der().as_bytes());
    assert_eq!(
        sendgrid::verify_signature(&key, &high_b64, &ts, body),
        Ok(())
    );
    assert_eq!(
        sendgrid::verify_signature(&key, &high_b64, &ts, b"[ ]"),
        Err(FeedbackError::BadSignature)
    );
}
