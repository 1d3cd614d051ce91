use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::campaign::message::Medium;
use crate::channels::Outcome;
use crate::channels::test_support::*;

#[tokio::test]
async fn posts_a_signed_batch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build(
        "hook",
        &webhook_toml(&format!("{}/hook", server.uri()), ""),
        dir.path(),
    );
    let batch = messages(3, Medium::Email, "hook");
    let out = ch.send(&batch).await.unwrap();
    assert!(out.iter().all(|o| matches!(o, Outcome::Delivered { .. })));
    let req = &server.received_requests().await.unwrap()[0];
    let sig = req
        .headers
        .get("x-winback-signature")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(sig, super::sign(WH_SECRET.as_bytes(), &req.body));
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[1]["idempotency_key"],
        batch[1].idempotency_key.as_str()
    );
}

#[tokio::test]
async fn only_2xx_counts_as_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_string("unprocessable"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("hook", &webhook_toml(&server.uri(), ""), dir.path());
    let out = ch.send(&messages(2, Medium::Email, "hook")).await.unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, Outcome::Rejected { reason } if reason.contains("422")))
    );
    // 3xx is not success either.
    let redirect = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302))
        .mount(&redirect)
        .await;
    let ch = build("hook", &webhook_toml(&redirect.uri(), ""), dir.path());
    let out = ch.send(&messages(1, Medium::Email, "hook")).await.unwrap();
    assert!(!matches!(out[0], Outcome::Delivered { .. }), "{out:?}");
}
