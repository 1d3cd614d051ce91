use std::sync::Arc;
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::channels::test_support::*;
use crate::clock::SystemClock;
use crate::message::{Medium, SendState};

fn opts() -> DeliveryOptions {
    DeliveryOptions::new(Arc::new(SystemClock))
}

fn states(state: &State) -> Vec<(SendState, u32)> {
    state
        .all_rows()
        .unwrap()
        .into_iter()
        .map(|r| (r.state, r.attempts))
        .collect()
}

fn count(state: &State, s: SendState) -> usize {
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
    let opt_outs = state.opt_outs().unwrap();
    assert_eq!(opt_outs.len(), 1);
    assert_eq!(
        (
            opt_outs[0].customer_id.as_str(),
            opt_outs[0].medium.as_str()
        ),
        ("c1", "sms")
    );
    assert_eq!(opt_outs[0].source, "provider:sms");
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
