//! Exactly once when the provider's answer is lost, as the `winback` binary runs it, for
//! each shape of a lost answer: the provider takes the request and then drops the
//! connection, answers 500 (Mailgun and SendGrid users see this for mail that went out), or
//! answers after the client's timeout. Every recipient ends `unknown`, each request is made
//! once, the run exits 2 naming the reason; `winback sends --reconcile` asks the provider's
//! lookup and settles the ones it lists as `delivered` and the others as `not_sent`; the
//! next run sends exactly those, once.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use serde_json::Value;
use winback::state::State;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::campaigns::{AS_OF, KEY, campaign_project, email_via_sendgrid, text, winback};

/// The (key, address) of every personalization of the mail/send requests received.
fn sent(reqs: &[Request]) -> Vec<(String, String)> {
    let bodies: Vec<Vec<u8>> = reqs
        .iter()
        .filter(|r| r.url.path() == "/v3/mail/send")
        .map(|r| r.body.clone())
        .collect();
    sent_bodies(&bodies)
}

fn sent_bodies(bodies: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in bodies {
        let body: Value = serde_json::from_slice(b).unwrap();
        for p in body["personalizations"].as_array().unwrap() {
            out.push((
                p["custom_args"]["idempotency_key"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                p["to"][0]["email"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// A provider that reads each request whole, keeps its body, and closes the connection
/// without a status line: it took the request; the answer is lost.
async fn accept_then_drop() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                while let Ok(n) = sock.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        kept.lock()
                            .unwrap()
                            .push(buf[end + 4..end + 4 + len].to_vec());
                        return; // dropped: no answer
                    }
                }
            });
        }
    });
    (url, bodies)
}

#[derive(Debug, Clone, Copy)]
enum Lost {
    Dropped,
    Status500,
    AfterTimeout,
}

fn project_with_sendgrid(dir: &Path, base: &str) {
    campaign_project(dir);
    email_via_sendgrid(
        dir,
        base,
        "batch_size = 1000\nconcurrency = 1\nreconcile_after_secs = 0\nactivity_requests_per_min = 60000",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_unknown_then_reconciled_and_the_rest_sent_once() {
    lost_answer(Lost::Dropped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_unknown_then_reconciled_and_the_rest_sent_once() {
    lost_answer(Lost::Status500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_after_the_timeout_is_unknown_then_reconciled_and_the_rest_sent_once() {
    lost_answer(Lost::AfterTimeout).await;
}

async fn lost_answer(shape: Lost) {
    let server = MockServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (dropper, dropped) = accept_then_drop().await;
    let (base, reason) = match shape {
        Lost::Dropped => (dropper.clone(), "connection reset after send"),
        Lost::Status500 => {
            Mock::given(method("POST"))
                .and(path("/v3/mail/send"))
                .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
                .mount(&server)
                .await;
            (server.uri(), "provider 500")
        }
        Lost::AfterTimeout => {
            Mock::given(method("POST"))
                .and(path("/v3/mail/send"))
                .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(3)))
                .mount(&server)
                .await;
            (server.uri(), "timeout after send")
        }
    };
    project_with_sendgrid(dir, &base);
    let file = dir.join("pipelines/reactivation.toml");
    let toml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        toml.replace("concurrency = 1\n", "concurrency = 1\ntimeout_secs = 1.0\n"),
    )
    .unwrap();

    // 1. The provider took the request; its answer is lost: unknown, sent once, exit 2.
    let first = winback(dir, &["run", "--as-of", AS_OF]);
    let seen = text(&first);
    assert_eq!(first.status.code(), Some(2), "{shape:?}: {seen}");
    let once = match shape {
        Lost::Dropped => sent_bodies(&dropped.lock().unwrap()),
        _ => sent(&server.received_requests().await.unwrap()),
    };
    assert!(!once.is_empty(), "the campaign sent something: {seen}");
    let distinct: BTreeSet<&String> = once.iter().map(|(k, _)| k).collect();
    assert_eq!(
        distinct.len(),
        once.len(),
        "a recipient was requested twice"
    );
    let state = State::open(&dir.join(".winback")).unwrap();
    let unknown: Vec<_> = state.unknown_rows().unwrap();
    assert_eq!(unknown.len(), once.len(), "{shape:?}");
    assert!(
        unknown.iter().all(|r| r.reason.as_deref() == Some(reason)),
        "{shape:?}: {:?}",
        unknown[0].reason
    );
    let manifest =
        std::fs::read_to_string(dir.join(format!("out/_runs/as_of={AS_OF}/manifest.json")))
            .unwrap();
    assert!(manifest.contains(reason), "the summary names the reason");
    assert!(!manifest.contains(KEY) && !seen.contains(KEY));
    if matches!(shape, Lost::Dropped) {
        // The lookup and the later sends go to a provider that answers.
        std::fs::write(
            &file,
            std::fs::read_to_string(&file)
                .unwrap()
                .replace(&dropper, &server.uri()),
        )
        .unwrap();
    }

    // 2. The provider's activity lists the first half: those were delivered.
    let (listed, missing) = once.split_at(once.len() / 2);
    let messages: Vec<Value> = listed
        .iter()
        .enumerate()
        .map(|(i, (_, to))| {
            serde_json::json!({"msg_id": format!("msg-{i}"), "to_email": to,
                "status": "delivered", "from_email": "shop@example.com", "subject": "s",
                "opens_count": 0, "clicks_count": 0, "last_event_time": "2026-06-01T02:30:00Z"})
        })
        .collect();
    Mock::given(method("GET"))
        .and(path("/v3/messages"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({ "messages": messages })),
        )
        .mount(&server)
        .await;
    let dry = winback(dir, &["sends", "--reconcile", "--dry-run", "--json"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert_eq!(
        state.unknown_rows().unwrap().len(),
        once.len(),
        "a dry run changes nothing"
    );
    let rec = winback(dir, &["sends", "--reconcile"]);
    assert_eq!(rec.status.code(), Some(0), "{}", text(&rec));
    let rows = state.all_rows().unwrap();
    for (key, _) in listed {
        let r = rows.iter().find(|r| &r.idempotency_key == key).unwrap();
        assert_eq!(r.state.as_str(), "delivered", "{key}");
        assert!(
            r.provider_message_id
                .as_deref()
                .unwrap()
                .starts_with("msg-")
        );
    }
    for (key, _) in missing {
        let r = rows.iter().find(|r| &r.idempotency_key == key).unwrap();
        assert_eq!(r.state.as_str(), "not_sent", "{key}");
    }
    assert!(!text(&rec).contains("@example.com"), "addresses masked");

    // 3. The provider is back: the next run sends exactly the not_sent ones, once.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "again"))
        .mount(&server)
        .await;
    let second = winback(dir, &["run", "--as-of", AS_OF]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let again: BTreeSet<String> = sent(&server.received_requests().await.unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let want: BTreeSet<String> = missing.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(again, want, "exactly the not_sent recipients, once");
}

/// The project with its SMS channel on a Twilio-compatible server (no quiet hours) and the
/// quick campaign's SMS step due the night after its e-mail.
fn sms_via_twilio(dir: &Path, base: &str) {
    let file = dir.join("pipelines/reactivation.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let old = "[channels.sms]\ntype = \"file\"\nmedium = \"sms\"\nquiet_hours = \"21:00-09:00\"";
    assert!(
        text.contains(old),
        "the default pipeline's SMS channel moved"
    );
    let new = format!(
        "[channels.sms]\ntype = \"twilio\"\nbase_url = \"{base}\"\naccount_sid_env = \"WINBACK_TEST_TW_SID\"\nauth_token_env = \"WINBACK_TEST_TW_TOKEN\"\nfrom = \"+15550001111\"\nretry_base_ms = 10\nretry_cap_ms = 50\nquiet_hours = \"\""
    );
    let step = "day = 3\nchannel = \"sms\"";
    assert!(text.contains(step), "the quick campaign's SMS step moved");
    // The steps that may go by e-mail or SMS go by e-mail only here: the SMS channel
    // serves the quick campaign's SMS step alone, whose requests these tests count.
    let list = "channel = [\"email\", \"sms\"]";
    assert!(text.contains(list), "the shipped channel lists moved");
    // No call list either: the first steps' top customers are e-mailed too.
    let calls = "channel = [\"calls\", \"email\", \"sms\"]";
    assert!(text.contains(calls), "the shipped call steps moved");
    let text: String = text
        .replace(old, &new)
        .replace(step, "day = 0\nchannel = \"sms\"")
        .replace(list, "channel = [\"email\"]")
        .replace(calls, "channel = [\"email\"]")
        .lines()
        .filter(|line| !line.starts_with("sms_text = ") && !line.starts_with("call_"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
}

fn next_day(d: &str) -> String {
    (chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap() + chrono::Days::new(1)).to_string()
}

fn winback_sms(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .current_dir(dir)
        .env("WINBACK_TOKEN_SECRET", crate::support::TOKEN_SECRET)
        .env("WINBACK_TEST_TW_SID", "AC0123456789abcdef0123456789abcdef")
        .env("WINBACK_TEST_TW_TOKEN", "twilio-token-never-printed")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_refusing_the_from_number_exits_78_and_rejects_nobody() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"code":21606,"message":"The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account","status":400}"#,
        ))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    sms_via_twilio(dir, &server.uri());
    let first = winback_sms(dir, &["run", "--as-of", AS_OF]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let second = winback_sms(dir, &["run", "--as-of", &next_day(AS_OF)]);
    let seen = text(&second);
    assert_eq!(second.status.code(), Some(78), "{seen}");
    assert!(seen.contains("`from`"), "names the setting: {seen}");
    assert!(!seen.contains("twilio-token-never-printed"));
    let state = State::open(&dir.join(".winback")).unwrap();
    let rows = state.all_rows().unwrap();
    let sms: Vec<_> = rows
        .iter()
        .filter(|r| r.channel == "sms" && r.attempts > 0)
        .collect();
    assert!(!sms.is_empty(), "the SMS step was attempted");
    assert!(
        sms.iter().all(|r| r.state.as_str() == "failed"),
        "nobody rejected for the sender's configuration: {:?}",
        sms.iter().map(|r| r.state).collect::<Vec<_>>()
    );
}

/// Runs the project in `dir` for `AS_OF` and the next day, its SMS through a fake that
/// accepts everything, with `opt_out` recording STOPs between the two; returns the SMS
/// requests of the second night and the `suppressed` rows of the second run.
/// Where the opt-outs of `sms_second_night` come from.
#[derive(PartialEq)]
enum OptOuts {
    None,
    /// The state database (what providers report, a STOP reply).
    StateDatabase,
    /// The `unsubscribes` source, dated long after the runs' `as_of`.
    SourceAfterAsOf,
}

async fn sms_second_night(dir: &Path, opt_outs: OptOuts) -> (usize, Vec<String>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM1"}"#))
        .mount(&server)
        .await;
    campaign_project(dir);
    sms_via_twilio(dir, &server.uri());
    let first = winback_sms(dir, &["run", "--as-of", AS_OF]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // Everyone the quick campaign reached opts out by SMS, on a day long after the runs'
    // as_of: an as_of cut would miss them all.
    let state = State::open(&dir.join(".winback")).unwrap();
    let reached: Vec<String> = state
        .all_rows()
        .unwrap()
        .into_iter()
        .filter(|r| r.campaign == "winback_quick" && r.state.as_str() == "delivered")
        .map(|r| r.customer_id)
        .collect();
    let mut args = vec!["run".to_string(), "--as-of".into(), next_day(AS_OF)];
    if opt_outs == OptOuts::SourceAfterAsOf {
        let mut csv = String::from("customer_id,address,channel,ts\n");
        for c in &reached {
            csv.push_str(&format!("{c},,sms,2031-01-01 00:00:00\n"));
        }
        let folder = crate::support::csv_source(dir, "late-unsubscribes", &csv);
        args.extend([
            "--input".into(),
            format!("unsubscribes={}", folder.display()),
        ]);
        args.extend(["--set".into(), "sources.unsubscribes.format=csv".into()]);
    }
    if opt_outs == OptOuts::StateDatabase {
        // A STOP a provider reported.
        for customer_id in reached {
            state
                .record_suppression(&winback::state::suppressions::Suppression {
                    customer_id: Some(customer_id),
                    medium: Some(winback::message::Medium::Sms),
                    address: None,
                    reason: "unsubscribed".into(),
                    source: "provider:sms".into(),
                    campaign: None,
                    at: chrono::Utc::now(),
                })
                .unwrap();
        }
    }
    drop(state);
    let day2 = next_day(AS_OF);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let second = winback_sms(dir, &args);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let texted = server.received_requests().await.unwrap().len();
    let suppressed = crate::support::read_output(&dir.join("out"), "suppressed", &day2).await;
    (texted, suppressed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_in_the_state_database_are_honoured_whatever_the_as_of() {
    opt_outs_are_honoured_whatever_the_as_of(OptOuts::StateDatabase).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_dated_after_the_as_of_are_honoured() {
    // The `unsubscribes` source is never cut by as_of (winback refuses a time_column on
    // it): a run, or a backfill with --send, for a date before the unsubscribe honours it.
    opt_outs_are_honoured_whatever_the_as_of(OptOuts::SourceAfterAsOf).await;
}

async fn opt_outs_are_honoured_whatever_the_as_of(opt_outs: OptOuts) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (texted, _) = sms_second_night(a.path(), OptOuts::None).await;
    assert!(texted > 0, "without opt-outs the SMS step goes out");
    let (after, suppressed) = sms_second_night(b.path(), opt_outs).await;
    assert_eq!(after, 0, "an opted-out customer was texted");
    let unsubscribed = suppressed
        .iter()
        .filter(|row| row.contains("winback_quick") && row.contains("unsubscribed"))
        .count();
    assert_eq!(
        unsubscribed, texted,
        "each SMS of the night is suppressed as unsubscribed instead"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_cannot_be_written_while_delivering_exits_1_not_78() {
    // A failed ledger write is never the user's configuration: exit 1 (a retry may help),
    // blamed `external` in the manifest, and the request is not made without its record.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project_with_sendgrid(dir, &server.uri());
    drop(State::open(&dir.join(".winback")).unwrap());
    fill_the_disk_on_reserve(&dir.join(".winback"));
    let out = winback(dir, &["run", "--as-of", AS_OF]);
    let seen = text(&out);
    assert_eq!(out.status.code(), Some(1), "{seen}");
    assert!(seen.contains("disk is full"), "{seen}");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("out/_runs/as_of={AS_OF}/manifest.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["blame"], "external", "{manifest}");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "no request without its ledger record"
    );
}

/// The disk "fills up" exactly when a batch is reserved before its request.
fn fill_the_disk_on_reserve(state_dir: &Path) {
    drop(State::open(state_dir).unwrap());
    let db = rusqlite::Connection::open(state_dir.join("winback.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER full_disk BEFORE UPDATE OF state ON sends \
         WHEN NEW.state = 'in_flight' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_retries_a_run_whose_ledger_cannot_be_written() {
    // The same failure under the scheduler's own retry policy: external, so retried, and
    // each attempt recorded in the run history with its error.
    use winback::schedule::{BackfillRequest, ExecOptions, RunPolicy};
    use winback::state::RunStatus;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir); // its channels write files: nothing to reach
    let state_dir = dir.join(".winback");
    fill_the_disk_on_reserve(&state_dir);
    let runner = winback::pipeline::scheduled::EngineRunner::new(Some(state_dir.clone()));
    let state = State::open(&state_dir).unwrap();
    let as_of = crate::support::date(AS_OF);
    let mut req = BackfillRequest::new(dir.join("pipelines/reactivation.toml"), as_of, as_of);
    req.policy = RunPolicy {
        retries: 1,
        retry_backoff: Duration::from_millis(10),
        max_run: None,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let report =
        winback::schedule::backfill(&runner, &state, &req, &ExecOptions::default(), &cancel)
            .await
            .unwrap();
    let failed = report.failed.expect("the run fails");
    assert_eq!(
        failed.blame,
        winback::error::Blame::External,
        "{}",
        failed.error
    );
    let runs = state.all_runs().unwrap();
    let attempts: Vec<(u32, RunStatus)> = runs.iter().map(|r| (r.attempt, r.status)).collect();
    assert_eq!(
        attempts,
        vec![(1, RunStatus::Failed), (2, RunStatus::Failed)]
    );
    for r in &runs {
        let error = r.error.as_deref().unwrap_or_default();
        assert!(error.contains("disk is full"), "{error}");
    }
}
