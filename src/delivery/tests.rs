use std::sync::Arc;
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::channels::test_support::*;
use crate::clock::SystemClock;
use crate::message::{Medium, SendState};

pub(super) fn opts() -> DeliveryOptions {
    DeliveryOptions::new(Arc::new(SystemClock))
}

pub(super) fn states(state: &State) -> Vec<(SendState, u32)> {
    state
        .all_rows()
        .unwrap()
        .into_iter()
        .map(|r| (r.state, r.attempts))
        .collect()
}

pub(super) fn count(state: &State, s: SendState) -> usize {
    states(state).iter().filter(|(x, _)| *x == s).count()
}

#[tokio::test]
async fn sendgrid_batches_of_batch_size_all_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "m1"))
        .expect(3)
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let ch = build(
        "mail",
        &sendgrid_toml(&server.uri(), "batch_size = 10\n"),
        dir.path(),
    );
    let report = deliver(&state, ch, messages(25, Medium::Email, "mail"), opts())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.requests), (25, 3));
    assert!(!report.is_partial());
    assert!((report.cost - 0.25).abs() < 1e-9);
    let mut sizes: Vec<usize> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["personalizations"].as_array().unwrap().len()
        })
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![5, 10, 10]);
    let rows = state.all_rows().unwrap();
    assert!(rows.iter().all(|r| r.state == SendState::Delivered
        && r.attempts == 1
        && r.provider_message_id.as_deref() == Some("m1")
        && r.sent_at.is_some()));
    // A rerun sends nothing again.
    let again = deliver(
        &state,
        build(
            "mail",
            &sendgrid_toml(&server.uri(), "batch_size = 10\n"),
            dir.path(),
        ),
        messages(25, Medium::Email, "mail"),
        opts(),
    )
    .await
    .unwrap();
    assert_eq!((again.skipped, again.requests), (25, 0));
}

#[tokio::test]
async fn storm_of_429_pauses_without_using_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM1"}"#))
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let ch = build(
        "sms",
        &twilio_toml(&server.uri(), "max_attempts = 2\nconcurrency = 2\n"),
        dir.path(),
    );
    let started = Instant::now();
    let report = deliver(&state, ch, messages(6, Medium::Sms, "sms"), opts())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    assert_eq!(report.delivered, 6);
    assert_eq!(report.throttled, 3);
    assert!(
        states(&state)
            .iter()
            .all(|&(s, a)| s == SendState::Delivered && a == 1)
    );
}

#[tokio::test]
async fn unauthorized_stops_the_channel_and_names_the_env_var() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad key"))
        .expect(1)
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let ch = build(
        "mail",
        &sendgrid_toml(&server.uri(), "batch_size = 5\nconcurrency = 1\n"),
        dir.path(),
    );
    let err = deliver(&state, ch, messages(20, Medium::Email, "mail"), opts())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("channel mail") && text.contains("SG_KEY"),
        "{text}"
    );
    assert_eq!(err.blame(), crate::error::Blame::User);
    let rows = state.all_rows().unwrap();
    assert_eq!(rows.len(), 5, "only the refused batch is in the ledger");
    assert!(rows.iter().all(|r| r.state == SendState::Failed
        && r.reason.as_deref().is_some_and(|x| x.contains("SG_KEY"))));
}

/// A fake Twilio that refuses phone `i` with `error` (a Twilio error body) and accepts
/// everyone else.
async fn twilio_refusing(i: usize, error: &str) -> MockServer {
    let server = MockServer::start().await;
    let to: String = url::form_urlencoded::byte_serialize(phone_of(i).as_bytes()).collect();
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(
            format!("To={to}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(400).set_body_string(error))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SMok"}"#))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn one_invalid_phone_is_rejected_the_rest_delivered() {
    let server = twilio_refusing(
        2,
        r#"{"code":21211,"message":"The 'To' number +15550000002 is not a valid phone number."}"#,
    )
    .await;
    let (dir, state) = temp_state();
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let report = deliver(&state, ch, messages(5, Medium::Sms, "sms"), opts())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.rejected), (4, 1));
    for r in state.all_rows().unwrap() {
        let bad = r.customer_id == "c2";
        assert_eq!(
            r.state,
            if bad {
                SendState::Rejected
            } else {
                SendState::Delivered
            }
        );
        assert_eq!(r.attempts, 1);
        if bad {
            assert!(!r.reason.unwrap().contains("+15550000002"));
        }
    }
}

#[tokio::test]
async fn cancelled_run_takes_no_batch() {
    let (dir, state) = temp_state();
    let ch = build("mail", &sendgrid_toml("http://127.0.0.1:9", ""), dir.path());
    let o = opts();
    o.cancel.cancel();
    let report = deliver(&state, ch, messages(7, Medium::Email, "mail"), o)
        .await
        .unwrap();
    assert_eq!(
        (report.not_attempted, report.messages, report.requests),
        (7, 7, 0)
    );
    assert!(report.is_partial());
    assert!(state.all_rows().unwrap().is_empty());
}

#[tokio::test]
async fn cancel_during_a_429_pause_stops_promptly() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "60"))
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let extra = "batch_size = 2\nconcurrency = 1\n";
    let ch = build("mail", &sendgrid_toml(&server.uri(), extra), dir.path());
    let o = opts();
    let cancel = o.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let report = deliver(&state, ch, messages(6, Medium::Email, "mail"), o)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The batch in hand is failed (a later run retries it); the rest was never taken.
    assert_eq!(
        (report.failed, report.not_attempted, report.delivered),
        (2, 4, 0)
    );
    assert_eq!(state.all_rows().unwrap().len(), 2);
}

#[tokio::test]
async fn exhausted_time_budget_fails_the_rest() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let ch = build(
        "mail",
        &sendgrid_toml(&server.uri(), "batch_size = 2\nconcurrency = 1\n"),
        dir.path(),
    );
    let mut o = opts();
    o.time_budget = Duration::from_millis(300);
    let started = Instant::now();
    let report = deliver(&state, ch, messages(4, Medium::Email, "mail"), o)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.failed, 4);
    for r in state.all_rows().unwrap() {
        assert_eq!(r.state, SendState::Failed);
        assert_eq!(r.reason.as_deref(), Some("time budget exhausted"));
    }
}

#[tokio::test]
async fn dry_run_writes_masked_requests_and_records_nothing() {
    let (dir, state) = temp_state();
    let ch = build(
        "mail",
        &sendgrid_toml("http://127.0.0.1:9", "batch_size = 2\n"),
        dir.path(),
    );
    let mut o = opts();
    let out = dir.path().join("dry");
    o.dry_run = Some(out.clone());
    let report = deliver(&state, ch, messages(3, Medium::Email, "mail"), o)
        .await
        .unwrap();
    assert_eq!((report.requests, report.sent, report.delivered), (2, 3, 0));
    let text = std::fs::read_to_string(out.join("mail.requests.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(!text.contains(SG_KEY) && text.contains("/v3/mail/send"));
    assert!(state.all_rows().unwrap().is_empty());
}

#[tokio::test]
async fn file_channel_appends_each_message_once() {
    let (dir, state) = temp_state();
    let outbox = dir.path().join("_outbox/as_of=2025-03-10");
    let toml = "type = \"file\"\nmedium = \"email\"\nbatch_size = 3\n";
    let all = messages(5, Medium::Email, "outbox");
    let report = deliver(
        &state,
        build("outbox", toml, &outbox),
        all[..4].to_vec(),
        opts(),
    )
    .await
    .unwrap();
    assert_eq!(report.delivered, 4);
    let report = deliver(&state, build("outbox", toml, &outbox), all.clone(), opts())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.skipped), (1, 4));
    let file = outbox.join("outbox/quick.jsonl");
    let lines: Vec<crate::message::Message> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut keys: Vec<_> = lines.iter().map(|m| m.idempotency_key.clone()).collect();
    keys.sort();
    let mut want: Vec<_> = all.iter().map(|m| m.idempotency_key.clone()).collect();
    want.sort();
    assert_eq!(keys, want);
    // Batches are appended by concurrent workers: find message 0's line by its key.
    let first = lines
        .iter()
        .find(|m| m.idempotency_key == all[0].idempotency_key)
        .unwrap();
    assert_eq!(first.to, email_of(0));
}

#[tokio::test]
async fn twilio_with_a_wrong_from_stops_the_channel_and_rejects_nobody() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"code":21606,"message":"The 'From' phone number provided is not a valid message-capable Twilio phone number","status":400}"#,
        ))
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let ch = build(
        "sms",
        &twilio_toml(&server.uri(), "concurrency = 1\n"),
        dir.path(),
    );
    let err = deliver(&state, ch, messages(5, Medium::Sms, "sms"), opts())
        .await
        .unwrap_err();
    assert_eq!(err.blame(), crate::error::Blame::User);
    assert!(err.to_string().contains("`from`"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let rows = state.all_rows().unwrap();
    assert!(
        rows.iter().all(|r| r.state != SendState::Rejected),
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.state == SendState::Failed));
}

#[tokio::test]
async fn twilio_21610_rejects_and_records_an_sms_opt_out() {
    let server = twilio_refusing(
        1,
        r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#,
    )
    .await;
    let (dir, state) = temp_state();
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let report = deliver(&state, ch, messages(3, Medium::Sms, "sms"), opts())
        .await
        .unwrap();
    assert_eq!(
        (report.delivered, report.rejected, report.opted_out),
        (2, 1, 1)
    );
    let suppressions = state.suppressions().unwrap();
    assert_eq!(suppressions.len(), 1);
    assert_eq!(
        (
            suppressions[0].customer_id.as_deref(),
            suppressions[0].medium,
            suppressions[0].reason.as_str()
        ),
        (Some("c1"), Some(Medium::Sms), "unsubscribed")
    );
    assert_eq!(suppressions[0].source, "provider:sms");
}
