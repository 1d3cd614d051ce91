use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::channels::Outcome;
use crate::channels::test_support::*;
use crate::message::Medium;

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
    let out = ch.send(&batch).await.into_result().unwrap();
    assert!(out.iter().all(|o| matches!(o, Outcome::Delivered { .. })));
    let req = &server.received_requests().await.unwrap()[0];
    let sig = req
        .headers
        .get("x-winback-signature")
        .unwrap()
        .to_str()
        .unwrap();
    let ts: i64 = req
        .headers
        .get("x-winback-timestamp")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    // The timestamp is signed with the body: a replay with a new timestamp fails.
    assert_eq!(sig, super::sign(WH_SECRET.as_bytes(), ts, &req.body));
    assert_ne!(sig, super::sign(WH_SECRET.as_bytes(), ts + 1, &req.body));
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
    // A 4xx naming recipients rejects them; the others are sent again.
    let server = MockServer::start().await;
    let batch = messages(2, Medium::Email, "hook");
    let refused = format!(
        r#"{{"rejected":[{{"idempotency_key":"{}","reason":"unknown customer"}}]}}"#,
        batch[0].idempotency_key
    );
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(
            batch[0].idempotency_key.as_str(),
        ))
        .respond_with(ResponseTemplate::new(422).set_body_string(refused))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("hook", &webhook_toml(&server.uri(), ""), dir.path());
    let out = ch.send(&batch).await.into_result().unwrap();
    assert!(
        matches!(&out[0], Outcome::Rejected { reason } if reason.contains("422") && reason.contains("unknown customer")),
        "{out:?}"
    );
    assert!(matches!(out[1], Outcome::Delivered { .. }), "{out:?}");
    // A 4xx that names nobody is about the endpoint: the channel stops, nobody rejected.
    let bare = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_string("unprocessable"))
        .mount(&bare)
        .await;
    let ch = build("hook", &webhook_toml(&bare.uri(), ""), dir.path());
    let sent = ch.send(&messages(2, Medium::Email, "hook")).await;
    assert!(matches!(
        sent.halt,
        Some(crate::channels::ChannelError::Sender { .. })
    ));
    assert!(
        !sent
            .outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Rejected { .. } | Outcome::Delivered { .. }))
    );
    // 3xx is not success either (redirects are not followed).
    let redirect = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302))
        .mount(&redirect)
        .await;
    let ch = build("hook", &webhook_toml(&redirect.uri(), ""), dir.path());
    let sent = ch.send(&messages(1, Medium::Email, "hook")).await;
    assert!(
        !matches!(sent.outcomes[0], Outcome::Delivered { .. }),
        "{sent:?}"
    );
}

#[test]
fn plain_http_is_for_loopback_only() {
    let cfg = |url: &str| -> crate::channels::ChannelConfig {
        toml::from_str(&webhook_toml(url, "")).unwrap()
    };
    assert!(cfg("http://127.0.0.1:9/hook").validate("h").is_ok());
    assert!(cfg("http://localhost:9/hook").validate("h").is_ok());
    assert!(cfg("https://hooks.example.com/x").validate("h").is_ok());
    let err = cfg("http://hooks.example.com/x")
        .validate("h")
        .unwrap_err()
        .to_string();
    assert!(err.contains("https"), "{err}");
}
