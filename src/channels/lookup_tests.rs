//! The reconciliation look-ups of each provider against fakes on 127.0.0.1: what their
//! answers prove about a request whose answer was lost.

use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::channels::test_support::*;
use crate::channels::{Settlement, Unsettled};
use crate::message::Medium;

#[tokio::test]
async fn twilio_lookup_finds_queued_messages_and_concludes_only_on_a_full_listing() {
    let server = MockServer::start().await;
    let at = chrono::Utc::now();
    let when = at.to_rfc2822();
    let old = (at - chrono::Duration::days(3)).to_rfc2822();
    // phone 0: a queued message (no date_sent yet) from our number near the attempt.
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("To", phone_of(0).as_str()))
        .and(wiremock::matchers::query_param("From", "+15550009999"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!(
            r#"{{"messages":[{{"sid":"SM0","status":"queued","from":"+15550009999","direction":"outbound-api","date_created":"{when}","date_sent":null}}],"next_page_uri":null}}"#
        )))
        .mount(&server)
        .await;
    // phone 1: only an old message: conclusively not accepted.
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("To", phone_of(1).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!(
            r#"{{"messages":[{{"sid":"SMold","status":"delivered","from":"+15550009999","direction":"outbound-api","date_created":"{old}"}}],"next_page_uri":null}}"#
        )))
        .mount(&server)
        .await;
    // phone 2: nothing on this page, but more pages than are read: not conclusive.
    Mock::given(method("GET"))
        .and(wiremock::matchers::query_param("To", phone_of(2).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"messages":[],"next_page_uri":"/2010-04-01/Accounts/X/Messages.json?To=%2B15550000002&Page=1"}"#,
        ))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let ask: Vec<Unsettled> = (0..3)
        .map(|i| Unsettled {
            idempotency_key: format!("k{i}"),
            campaign: "quick".into(),
            as_of: as_of(),
            to: phone_of(i),
            attempted_at: at,
        })
        .collect();
    let got = ch.lookup(&ask).await.unwrap();
    assert!(
        matches!(&got[0], Settlement::Accepted { provider_id: Some(id), .. } if id == "SM0"),
        "{got:?}"
    );
    assert!(matches!(got[1], Settlement::NotAccepted { .. }), "{got:?}");
    assert!(matches!(got[2], Settlement::Open { .. }), "{got:?}");
}

#[tokio::test]
async fn mailgun_lookup_matches_the_idempotency_key_of_accepted_events() {
    let server = MockServer::start().await;
    let batch = messages(2, Medium::Email, "mail");
    let item = serde_json::json!({"event": "accepted", "recipient": batch[0].to,
        "user-variables": {"idempotency_key": batch[0].idempotency_key},
        "message": {"headers": {"message-id": "2026.1@mg.example.com"}}});
    let other = serde_json::json!({"event": "accepted", "recipient": batch[1].to,
        "user-variables": {"idempotency_key": "another-campaign-key"}});
    Mock::given(method("GET"))
        .and(path("/v3/mg.example.com/events"))
        .and(wiremock::matchers::query_param("event", "accepted"))
        .and(wiremock::matchers::query_param("recipient", batch[0].to.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "items": [item], "paging": {"next": format!("{}/v3/mg.example.com/events/p2", server.uri())}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/mg.example.com/events"))
        .and(wiremock::matchers::query_param("recipient", batch[1].to.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "items": [other], "paging": {"next": format!("{}/v3/mg.example.com/events/p2", server.uri())}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/mg.example.com/events/p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "items": [], "paging": {}})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &mailgun_toml(&server.uri(), ""), dir.path());
    let ask: Vec<Unsettled> = batch.iter().map(unsettled).collect();
    let got = ch.lookup(&ask).await.unwrap();
    assert!(
        matches!(&got[0], Settlement::Accepted { provider_id: Some(id), .. } if id == "<2026.1@mg.example.com>"),
        "{got:?}"
    );
    assert!(matches!(got[1], Settlement::NotAccepted { .. }), "{got:?}");
}

#[tokio::test]
async fn sendgrid_without_the_activity_add_on_leaves_rows_unknown_and_says_why() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/messages"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_string(r#"{"errors":[{"message":"authorization required"}]}"#),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("mail", &sendgrid_toml(&server.uri(), ""), dir.path());
    let ask = vec![Unsettled {
        idempotency_key: "k".into(),
        campaign: "quick".into(),
        as_of: as_of(),
        to: email_of(0),
        attempted_at: chrono::Utc::now(),
    }];
    let got = ch.lookup(&ask).await.unwrap();
    assert!(
        matches!(&got[0], Settlement::Open { reason } if reason.contains("add-on")),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_rate_limited_look_up_waits_and_asks_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messages": [], "next_page_uri": null})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let started = Instant::now();
    let got = ch
        .lookup(&[unsettled(&message(0, Medium::Sms, "sms", "quick"))])
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert!(matches!(got[0], Settlement::NotAccepted { .. }), "{got:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn sendgrid_asks_by_idempotency_key_never_two_recipients_of_one_address_at_once() {
    let server = MockServer::start().await;
    let batch = messages(3, Medium::Email, "mail");
    // c0 and c2 share an inbox: the answer names addresses, so they go in different queries.
    let mut ask: Vec<_> = batch.iter().map(unsettled).collect();
    ask[2].to = ask[0].to.clone();
    Mock::given(method("GET"))
        .and(path("/v3/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messages": [{"msg_id": "sg-1.filter0001", "to_email": email_of(1),
                "status": "delivered", "from_email": "shop@example.com", "subject": "s",
                "opens_count": 0, "clicks_count": 0, "last_event_time": "2026-06-01T02:30:00Z"}]})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ch = build(
        "mail",
        &sendgrid_toml(&server.uri(), "activity_requests_per_min = 60000\n"),
        dir.path(),
    );
    let got = ch.lookup(&ask).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2, "two queries: one address at a time");
    let query = |r: &wiremock::Request| -> String {
        r.url
            .query_pairs()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let first = query(&reqs[0]);
    assert_eq!(
        first,
        format!(
            "(unique_args['idempotency_key']=\"{}\" OR unique_args['idempotency_key']=\"{}\")",
            ask[0].idempotency_key, ask[1].idempotency_key
        )
    );
    assert!(query(&reqs[1]).contains(&ask[2].idempotency_key));
    assert!(matches!(got[0], Settlement::NotAccepted { .. }), "{got:?}");
    assert!(
        matches!(&got[1], Settlement::Accepted { provider_id: Some(id), .. } if id == "sg-1.filter0001"),
        "{got:?}"
    );
    assert!(matches!(got[2], Settlement::NotAccepted { .. }), "{got:?}");
}
