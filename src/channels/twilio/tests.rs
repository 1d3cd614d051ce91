use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::channels::Outcome;
use crate::channels::test_support::*;
use crate::message::Medium;

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{TW_SID}/Messages.json")
}

#[tokio::test]
async fn posts_one_form_per_sms_with_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(header("authorization", basic(TW_SID, TW_TOKEN).as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("From=%2B15550009999"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM123"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let batch = messages(1, Medium::Sms, "sms");
    let out = ch.send(&batch).await.into_result().unwrap();
    assert_eq!(
        out,
        vec![Outcome::Delivered {
            provider_id: Some("SM123".into())
        }]
    );
    let req = &server.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    assert!(form.contains(&("To".into(), phone_of(0))));
    assert!(form.contains(&("Body".into(), batch[0].text.clone())));
    assert_eq!(
        req.headers
            .get("x-winback-idempotency-key")
            .and_then(|v| v.to_str().ok()),
        Some(batch[0].idempotency_key.as_str())
    );
}

#[tokio::test]
async fn invalid_number_is_rejected_with_a_masked_reason() {
    let server = MockServer::start().await;
    let bad = phone_of(0);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!(
            r#"{{"code":21211,"message":"The 'To' number {bad} is not a valid phone number.","status":400}}"#
        )))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let out = ch
        .send(&messages(1, Medium::Sms, "sms"))
        .await
        .into_result()
        .unwrap();
    let Outcome::Rejected { reason } = &out[0] else {
        panic!("{out:?}")
    };
    assert!(reason.contains("21211"), "{reason}");
    assert!(!reason.contains(&bad), "{reason}");
    assert!(reason.contains(&crate::mask::phone(&bad)), "{reason}");
}

#[test]
fn preview_masks_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ch = build("sms", &twilio_toml("http://127.0.0.1:9", ""), dir.path());
    let p = ch.preview(&messages(2, Medium::Sms, "sms"));
    assert_eq!(p.len(), 2);
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains(TW_TOKEN) && !text.contains(&basic(TW_SID, TW_TOKEN)));
    assert!(text.contains("\"Authorization\",\"***\""), "{text}");
}
