//! Delivery when the provider's answer is lost or never comes (5xx, timeouts, dropped
//! connections, a process killed mid-request) and when the connection cannot be made:
//! what was possibly processed is `unknown` and never repeated; what was not is retried.

use std::sync::Arc;
use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::tests::{count, opts, states};
use super::*;
use crate::channels::test_support::*;
use crate::message::{Medium, SendState};

#[tokio::test]
async fn a_5xx_from_an_api_without_idempotency_is_unknown_and_never_repeated() {
    // Mailgun and SendGrid users see 5xx answers for mail that went out: a second request
    // would be a second e-mail. The recipients become `unknown`, one request only.
    for status in [500, 503, 502, 408] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string("try later"))
            .expect(1)
            .mount(&server)
            .await;
        let (dir, state) = temp_state();
        let ch = build(
            "mail",
            &sendgrid_toml(
                &server.uri(),
                "concurrency = 1
max_attempts = 3
",
            ),
            dir.path(),
        );
        let report = deliver(&state, ch, messages(4, Medium::Email, "mail"), opts())
            .await
            .unwrap();
        assert_eq!((report.unknown, report.requests), (4, 1), "HTTP {status}");
        assert!(report.is_partial());
        assert_eq!(
            report.unknown_reasons.get(&format!("provider {status}")),
            Some(&4)
        );
        for r in state.all_rows().unwrap() {
            assert_eq!((r.state, r.attempts), (SendState::Unknown, 1));
            assert_eq!(
                r.reason.as_deref(),
                Some(format!("provider {status}").as_str())
            );
        }
        // A rerun does not send them either.
        let again = deliver(
            &state,
            build("mail", &sendgrid_toml(&server.uri(), ""), dir.path()),
            messages(4, Medium::Email, "mail"),
            opts(),
        )
        .await
        .unwrap();
        assert_eq!((again.skipped, again.requests), (4, 0));
    }
}

#[tokio::test]
async fn timeouts_after_send_are_unknown_not_retried() {
    // Inverted from `timeouts_are_retried_then_fail`: the fake received the first POST, so
    // a second one could be a second message. SendGrid (no idempotency key): unknown, once.
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&slow)
        .await;
    let (dir, state) = temp_state();
    let extra = "timeout_secs = 0.3
max_attempts = 3
concurrency = 1
";
    let ch = build("mail", &sendgrid_toml(&slow.uri(), extra), dir.path());
    let report = deliver(&state, ch, messages(3, Medium::Email, "mail"), opts())
        .await
        .unwrap();
    assert_eq!((report.unknown, report.requests), (3, 1));
    for r in state.all_rows().unwrap() {
        assert_eq!((r.state, r.attempts), (SendState::Unknown, 1));
        assert_eq!(r.reason.as_deref(), Some("timeout after send"));
    }
}

#[tokio::test]
async fn a_webhook_timeout_is_retried_with_the_same_keys() {
    // The webhook's receivers deduplicate by idempotency key: the one channel that may
    // repeat a request that was possibly processed.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let url = format!("{}/hook", server.uri());
    let extra = "timeout_secs = 0.3
max_attempts = 2
concurrency = 1
";
    let ch = build("hook", &webhook_toml(&url, extra), dir.path());
    let batch = messages(3, Medium::Email, "hook");
    let report = deliver(&state, ch, batch.clone(), opts()).await.unwrap();
    assert_eq!(report.delivered, 3);
    assert!(
        states(&state)
            .iter()
            .all(|&(s, a)| s == SendState::Delivered && a == 2)
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let keys: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["idempotency_key"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = batch.iter().map(|m| m.idempotency_key.as_str()).collect();
        assert_eq!(keys, want, "the same keys both times");
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_delivers_once() {
    // Nothing listens on the port: the provider cannot have processed anything.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (dir, state) = temp_state();
    let ch = build(
        "mail",
        &sendgrid_toml(
            &format!("http://127.0.0.1:{port}"),
            "max_attempts = 3
",
        ),
        dir.path(),
    );
    let report = deliver(&state, ch, messages(2, Medium::Email, "mail"), opts())
        .await
        .unwrap();
    assert_eq!(report.failed, 2);
    for r in state.all_rows().unwrap() {
        assert_eq!((r.state, r.attempts), (SendState::Failed, 3));
        assert!(
            r.reason
                .unwrap()
                .contains("connection to the provider failed")
        );
    }
}

#[tokio::test]
async fn crash_leaves_unknown_rows_that_a_rerun_does_not_resend() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM"}"#))
        .expect(6)
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let all = messages(10, Medium::Sms, "sms");
    // The dead process: 4 reserved (in flight), never recorded.
    assert_eq!(state.reserve(&all[..4], false).unwrap().len(), 4);
    drop(state);
    let state = State::open(dir.path()).unwrap();
    let unknown = state.recover_in_flight().unwrap();
    assert_eq!(unknown.len(), 4);
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let report = deliver(&state, ch.clone(), all.clone(), opts())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.skipped), (6, 4));
    assert_eq!(count(&state, SendState::Unknown), 4);
    assert_eq!(count(&state, SendState::Delivered), 6);
    // Once more: nothing at all is sent (the mock expects exactly 6 requests in total).
    let report = deliver(&state, ch, all, opts()).await.unwrap();
    assert_eq!((report.sent, report.skipped), (0, 10));
    assert_eq!(state.unknown_rows().unwrap().len(), 4);
}

#[tokio::test]
async fn resend_unknown_sends_them_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM"}"#))
        .expect(2)
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let all = messages(2, Medium::Sms, "sms");
    state.reserve(&all, false).unwrap();
    state.recover_in_flight().unwrap();
    let ch = build("sms", &twilio_toml(&server.uri(), ""), dir.path());
    let mut o = opts();
    o.resend_unknown = true;
    let report = deliver(&state, ch, all, o).await.unwrap();
    assert_eq!(report.delivered, 2);
    assert!(
        states(&state)
            .iter()
            .all(|&(s, a)| s == SendState::Delivered && a == 2)
    );
}

/// A fake provider that reads each request whole and then closes the connection without
/// answering: it took the request, the answer is lost. Counts the requests it read.
async fn accept_then_drop() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            return; // dropped without a status line
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn a_connection_dropped_after_the_request_is_unknown_and_sent_once() {
    let (url, seen) = accept_then_drop().await;
    let (dir, state) = temp_state();
    let ch = build(
        "sms",
        &twilio_toml(&url, "max_attempts = 5\nconcurrency = 1\n"),
        dir.path(),
    );
    let report = deliver(&state, ch, messages(3, Medium::Sms, "sms"), opts())
        .await
        .unwrap();
    assert_eq!((report.unknown, report.delivered), (3, 0));
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "each request made exactly once"
    );
    for r in state.all_rows().unwrap() {
        assert_eq!((r.state, r.attempts), (SendState::Unknown, 1));
        assert_eq!(r.reason.as_deref(), Some("connection reset after send"));
    }
}

#[tokio::test]
async fn refused_connections_are_retried_until_the_provider_is_up_and_deliver_everyone_once() {
    // Nothing listens at first (connection refused: nothing can have been processed); the
    // provider comes up a moment later on the same port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (dir, state) = temp_state();
    let ch = build(
        "mail",
        &sendgrid_toml(
            &format!("http://127.0.0.1:{port}"),
            // Backoff of at most 5 ms: 1,000 attempts span well over the 300 ms outage.
            "max_attempts = 1000\nconcurrency = 2\nbatch_size = 3\n",
        ),
        dir.path(),
    );
    let up = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let server = MockServer::builder().listener(listener).start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "up"))
            .mount(&server)
            .await;
        server
    });
    let report = deliver(&state, ch, messages(7, Medium::Email, "mail"), opts())
        .await
        .unwrap();
    let server = up.await.unwrap();
    assert_eq!((report.delivered, report.failed), (7, 0), "{report:?}");
    let mut keys: Vec<String> = Vec::new();
    for r in server.received_requests().await.unwrap() {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        for p in body["personalizations"].as_array().unwrap() {
            keys.push(p["custom_args"]["idempotency_key"].as_str().unwrap().into());
        }
    }
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!((keys.len(), distinct.len()), (7, 7), "each recipient once");
    let rows = state.all_rows().unwrap();
    assert!(rows.iter().all(|r| r.state == SendState::Delivered));
    assert!(
        rows.iter().any(|r| r.attempts > 1),
        "the first batches were retried after the refusals"
    );
}
