use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::channels::Outcome;
use crate::channels::test_support::*;
use crate::message::Medium;

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[tokio::test]
async fn batch_send_with_recipient_variables() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mg.example.com/messages"))
        .and(header("authorization", basic("api", MG_KEY).as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"id":"<20250310.1@mg.example.com>","message":"Queued. Thank you."}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mg", &mailgun_toml(&server.uri(), ""), dir.path());
    let batch = messages(3, Medium::Email, "mg");
    let out = ch.send(&batch).await.into_result().unwrap();
    assert!(out.iter().all(|o| matches!(o, Outcome::Delivered { provider_id: Some(id) } if id.contains("mg.example.com"))));
    let f = form(&server.received_requests().await.unwrap()[0].body);
    let get = |k: &str| {
        f.iter()
            .filter(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        get("to"),
        batch.iter().map(|m| m.to.clone()).collect::<Vec<_>>()
    );
    assert_eq!(get("v:idempotency_key"), ["%recipient.idempotency_key%"]);
    assert_eq!(
        get("h:List-Unsubscribe-Post"),
        ["List-Unsubscribe=One-Click"]
    );
    assert_eq!(get("text"), ["%recipient.text%"]);
    let vars: serde_json::Value = serde_json::from_str(&get("recipient-variables")[0]).unwrap();
    for m in &batch {
        assert_eq!(vars[&m.to]["idempotency_key"], m.idempotency_key.as_str());
        assert_eq!(vars[&m.to]["text"], m.text.as_str());
        assert!(
            vars[&m.to]["list_unsubscribe"]
                .as_str()
                .unwrap()
                .starts_with("<https://")
        );
    }
}

#[tokio::test]
async fn duplicate_addresses_go_in_separate_requests() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"id":"x"}"#))
        .expect(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mg", &mailgun_toml(&server.uri(), ""), dir.path());
    let mut batch = messages(3, Medium::Email, "mg");
    batch[2].to = batch[0].to.clone();
    let out = ch.send(&batch).await.into_result().unwrap();
    assert!(out.iter().all(|o| matches!(o, Outcome::Delivered { .. })));
}

#[tokio::test]
async fn bad_address_is_isolated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("customer00001"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"message":"'to' parameter is not a valid address. please check documentation"}"#,
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"id":"x"}"#))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mg", &mailgun_toml(&server.uri(), ""), dir.path());
    let out = ch
        .send(&messages(4, Medium::Email, "mg"))
        .await
        .into_result()
        .unwrap();
    for (i, o) in out.iter().enumerate() {
        assert_eq!(i == 1, matches!(o, Outcome::Rejected { .. }), "{i}: {o:?}");
    }
}
