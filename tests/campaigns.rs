//! Campaigns end to end, as the `winback` binary runs them: the demo's file outbox, a dry
//! run, a backfill that must not send, a provider that refuses the key, and a process
//! killed with SIGKILL in the middle of sending. Providers are fakes on 127.0.0.1.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use winback::message::SendState;
use winback::state::State;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

pub(crate) const AS_OF: &str = "2026-06-01";
pub(crate) const KEY: &str = "SG.test-key-never-printed-4242";

/// A project with demo data ending at `AS_OF` (2,000 rows: about 250 customers).
pub(crate) fn campaign_project(dir: &Path) {
    project(dir);
    std::fs::remove_dir_all(dir.join("demo-data")).unwrap();
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: dir.join("demo-data"),
        rows: 6_000,
        end: date(AS_OF),
        seed: 11,
    })
    .unwrap();
}

/// Point the project's e-mail channel at a SendGrid-compatible server.
pub(crate) fn email_via_sendgrid(dir: &Path, base: &str, extra: &str) {
    let file = dir.join("pipelines/reactivation.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let old = "[channels.email]\ntype = \"file\"\nmedium = \"email\"\n";
    assert!(
        text.contains(old),
        "the default pipeline's e-mail channel moved"
    );
    let new = format!(
        "[channels.email]\ntype = \"sendgrid\"\nbase_url = \"{base}\"\napi_key_env = \"WINBACK_TEST_SG_KEY\"\nfrom = \"Shop <shop@example.com>\"\nretry_base_ms = 10\nretry_cap_ms = 50\n{extra}\n"
    );
    std::fs::write(&file, text.replace(old, &new)).unwrap();
}

pub(crate) fn winback(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .current_dir(dir)
        .env("WINBACK_TOKEN_SECRET", crate::support::TOKEN_SECRET)
        .env("WINBACK_TEST_SG_KEY", KEY)
        .env("WINBACK_LOG", "winback=debug")
        .output()
        .unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// States of the ledger, counted.
fn ledger(dir: &Path) -> BTreeMap<&'static str, u64> {
    ledger_of(dir, |_| true)
}

/// States of the ledger rows of the `email` channel (the one a fake SendGrid serves;
/// the demo's SMS-only customers get their e-mail steps by SMS, on the file channel).
fn email_ledger(dir: &Path) -> BTreeMap<&'static str, u64> {
    ledger_of(dir, |channel| channel == "email")
}

fn ledger_of(dir: &Path, channel: impl Fn(&str) -> bool) -> BTreeMap<&'static str, u64> {
    let state = State::open(&dir.join(".winback")).unwrap();
    let mut out = BTreeMap::new();
    for r in state.all_rows().unwrap() {
        if channel(&r.channel) {
            *out.entry(r.state.as_str()).or_default() += 1;
        }
    }
    out
}

/// Every idempotency key a fake SendGrid received, in order.
async fn keys_received(server: &MockServer) -> Vec<String> {
    let mut keys = Vec::new();
    for r in server.received_requests().await.unwrap_or_default() {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        for p in body["personalizations"].as_array().unwrap() {
            keys.push(
                p["custom_args"]["idempotency_key"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    keys
}

/// No key, e-mail address or phone number in what a person or a log collector sees.
fn assert_no_secrets(what: &str, seen: &str) {
    assert!(!seen.contains(KEY), "{what} shows the API key");
    assert!(
        !seen.contains("@example.com>") || !seen.contains("customer"),
        "{what}"
    );
    for needle in [
        "customer1@",
        "customer2@",
        "customer10@",
        "@example.com\"",
        "+1555",
    ] {
        assert!(!seen.contains(needle), "{what} shows {needle}: {seen}");
    }
}

#[test]
fn the_demo_sends_its_campaigns_to_the_file_outbox_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    // No SMS quiet hours: what is sent tonight does not depend on the test's wall clock.
    let run = [
        "run",
        "--as-of",
        AS_OF,
        "--set",
        "channels.sms.quiet_hours=",
    ];
    let first = winback(dir, &run);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let outbox = dir.join(format!("out/_outbox/as_of={AS_OF}"));
    let lines = |dir: &Path| -> usize {
        read_dir_files(dir)
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
            .sum()
    };
    let (emails, texts) = (lines(&outbox.join("email")), lines(&outbox.join("sms")));
    // The call lists: one CSV per campaign, a header line each.
    let calls = |dir: &Path| lines(dir) - read_dir_files(dir).len();
    let called = calls(&outbox.join("calls"));
    let sent = emails + texts + called;
    // Step 1 of amends and quick calls their call_top most valuable first.
    assert!(
        called > 0,
        "the most valuable customers are on the call list"
    );
    let list: String = read_dir_files(&outbox.join("calls"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(list.starts_with("customer,phone,owner,reason,evidence,suggested_remedy,"));
    assert!(
        list.contains(",+1555"),
        "the call list holds the phone numbers"
    );
    let counts = ledger(dir);
    assert!(emails > 0, "the demo sends something");
    // Step 1 of the quick and amends campaigns is `["email", "sms"]`: customers who
    // accept only texts get it by SMS.
    assert!(texts > 0, "the demo's SMS-only customers are texted");
    assert_eq!(
        counts.get("delivered").copied(),
        Some(sent as u64),
        "{counts:?}"
    );
    assert!(
        counts.get("holdout").copied().unwrap_or(0) > 0,
        "{counts:?}"
    );
    // The holdout and suppressed tables are outputs; `sends` lists by campaign and state.
    assert!(!read_dir_files(&dir.join(format!("out/holdout/as_of={AS_OF}"))).is_empty());
    let listed = winback(dir, &["sends"]);
    assert!(text(&listed).contains("delivered"), "{}", text(&listed));
    // The same night again: nobody is messaged twice.
    let again = winback(dir, &run);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(
        lines(&outbox.join("email")) + lines(&outbox.join("sms")) + calls(&outbox.join("calls")),
        sent,
        "nothing sent twice"
    );
    assert_eq!(ledger(dir), counts);
    assert_no_secrets("the run's output", &text(&first));
    let manifest =
        std::fs::read_to_string(dir.join(format!("out/_runs/as_of={AS_OF}/manifest.json")))
            .unwrap();
    assert_no_secrets("the manifest", &manifest);
}

fn read_dir_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_the_requests_and_sends_and_records_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    email_via_sendgrid(dir, &server.uri(), "");
    let out = winback(dir, &["run", "--as-of", AS_OF, "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "a dry run sends nothing"
    );
    assert!(ledger(dir).is_empty(), "a dry run records nothing");
    let requests = std::fs::read_to_string(
        dir.join(format!("out/_outbox/as_of={AS_OF}/email.requests.jsonl")),
    )
    .unwrap();
    assert!(requests.contains("/v3/mail/send"), "{requests}");
    assert!(requests.contains("personalizations"), "{requests}");
    assert!(
        !requests.contains(KEY),
        "the key is masked in the dry-run requests"
    );

    // A backfill of the same date does not send either, unless told to.
    let out = winback(dir, &["backfill", "--from", AS_OF, "--to", AS_OF]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "a backfill sends nothing"
    );
    assert!(ledger(dir).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_stops_the_channel_and_names_the_variable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string("{\"errors\":[{\"message\":\"bad key\"}]}"),
        )
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    email_via_sendgrid(dir, &server.uri(), "batch_size = 20\nconcurrency = 2");
    let out = winback(dir, &["run", "--as-of", AS_OF]);
    let seen = text(&out);
    assert_ne!(out.status.code(), Some(0), "{seen}");
    assert!(
        seen.contains("WINBACK_TEST_SG_KEY") && seen.contains("email"),
        "{seen}"
    );
    // Stopped at once: no request after the first refusal (two were already in flight).
    assert!(
        server.received_requests().await.unwrap().len() <= 2,
        "stopped at once"
    );
    let counts = email_ledger(dir);
    assert_eq!(counts.get("delivered"), None, "{counts:?}");
    assert_no_secrets("a refused key's logs and errors", &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_while_sending_never_sends_anyone_twice() {
    // A slow provider: each request of 5 recipients takes 1.5 s, so the kill below (within
    // about 50 ms of a request arriving) lands while it is in flight even on a loaded
    // machine (with 300 ms and a 200 ms poll it could land between two requests).
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_millis(1500)))
        .mount(&slow)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    email_via_sendgrid(dir, &slow.uri(), "batch_size = 5\nconcurrency = 1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(["run", "--as-of", AS_OF, "--lease-secs", "600"])
        .current_dir(dir)
        .env("WINBACK_TOKEN_SECRET", crate::support::TOKEN_SECRET)
        .env("WINBACK_TEST_SG_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some batches were delivered, then kill in the middle of a request.
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if keys_received(&slow).await.len() >= 15 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no delivery started"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = ledger(dir);
    assert!(
        before.get("in_flight").copied().unwrap_or(0) > 0,
        "killed mid-request: {before:?}"
    );
    let first: Vec<String> = keys_received(&slow).await;

    // The rerun goes to a fast provider: it sends the rest, each once.
    let fast = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&fast)
        .await;
    email_via_sendgrid_again(dir, &slow.uri(), &fast.uri());
    // The dead run's lock is taken over at once: its holder is a dead process of this host
    // (no waiting for the lease to run out).
    let rerun = winback(dir, &["run", "--as-of", AS_OF, "--lease-secs", "600"]);
    assert_eq!(
        rerun.status.code(),
        Some(2),
        "unknown recipients make the run partial: {}",
        text(&rerun)
    );
    let second = keys_received(&fast).await;
    let mut all = first.clone();
    all.extend(second.iter().cloned());
    let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a key reached the providers twice"
    );
    let after = ledger(dir);
    let unknown = after.get("unknown").copied().unwrap_or(0);
    assert_eq!(unknown, before["in_flight"], "{after:?}");
    assert_eq!(after.get("in_flight"), None);
    let emails = email_ledger(dir);
    assert_eq!(
        emails.get("delivered").copied().unwrap_or(0) + emails.get("unknown").copied().unwrap_or(0),
        all.len() as u64,
        "every message received is delivered or unknown: {emails:?}"
    );
    let planned: u64 = after.get("planned").copied().unwrap_or(0);
    assert_eq!(planned, 0, "nothing left unsent: {after:?}");
    // The operator's list of the in-flight-at-crash recipients, masked.
    let listed = text(&winback(dir, &["sends", "--unknown"]));
    assert!(
        listed.contains(&format!("{unknown} recipient(s) were in flight")),
        "{listed}"
    );
    assert_no_secrets("`winback sends --unknown`", &listed);
    assert_no_secrets("the rerun's logs", &text(&rerun));
    let state = State::open(&dir.join(".winback")).unwrap();
    assert!(
        state
            .unknown_rows()
            .unwrap()
            .iter()
            .all(|r| r.state == SendState::Unknown)
    );
}

fn email_via_sendgrid_again(dir: &Path, old: &str, new: &str) {
    let file = dir.join("pipelines/reactivation.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(old, new)).unwrap();
}
