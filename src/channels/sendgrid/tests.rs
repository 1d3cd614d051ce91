use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::channels::Outcome;
use crate::channels::test_support::*;
use crate::message::Medium;

async fn server_202() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .and(header("authorization", format!("Bearer {SG_KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-abc"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn one_request_with_a_personalization_per_recipient() {
    let server = server_202().await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &sendgrid_toml(&server.uri(), ""), dir.path());
    let batch = messages(3, Medium::Email, "mail");
    let out = ch.send(&batch).await.into_result().unwrap();
    assert!(out.iter().all(|o| *o
        == Outcome::Delivered {
            provider_id: Some("sg-abc".into())
        }));
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    let ps = body["personalizations"].as_array().unwrap();
    assert_eq!(ps.len(), 3);
    for (p, m) in ps.iter().zip(&batch) {
        assert_eq!(p["to"][0]["email"], m.to.as_str());
        assert_eq!(
            p["custom_args"]["idempotency_key"],
            m.idempotency_key.as_str()
        );
        assert_eq!(
            p["headers"]["List-Unsubscribe"],
            format!(
                "<https://example.com/u/{}>, <mailto:unsub@example.com>",
                &m.customer_id[1..]
            )
        );
        assert_eq!(
            p["headers"]["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        assert_eq!(p["subject"], m.subject.as_deref().unwrap());
        assert_eq!(p["substitutions"]["-winback-text-"], m.text.as_str());
    }
    assert_eq!(body["from"]["email"], "shop@example.com");
    assert_eq!(body["content"][0]["value"], "-winback-text-");
}

#[tokio::test]
async fn identical_content_is_sent_once() {
    let server = server_202().await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &sendgrid_toml(&server.uri(), ""), dir.path());
    let mut batch = messages(2, Medium::Email, "mail");
    batch[1].subject = batch[0].subject.clone();
    batch[1].text = batch[0].text.clone();
    batch[1].html = batch[0].html.clone();
    ch.send(&batch).await.into_result().unwrap();
    let body: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(body["subject"], batch[0].subject.as_deref().unwrap());
    assert_eq!(body["content"][0]["value"], batch[0].text.as_str());
    assert!(body["personalizations"][0].get("substitutions").is_none());
}

#[tokio::test]
async fn a_named_bad_address_is_rejected_and_the_rest_resent() {
    let server = MockServer::start().await;
    // The first request (3 recipients) names personalization 1; the retry of 2 succeeds.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!(
            r#"{{"errors":[{{"message":"Does not contain a valid address: {}","field":"personalizations.1.to.0.email"}}]}}"#,
            email_of(1)
        )))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &sendgrid_toml(&server.uri(), ""), dir.path());
    let out = ch
        .send(&messages(3, Medium::Email, "mail"))
        .await
        .into_result()
        .unwrap();
    assert!(matches!(out[0], Outcome::Delivered { .. }));
    assert!(matches!(out[2], Outcome::Delivered { .. }));
    let Outcome::Rejected { reason } = &out[1] else {
        panic!("{out:?}")
    };
    assert!(
        !reason.contains(&email_of(1)) && reason.contains("c***@example.com"),
        "{reason}"
    );
    let reqs = server.received_requests().await.unwrap();
    let second: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(second["personalizations"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_unnamed_bad_address_is_found_by_halving() {
    let server = MockServer::start().await;
    let bad = email_of(5);
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(bad.as_str()))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"errors":[{"message":"Invalid email address","field":"personalizations.to"}]}"#,
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &sendgrid_toml(&server.uri(), ""), dir.path());
    let out = ch
        .send(&messages(8, Medium::Email, "mail"))
        .await
        .into_result()
        .unwrap();
    for (i, o) in out.iter().enumerate() {
        assert_eq!(i == 5, matches!(o, Outcome::Rejected { .. }), "{i}: {o:?}");
    }
}

#[tokio::test]
async fn a_sender_error_stops_the_channel_and_rejects_nobody() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"errors":[{"message":"The from address does not match a verified Sender Identity","field":"from"}]}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &sendgrid_toml(&server.uri(), ""), dir.path());
    let sent = ch.send(&messages(4, Medium::Email, "mail")).await;
    assert!(
        matches!(&sent.halt, Some(crate::channels::ChannelError::Sender { setting, .. }) if setting == "from"),
        "{:?}",
        sent.halt
    );
    assert!(
        sent.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Retriable { .. })),
        "nobody rejected: {:?}",
        sent.outcomes
    );
}

#[tokio::test]
async fn customers_sharing_an_address_go_in_different_requests() {
    let server = server_202().await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &sendgrid_toml(&server.uri(), ""), dir.path());
    let mut batch = messages(4, Medium::Email, "mail");
    // c2 shares c0's inbox (in other case: SendGrid compares case-insensitively).
    batch[2].to = email_of(0).to_uppercase();
    let out = ch.send(&batch).await.into_result().unwrap();
    assert!(out.iter().all(|o| matches!(o, Outcome::Delivered { .. })));
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2, "one request cannot hold the address twice");
    for r in &reqs {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        let mut to: Vec<String> = body["personalizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["to"][0]["email"].as_str().unwrap().to_lowercase())
            .collect();
        let n = to.len();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), n, "an address twice in one request");
    }
}
