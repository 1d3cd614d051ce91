//! `winback send-test` as the binary runs it, against fake providers on 127.0.0.1: the
//! provider sees exactly the given addresses and no customer's; the ledger is unchanged
//! and `test_sends` holds one row per message with the recipient masked; a `--to` of the
//! wrong kind is refused before anything is computed or sent; `sandbox = true` puts the
//! provider's sandbox flag in the request (SendGrid, Mailgun) and leaves it out otherwise.

use std::path::Path;

use serde_json::Value;
use winback::state::State;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::campaigns::{AS_OF, campaign_project, email_via_sendgrid, text, winback};
use crate::support::*;

const QA: &str = "qa@shop.example";
const LEAD: &str = "lead@shop.example";
const CAMPAIGN: &str = "winback_quick";

/// The `to` of every personalization SendGrid received, and each body.
fn sendgrid_to(reqs: &[Request]) -> (Vec<String>, Vec<Value>) {
    let mut to = Vec::new();
    let mut bodies = Vec::new();
    for r in reqs.iter().filter(|r| r.url.path() == "/v3/mail/send") {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        for p in body["personalizations"].as_array().unwrap() {
            to.push(p["to"][0]["email"].as_str().unwrap().to_string());
        }
        bodies.push(body);
    }
    to.sort();
    (to, bodies)
}

/// Whether `s` holds a demo customer's address (`customer<id>@example.com`).
fn names_a_customer_address(s: &str) -> bool {
    s.match_indices("customer").any(|(i, _)| {
        s[i + "customer".len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// The lowest `k` customer ids of the campaign's audience table written by a run.
async fn lowest_ids(dir: &Path, k: usize) -> Vec<String> {
    let rows = read_output(&dir.join("out"), CAMPAIGN, AS_OF).await;
    assert!(rows[0].starts_with("customer_id,"), "{}", rows[0]);
    let ids: Vec<String> = rows[1..]
        .iter()
        .map(|r| r.split(',').next().unwrap().to_string())
        .collect();
    assert!(ids.len() >= k, "the audience has {} rows", ids.len());
    ids[..k].to_vec()
}

fn send_test(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["send-test", "--campaign", CAMPAIGN, "--as-of", AS_OF];
    args.extend(extra);
    winback(dir, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_reaches_only_the_given_addresses_and_writes_no_customer_row() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(202).insert_header("X-Message-Id", "sg-test-1"))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    email_via_sendgrid(dir, &server.uri(), "");
    // A run first: the ledger holds the customers' rows.
    let run = winback(dir, &["run", "--as-of", AS_OF]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let state = State::open(&dir.join(".winback")).unwrap();
    let ledger = state.all_rows().unwrap();
    assert!(!ledger.is_empty());
    let customers_sent = server.received_requests().await.unwrap().len();
    assert!(customers_sent > 0);

    let out = send_test(dir, &["--step", "1", "--rows", "2", "--to", QA, LEAD]);
    let seen = text(&out);
    assert_eq!(out.status.code(), Some(0), "{seen}");
    let reqs = server.received_requests().await.unwrap();
    let (to, bodies) = sendgrid_to(&reqs[customers_sent..]);
    // Two samples, each to both addresses; nobody else.
    assert_eq!(to, [LEAD, LEAD, QA, QA]);
    for b in &bodies {
        assert!(b.get("mail_settings").is_none(), "no sandbox: {b}");
        let subjects: Vec<&str> = b["personalizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["subject"].as_str().or(b["subject"].as_str()).unwrap())
            .collect();
        assert!(subjects.iter().all(|s| s.starts_with("[TEST] ")), "{b}");
        assert!(!names_a_customer_address(&b.to_string()), "{b}");
    }

    // The ledger is as the run left it; test_sends has one row per message, masked.
    assert_eq!(state.all_rows().unwrap(), ledger);
    let rows = state.test_sends().unwrap();
    assert_eq!(rows.len(), 4);
    let samples = lowest_ids(dir, 2).await;
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.sample_customer_id.clone(), r.recipient_masked.clone()))
        .collect();
    got.sort();
    let mut want = Vec::new();
    for id in &samples {
        for masked in ["l***@shop.example", "q***@shop.example"] {
            want.push((id.clone(), masked.to_string()));
        }
    }
    assert_eq!(got, want);
    for r in &rows {
        assert_eq!(
            (r.campaign.as_str(), r.step, r.channel.as_str()),
            (CAMPAIGN, 1, "email")
        );
        assert_eq!(r.outcome, "delivered");
        assert_eq!(r.provider_message_id.as_deref(), Some("sg-test-1"));
        assert!(!r.sandbox);
    }
    // The summary names the samples and the masked recipients, never an address.
    assert!(seen.contains("q***@shop.example"), "{seen}");
    assert!(seen.contains(&samples[0]), "{seen}");
    assert!(!seen.contains(QA) && !seen.contains(LEAD), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendgrid_sandbox_sets_sandbox_mode_in_the_request() {
    let server = MockServer::start().await;
    // SendGrid answers a valid sandbox request 200 (not 202).
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    email_via_sendgrid(dir, &server.uri(), "sandbox = true");
    let out = send_test(dir, &["--rows", "1", "--to", QA]);
    let seen = text(&out);
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert!(seen.contains("sandbox"), "{seen}");
    let reqs = server.received_requests().await.unwrap();
    let (to, bodies) = sendgrid_to(&reqs);
    assert_eq!(to, [QA]);
    assert_eq!(bodies[0]["mail_settings"]["sandbox_mode"]["enable"], true);
    let rows = State::open(&dir.join(".winback"))
        .unwrap()
        .test_sends()
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].sandbox);
    assert_eq!(rows[0].outcome, "delivered");
}

/// Point the project's e-mail channel at a Mailgun-compatible server.
fn email_via_mailgun(dir: &Path, base: &str, extra: &str) {
    let file = dir.join("pipelines/reactivation.toml");
    let toml = std::fs::read_to_string(&file).unwrap();
    let old = "[channels.email]\ntype = \"file\"\nmedium = \"email\"\n";
    assert!(toml.contains(old));
    let new = format!(
        "[channels.email]\ntype = \"mailgun\"\nbase_url = \"{base}\"\ndomain = \"mg.shop.example\"\napi_key_env = \"WINBACK_TEST_SG_KEY\"\nfrom = \"shop@shop.example\"\n{extra}\n"
    );
    std::fs::write(&file, toml.replace(old, &new)).unwrap();
}

/// `(to, o:testmode)` of each Mailgun request.
fn mailgun_requests(reqs: &[Request]) -> Vec<(Vec<String>, Vec<String>)> {
    reqs.iter()
        .filter(|r| r.url.path() == "/v3/mg.shop.example/messages")
        .map(|r| {
            let form: Vec<(String, String)> =
                url::form_urlencoded::parse(&r.body).into_owned().collect();
            let get = |k: &str| -> Vec<String> {
                form.iter()
                    .filter(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            (get("to"), get("o:testmode"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailgun_sandbox_sets_testmode_and_only_when_true() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mg.shop.example/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"id":"<mg-1@mg.shop.example>","message":"Queued"}"#),
        )
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    let file = dir.join("pipelines/reactivation.toml");
    let plain = std::fs::read_to_string(&file).unwrap();
    for (extra, testmode) in [("sandbox = true", vec!["yes"]), ("sandbox = false", vec![])] {
        std::fs::write(&file, &plain).unwrap();
        email_via_mailgun(dir, &server.uri(), extra);
        let before = server.received_requests().await.unwrap().len();
        let out = send_test(dir, &["--rows", "1", "--to", QA]);
        assert_eq!(out.status.code(), Some(0), "{extra}: {}", text(&out));
        let reqs = server.received_requests().await.unwrap();
        let sent = mailgun_requests(&reqs[before..]);
        assert_eq!(
            sent,
            vec![(
                vec![QA.to_string()],
                testmode.iter().map(|s| s.to_string()).collect()
            )],
            "{extra}"
        );
    }
    let rows = State::open(&dir.join(".winback"))
        .unwrap()
        .test_sends()
        .unwrap();
    let flags: Vec<(bool, Option<&str>)> = rows
        .iter()
        .map(|r| (r.sandbox, r.provider_message_id.as_deref()))
        .collect();
    assert_eq!(
        flags,
        [
            (true, Some("<mg-1@mg.shop.example>")),
            (false, Some("<mg-1@mg.shop.example>"))
        ]
    );
}

#[test]
fn send_test_refuses_addresses_of_the_other_medium_and_sends_sms_to_the_test_outbox() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    campaign_project(dir);
    // Step 2 of winback_quick is an SMS (the file channel `sms`): e-mail addresses are refused.
    let phone = "+4915112345678";
    let out = send_test(dir, &["--step", "2", "--to", phone, QA]);
    let seen = text(&out);
    assert_eq!(out.status.code(), Some(78), "{seen}");
    assert!(
        seen.contains("--to #2 (q***@shop.example) is not an E.164"),
        "{seen}"
    );
    assert!(!seen.contains(QA), "{seen}");
    // A step the campaign does not have.
    let out = send_test(dir, &["--step", "9", "--to", phone]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("--step 9"), "{}", text(&out));
    assert!(
        !dir.join(".winback/winback.db").exists()
            || State::open(&dir.join(".winback"))
                .unwrap()
                .test_sends()
                .unwrap()
                .is_empty()
    );

    let out = send_test(dir, &["--step", "2", "--rows", "2", "--to", phone]);
    let seen = text(&out);
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert!(!seen.contains(phone), "{seen}");
    assert!(seen.contains("+4915***5678"), "{seen}");
    // Only the test outbox holds them, addressed to the test number, marked as tests.
    let file = dir.join("out/_outbox/test_sends/sms/winback_quick.jsonl");
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["to"], phone, "{l}");
        assert!(l["text"].as_str().unwrap().starts_with("[TEST] "), "{l}");
        assert!(
            l["customer_id"].as_str().unwrap().starts_with("test:"),
            "{l}"
        );
    }
    assert!(!dir.join(format!("out/_outbox/as_of={AS_OF}")).exists());
    let state = State::open(&dir.join(".winback")).unwrap();
    assert!(state.all_rows().unwrap().is_empty(), "no ledger row");
    let rows = state.test_sends().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.medium == "sms"
        && r.outcome == "delivered"
        && r.recipient_masked == "+4915***5678"));
}
