//! `winback listen` over real HTTP on 127.0.0.1: one-click unsubscribes honoured by every
//! later send whatever its `as_of`, tokens that cannot be forged and survive a secret
//! rotation, and each provider's signed event webhooks recorded once and acted on by the
//! next run. The listener is the `winback` binary; its log is searched for tokens and
//! addresses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use winback::feedback::signing;
use winback::message::Medium;
use winback::state::State;
use winback::unsubscribe_token::TokenKeys;

use crate::campaigns::{AS_OF, campaign_project, text, winback};
use crate::support::{TOKEN_SECRET, free_port};

/// The secret tokens were signed with before the rotation (still accepted).
const OLD_SECRET: &str = "old-token-secret-9876543210fedcba-9876543210";
const MAILGUN_KEY: &str = "mailgun-webhook-signing-key-test-1";
const TWILIO_TOKEN: &str = "twilio-auth-token-test-12345678";

/// `winback listen` on a free loopback port, killed on drop; its log in `log`.
struct Listening {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Listening {
    fn start(dir: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Listening {
        let bind = format!("127.0.0.1:{port}");
        let log = dir.join(format!("listen-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_winback"))
            .args(["listen", "--bind", &bind])
            .args(args)
            .current_dir(dir)
            .env("WINBACK_TOKEN_SECRET", TOKEN_SECRET)
            .env("WINBACK_TOKEN_SECRET_OLD", OLD_SECRET)
            .env("WINBACK_LOG", "winback=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let listening = Listening {
            child,
            url: format!("http://{bind}"),
            log,
        };
        let started = Instant::now();
        loop {
            if std::net::TcpStream::connect(&bind).is_ok() {
                return listening;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "winback listen did not answer: {}",
                std::fs::read_to_string(&listening.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// A client that never follows redirects: RFC 8058 wants a 200, not a redirect.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The pipeline of `dir` edited: `from` replaced by `to` everywhere (it must be there).
fn edit_pipeline(dir: &Path, from: &str, to: &str) {
    let file = dir.join("pipelines/reactivation.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(from), "the shipped pipeline moved: {from:?}");
    std::fs::write(&file, text.replace(from, to)).unwrap();
}

/// A demo project whose tokens verify with the current secret and the one before it;
/// with `email_only`, the steps that offer SMS to customers who accept only texts go out
/// by e-mail alone (a customer refused on e-mail is then suppressed, not texted).
fn project(dir: &Path, email_only: bool) {
    campaign_project(dir);
    if email_only {
        edit_pipeline(dir, "channel = [\"email\", \"sms\"]", "channel = \"email\"");
        edit_pipeline(
            dir,
            "channel = [\"calls\", \"email\", \"sms\"]",
            "channel = \"email\"",
        );
        let file = dir.join("pipelines/reactivation.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("sms_text = ") && !l.starts_with("call_"))
            .collect();
        std::fs::write(&file, kept.join("\n")).unwrap();
    }
    edit_pipeline(
        dir,
        "token_secret_env = \"WINBACK_TOKEN_SECRET\"",
        "token_secret_env = [\"WINBACK_TOKEN_SECRET\", \"WINBACK_TOKEN_SECRET_OLD\"]",
    );
}

const QUIET_OFF: [&str; 2] = ["--set", "channels.sms.quiet_hours="];

fn run(dir: &Path, as_of: &str) {
    let mut args = vec!["run", "--as-of", as_of];
    args.extend(QUIET_OFF);
    let out = winback(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// The messages a night wrote to the file outbox of `medium` ("email" or "sms").
fn outbox(dir: &Path, as_of: &str, medium: &str) -> Vec<Value> {
    let folder = dir.join(format!("out/_outbox/as_of={as_of}/{medium}"));
    let Ok(files) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in files.flatten() {
        for line in std::fs::read_to_string(f.path()).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out.sort_by(|a: &Value, b: &Value| a["customer_id"].as_str().cmp(&b["customer_id"].as_str()));
    out
}

fn customers(messages: &[Value]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m["customer_id"].as_str().unwrap().to_string())
        .collect()
}

fn field<'a>(m: &'a Value, name: &str) -> &'a str {
    m[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

/// The token of an outbox message, from its unsubscribe link (…/u/TOKEN).
fn token(m: &Value) -> String {
    let url = field(m, "unsubscribe_url");
    url.rsplit_once("/u/").expect("a /u/ link").1.to_string()
}

fn days_after(d: &str, n: u64) -> String {
    (crate::support::date(d) + chrono::Days::new(n)).to_string()
}

/// `(customer_id, reason)` of each row of the night's `suppressed` output.
async fn suppressed(dir: &Path, as_of: &str) -> BTreeSet<(String, String)> {
    let rows = crate::support::read_output(&dir.join("out"), "suppressed", as_of).await;
    let header: Vec<&str> = rows[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (c, r) = (col("customer_id"), col("reason"));
    rows[1..]
        .iter()
        .map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            (cells[c].to_string(), cells[r].to_string())
        })
        .collect()
}

fn assert_not_in(log: &str, what: &str, needles: &[&str]) {
    for n in needles {
        assert!(
            !log.contains(n),
            "the listener's log shows {what} {n:?}:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribes_are_honoured_by_every_later_send_and_tokens_cannot_be_forged() {
    let (control, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (control, dir) = (control.path(), tmp.path());
    // The control project runs the nights without unsubscribes: who each night e-mails.
    project(control, true);
    let end = days_after(AS_OF, 6);
    let mut args = vec!["backfill", "--from", AS_OF, "--to", &end, "--send"];
    args.extend(QUIET_OFF);
    let out = winback(control, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first_night = outbox(control, AS_OF, "email");
    assert!(
        first_night.len() >= 3,
        "the demo e-mails at least 3 customers"
    );
    let (m1, m2, m3) = (&first_night[0], &first_night[1], &first_night[2]);
    let (c1, c2, c3) = (
        field(m1, "customer_id"),
        field(m2, "customer_id"),
        field(m3, "customer_id"),
    );
    // A later night's first e-mail to someone new: the backfill's customer.
    let (later, m4) = (1..=6)
        .map(|n| days_after(AS_OF, n))
        .find_map(|d| {
            outbox(control, &d, "email")
                .into_iter()
                .find(|m| ![c1, c2, c3].contains(&field(m, "customer_id")))
                .map(|m| (d, m))
        })
        .expect("a later night e-mails someone new");
    let c4 = field(&m4, "customer_id");

    project(dir, true);
    let listener = Listening::start(dir, free_port(), &[], &[]);
    let http = client();
    let health = http
        .get(format!("{}/health", listener.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let post = |token: &str| {
        http.post(format!("{}/u/{token}", listener.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
    };
    let get = |token: &str| http.get(format!("{}/u/{token}", listener.url)).send();
    // One-click (RFC 8058): 200, no redirect, recorded at once.
    let answer = post(&token(m1)).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("location").is_none());
    // A token signed with the secret before the rotation still works.
    let old = TokenKeys::from_env(&["OLD".to_string()], &|_| Some(OLD_SECRET.to_string()))
        .unwrap()
        .issue(c3, Medium::Email, field(m3, "campaign"));
    assert_ne!(old, token(m3), "the old secret signs differently");
    assert_eq!(post(&old).await.unwrap().status(), 200);
    assert_eq!(post(&token(&m4)).await.unwrap().status(), 200);
    // A GET (a mail scanner following the link) shows a confirmation form and records
    // nothing.
    let page = get(&token(m2)).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    // Forged tokens: another customer's id under c1's MAC; c1 signed with another secret;
    // garbage. The same 404 for each: nothing tells whether a customer exists.
    let t1 = token(m1);
    let parts: Vec<&str> = t1.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert!(payload.starts_with(c1));
    let changed = URL_SAFE_NO_PAD.encode(payload.replacen(c1, c2, 1));
    let changed = format!("{}.{changed}.{}", parts[0], parts[2]);
    let other_secret = TokenKeys::from_env(&["X".to_string()], &|_| Some("z".repeat(40)))
        .unwrap()
        .issue(c2, Medium::Email, field(m2, "campaign"));
    let mut bodies = BTreeSet::new();
    for forged in [changed.as_str(), other_secret.as_str(), "not-a-token"] {
        for answer in [post(forged).await.unwrap(), get(forged).await.unwrap()] {
            assert_eq!(answer.status(), 404, "{forged}");
            bodies.insert(answer.text().await.unwrap());
        }
    }
    assert_eq!(bodies.len(), 1, "every forged token gets the same answer");

    let state = State::open(&dir.join(".winback")).unwrap();
    let recorded: BTreeSet<(String, String, String)> = state
        .suppressions()
        .unwrap()
        .into_iter()
        .map(|s| (s.customer_id.unwrap(), s.reason, s.source))
        .collect();
    let expected: BTreeSet<(String, String, String)> = [c1, c3, c4]
        .iter()
        .map(|c| (c.to_string(), "unsubscribed".into(), "one_click".into()))
        .collect();
    assert_eq!(recorded, expected, "c2 only looked at the page");
    drop(state);

    // The next run is for a night long before the unsubscribes (recorded today).
    run(dir, AS_OF);
    let mailed = customers(&outbox(dir, AS_OF, "email"));
    assert!(mailed.contains(c2), "a GET does not unsubscribe");
    for c in [c1, c3] {
        assert!(!mailed.contains(c), "{c} unsubscribed and was e-mailed");
    }
    let night = suppressed(dir, AS_OF).await;
    for c in [c1, c3] {
        assert!(
            night.contains(&(c.to_string(), "unsubscribed".to_string())),
            "{c} not suppressed as unsubscribed: {night:?}"
        );
    }
    // A backfill with --send of the later nights, all before the unsubscribe: c4 is not
    // e-mailed either.
    let next = days_after(AS_OF, 1);
    let mut args = vec!["backfill", "--from", &next, "--to", &later, "--send"];
    args.extend(QUIET_OFF);
    let out = winback(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut n = 1;
    loop {
        let d = days_after(AS_OF, n);
        assert!(
            !customers(&outbox(dir, &d, "email")).contains(c4),
            "{c4} e-mailed on {d}"
        );
        if d == later {
            break;
        }
        n += 1;
    }
    assert!(
        suppressed(dir, &later)
            .await
            .contains(&(c4.to_string(), "unsubscribed".to_string()))
    );
    // The listener's log: one line per request, without tokens or addresses.
    let log = listener.log();
    assert!(
        log.contains("/u/{token}"),
        "requests are logged by route:\n{log}"
    );
    let tokens = [t1.clone(), old, token(m2), changed, other_secret];
    assert_not_in(
        &log,
        "a token",
        &tokens.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_not_in(
        &log,
        "an address",
        &[field(m1, "to"), field(m2, "to"), field(m3, "to")],
    );
}

/// The addresses (`to`) of three customers a night sends to on `medium`, and the ids.
fn three(control: &Path, medium: &str, skip: usize) -> Vec<(String, String)> {
    let night = outbox(control, AS_OF, medium);
    assert!(
        night.len() >= skip + 3,
        "the demo sends at least {} on {medium}",
        skip + 3
    );
    night[skip..skip + 3]
        .iter()
        .map(|m| {
            (
                field(m, "customer_id").to_string(),
                field(m, "to").to_string(),
            )
        })
        .collect()
}

/// Rows of the listener's `provider_events` table.
fn provider_events(dir: &Path) -> i64 {
    let db =
        rusqlite::Connection::open(dir.join(".winback").join(winback::state::DB_FILE)).unwrap();
    db.query_row("SELECT count(*) FROM provider_events", [], |r| r.get(0))
        .unwrap()
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_sendgrid_and_mailgun_events_are_recorded_once_and_suppress_the_next_run() {
    let (control, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (control, dir) = (control.path(), tmp.path());
    project(control, true);
    run(control, AS_OF);
    let sg = three(control, "email", 0);
    let mg = three(control, "email", 3);

    project(dir, true);
    let keys = signing::sendgrid_test_keys(7);
    let listener = Listening::start(
        dir,
        free_port(),
        &[
            "--set",
            "feedback.sendgrid_public_key_env=SG_WEBHOOK_KEY",
            "--set",
            "feedback.mailgun_signing_key_env=MG_WEBHOOK_KEY",
        ],
        &[
            ("SG_WEBHOOK_KEY", keys.public_key.as_str()),
            ("MG_WEBHOOK_KEY", MAILGUN_KEY),
        ],
    );
    let http = client();

    // SendGrid: one signed batch (a hard bounce, a spam report, an unsubscribe), sent 20
    // times as SendGrid retries; each event is recorded once.
    let ts = now_secs();
    let batch = json!([
        {"email": sg[0].1, "event": "bounce", "type": "bounce", "sg_event_id": "sg-1",
         "timestamp": ts, "status": "5.1.1", "sg_message_id": "m1.filter"},
        {"email": sg[1].1, "event": "spamreport", "sg_event_id": "sg-2", "timestamp": ts},
        {"email": sg[2].1, "event": "unsubscribe", "sg_event_id": "sg-3", "timestamp": ts},
    ])
    .to_string();
    let post_sendgrid = |body: &str, headers: &[(&'static str, String); 2]| {
        let mut req = http
            .post(format!("{}/events/sendgrid", listener.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..20 {
        let headers = signing::sendgrid_headers(&keys.signing_key, ts, batch.as_bytes());
        assert_eq!(post_sendgrid(&batch, &headers).await, 200);
    }
    assert_eq!(provider_events(dir), 3);
    // Altered after signing, signed by another key, or signed an hour ago: refused,
    // nothing recorded.
    let forged = batch.replace("sg-3", "sg-4");
    let headers = signing::sendgrid_headers(&keys.signing_key, ts, batch.as_bytes());
    assert_eq!(post_sendgrid(&forged, &headers).await, 401);
    let stranger = signing::sendgrid_test_keys(8);
    let headers = signing::sendgrid_headers(&stranger.signing_key, ts, forged.as_bytes());
    assert_eq!(post_sendgrid(&forged, &headers).await, 401);
    let stale = signing::sendgrid_headers(&keys.signing_key, ts - 3600, forged.as_bytes());
    assert_eq!(post_sendgrid(&forged, &stale).await, 403);
    assert_eq!(
        post_sendgrid(&forged, &[("x-a", String::new()), ("x-b", String::new())]).await,
        401
    );
    assert_eq!(provider_events(dir), 3);

    // Mailgun: one event per request (a permanent failure, a complaint, an unsubscribe),
    // each delivered 20 times.
    let post_mailgun = |body: Vec<u8>| {
        let req = http
            .post(format!("{}/events/mailgun", listener.url))
            .header("content-type", "application/json")
            .body(body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let mg_events = [
        json!({"id": "mg-1", "event": "failed", "severity": "permanent", "recipient": mg[0].1,
               "timestamp": ts as f64, "delivery-status": {"code": 550}}),
        json!({"id": "mg-2", "event": "complained", "recipient": mg[1].1, "timestamp": ts as f64}),
        json!({"id": "mg-3", "event": "unsubscribed", "recipient": mg[2].1, "timestamp": ts as f64}),
    ];
    for (i, event) in mg_events.iter().enumerate() {
        for _ in 0..20 {
            let body = signing::mailgun_body(MAILGUN_KEY, ts, &format!("token-{i}"), event.clone());
            assert_eq!(post_mailgun(body).await, 200);
        }
    }
    assert_eq!(provider_events(dir), 6);
    let another = json!({"id": "mg-4", "event": "complained", "recipient": mg[0].1});
    let wrong_key = signing::mailgun_body("not-the-key", ts, "token-9", another.clone());
    assert_eq!(post_mailgun(wrong_key).await, 401);
    let stale = signing::mailgun_body(MAILGUN_KEY, ts - 3600, "token-10", another);
    assert_eq!(post_mailgun(stale).await, 403);
    assert_eq!(provider_events(dir), 6);

    // The next night suppresses each recipient with its reason and e-mails none of them.
    run(dir, AS_OF);
    let mailed = customers(&outbox(dir, AS_OF, "email"));
    let night = suppressed(dir, AS_OF).await;
    for (recipients, _) in [(&sg, "sendgrid"), (&mg, "mailgun")] {
        for ((customer, _), reason) in
            recipients
                .iter()
                .zip(["hard_bounce", "complaint", "unsubscribed"])
        {
            assert!(!mailed.contains(customer), "{customer} was e-mailed");
            assert!(
                night.contains(&(customer.clone(), reason.to_string())),
                "{customer} not suppressed as {reason}: {night:?}"
            );
        }
    }
    let log = listener.log();
    let addresses: Vec<&str> = sg.iter().chain(&mg).map(|(_, a)| a.as_str()).collect();
    assert_not_in(&log, "an address", &addresses);
    assert_not_in(&log, "a key", &[MAILGUN_KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_twilio_callbacks_are_recorded_once_and_suppress_the_next_run() {
    let (control, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (control, dir) = (control.path(), tmp.path());
    // The quick win-back's day-3 step is a text: the control project runs four nights
    // (the frequency cap raised so the day-3 step is not held back) and tells who is
    // texted on the fourth.
    let texting_night = days_after(AS_OF, 3);
    let nights = |dir: &Path, to: &str| {
        let mut args = vec!["backfill", "--from", AS_OF, "--to", to, "--send"];
        args.extend(QUIET_OFF);
        args.extend(["--set", "delivery.frequency_cap=9"]);
        let out = winback(dir, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    };
    project(control, false);
    nights(control, &texting_night);
    let step_two: Vec<(String, String)> = outbox(control, &texting_night, "sms")
        .iter()
        .filter(|m| m["campaign"] == "winback_quick" && m["step"] == 2)
        .map(|m| {
            (
                field(m, "customer_id").to_string(),
                field(m, "to").to_string(),
            )
        })
        .collect();
    assert!(
        step_two.len() >= 3,
        "the demo texts at least 3 on day 3: {step_two:?}"
    );
    let texted = &step_two[..3];

    project(dir, false);
    nights(dir, &days_after(AS_OF, 2));
    // Twilio signs the URL it calls: here the listener's own (behind a proxy, the public one).
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let listener = Listening::start(
        dir,
        port,
        &[
            "--set",
            "feedback.twilio_auth_token_env=TW_TOKEN",
            "--set",
            &format!("http.public_url={public}"),
        ],
        &[("TW_TOKEN", TWILIO_TOKEN)],
    );
    let url = format!("{}/events/twilio", listener.url);
    let http = client();
    let post = |params: &[(String, String)], signature: &str| {
        http.post(&url)
            .header("X-Twilio-Signature", signature)
            .form(params)
            .send()
    };
    let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // An undelivered status callback (30005: unknown handset), a STOP reply, and an
    // undelivered callback with 21610 (the recipient had replied STOP before).
    let callbacks = [
        p(&[
            ("MessageSid", "SM001"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30005"),
            ("To", &texted[0].1),
            ("AccountSid", "AC1"),
        ]),
        p(&[
            ("MessageSid", "SM002"),
            ("From", &texted[1].1),
            ("To", "+15550001111"),
            ("Body", "STOP"),
            ("AccountSid", "AC1"),
        ]),
        p(&[
            ("MessageSid", "SM003"),
            ("MessageStatus", "failed"),
            ("ErrorCode", "21610"),
            ("To", &texted[2].1),
            ("AccountSid", "AC1"),
        ]),
    ];
    for params in &callbacks {
        for _ in 0..20 {
            let signature = signing::twilio_signature(TWILIO_TOKEN, &url, params);
            let answer = post(params, &signature).await.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(answer.text().await.unwrap(), "<Response/>");
        }
    }
    assert_eq!(provider_events(dir), 3);
    // Signed with another token, or for another URL, or not at all: refused.
    let more = p(&[
        ("MessageSid", "SM004"),
        ("From", &texted[0].1),
        ("Body", "STOP"),
    ]);
    for signature in [
        signing::twilio_signature("another-token", &url, &more),
        signing::twilio_signature(TWILIO_TOKEN, "http://127.0.0.1:1/events/twilio", &more),
        String::new(),
    ] {
        assert_eq!(post(&more, &signature).await.unwrap().status(), 401);
    }
    assert_eq!(provider_events(dir), 3);

    let mut args = vec![
        "run",
        "--as-of",
        &texting_night,
        "--set",
        "delivery.frequency_cap=9",
    ];
    args.extend(QUIET_OFF);
    let out = winback(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let sent = customers(&outbox(dir, &texting_night, "sms"));
    let night = suppressed(dir, &texting_night).await;
    for ((customer, _), reason) in
        texted
            .iter()
            .zip(["hard_bounce", "unsubscribed", "unsubscribed"])
    {
        assert!(!sent.contains(customer), "{customer} was texted");
        assert!(
            night.contains(&(customer.clone(), reason.to_string())),
            "{customer} not suppressed as {reason}: {night:?}"
        );
    }
    let log = listener.log();
    let phones: Vec<&str> = texted.iter().map(|(_, a)| a.as_str()).collect();
    assert_not_in(&log, "a phone number", &phones);
    assert_not_in(&log, "the auth token", &[TWILIO_TOKEN]);
}
