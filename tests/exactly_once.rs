//! Exactly once when the provider's answer is lost, as the `winback` binary runs it: the
//! provider takes the request and answers 500 (Mailgun and SendGrid users see this for mail
//! that went out); every recipient ends `unknown`, the request is made once, the run exits
//! 2 naming the reason; `winback sends --reconcile` asks the provider's lookup and settles
//! the ones it lists as `delivered` and the others as `not_sent`; the next run sends
//! exactly those, once.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use winback::state::State;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::*;

const AS_OF: &str = "2026-06-01";
const KEY: &str = "SG.test-key-exactly-once-4242";

fn winback(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_winback"))
        .args(args)
        .current_dir(dir)
        .env("WINBACK_TEST_SG_KEY", KEY)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The (key, address) of every personalization of the mail/send requests received.
fn sent(reqs: &[Request]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in reqs.iter().filter(|r| r.url.path() == "/v3/mail/send") {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
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

fn project_with_sendgrid(dir: &Path, base: &str) {
    project(dir);
    std::fs::remove_dir_all(dir.join("demo-data")).unwrap();
    winback::demo::generate(&winback::demo::DemoOptions {
        dir: dir.join("demo-data"),
        rows: 6_000,
        end: date(AS_OF),
        seed: 11,
    })
    .unwrap();
    let file = dir.join("pipelines/reactivation.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let old = "[channels.email]\ntype = \"file\"\nmedium = \"email\"\n";
    assert!(
        text.contains(old),
        "the default pipeline's e-mail channel moved"
    );
    let new = format!(
        "[channels.email]\ntype = \"sendgrid\"\nbase_url = \"{base}\"\napi_key_env = \"WINBACK_TEST_SG_KEY\"\nfrom = \"Shop <shop@example.com>\"\nretry_base_ms = 10\nretry_cap_ms = 50\nbatch_size = 1000\nconcurrency = 1\nreconcile_after_secs = 0\nactivity_requests_per_min = 60000\n"
    );
    std::fs::write(&file, text.replace(old, &new)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_unknown_then_reconciled_and_the_rest_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/mail/send"))
        .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project_with_sendgrid(dir, &server.uri());

    // 1. The provider took the request; its answer is a 500: unknown, sent once, exit 2.
    let first = winback(dir, &["run", "--as-of", AS_OF]);
    let seen = text(&first);
    assert_eq!(first.status.code(), Some(2), "{seen}");
    let reqs = server.received_requests().await.unwrap();
    let once = sent(&reqs);
    assert!(!once.is_empty(), "the campaign sent something: {seen}");
    let posts = reqs
        .iter()
        .filter(|r| r.url.path() == "/v3/mail/send")
        .count();
    let distinct: BTreeSet<&String> = once.iter().map(|(k, _)| k).collect();
    assert_eq!(
        distinct.len(),
        once.len(),
        "a recipient was requested twice"
    );
    let state = State::open(&dir.join(".winback")).unwrap();
    let unknown: Vec<_> = state.unknown_rows().unwrap();
    assert_eq!(unknown.len(), once.len());
    assert!(
        unknown
            .iter()
            .all(|r| r.reason.as_deref() == Some("provider 500"))
    );
    let manifest =
        std::fs::read_to_string(dir.join(format!("out/_runs/as_of={AS_OF}/manifest.json")))
            .unwrap();
    assert!(
        manifest.contains("provider 500"),
        "the summary names the reason"
    );
    assert!(!manifest.contains(KEY) && !seen.contains(KEY));

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
    assert!(posts >= 1);
}
