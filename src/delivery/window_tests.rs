//! Send windows at send time, with an injected clock: a window that closes mid-send, and
//! `defer = "schedule"` setting each provider's delivery time to the window's opening.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::tests::{count, opts};
use super::*;
use crate::channels::ChannelConfig;
use crate::channels::test_support::*;
use crate::clock::FakeClock;
use crate::message::{Medium, SendState};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// `n` messages to recipients in Berlin.
fn berliners(n: usize, medium: Medium, channel: &str) -> Vec<Message> {
    let mut ms = messages(n, medium, channel);
    for m in &mut ms {
        m.timezone = Some(chrono_tz::Europe::Berlin);
    }
    ms
}

fn clocked(clock: &FakeClock) -> DeliveryOptions {
    let mut o = opts();
    o.clock = Arc::new(clock.clone());
    o
}

/// A fake provider whose every answer takes a minute of the injected clock.
struct MinutePerRequest(FakeClock, ResponseTemplate);

impl Respond for MinutePerRequest {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.advance(Duration::from_secs(60));
        self.1.clone()
    }
}

/// Berlin's SMS window (09:00-21:00 CET) closes at 20:00 UTC. Sending starts at 19:57:30
/// UTC, one SMS per request, each request a minute: the first three go at 20:57:30,
/// 20:58:30 and 20:59:30 Berlin time; the clock then reads 21:00:30 and the last two are
/// not sent but `deferred` with reason `quiet_hours`.
#[tokio::test]
async fn a_window_that_closes_mid_send_defers_the_rest() {
    let server = MockServer::start().await;
    let clock = FakeClock::new(at("2027-01-11T19:57:30Z"));
    let ok = ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM1"}"#);
    Mock::given(method("POST"))
        .respond_with(MinutePerRequest(clock.clone(), ok))
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let ch = build(
        "sms",
        &twilio_toml(&server.uri(), "concurrency = 1\n"),
        dir.path(),
    );
    let report = deliver(
        &state,
        ch,
        berliners(5, Medium::Sms, "sms"),
        clocked(&clock),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.delivered, report.deferred, report.requests),
        (3, 2, 3)
    );
    assert_eq!((report.messages, report.sent, report.skipped), (5, 3, 0));
    assert!(!report.is_partial(), "a deferral is not a failure");
    let rows = state.all_rows().unwrap();
    let deferred: Vec<_> = rows
        .iter()
        .filter(|r| r.state == SendState::Deferred)
        .map(|r| (r.customer_id.as_str(), r.reason.as_deref(), r.attempts))
        .collect();
    assert_eq!(
        deferred,
        vec![
            ("c3", Some("quiet_hours"), 0),
            ("c4", Some("quiet_hours"), 0)
        ]
    );
    assert_eq!(count(&state, SendState::Delivered), 3);
}

/// 06:00 UTC is 07:00 in Berlin, quiet until 09:00 CET = 08:00 UTC.
const QUIET_NOW: &str = "2027-01-11T06:00:00Z";
const OPENS: &str = "2027-01-11T08:00:00Z";

/// Delivers one quiet-hours message through `toml` at [`QUIET_NOW`]; the request bodies.
async fn scheduled_bodies(toml: &str, medium: Medium, now: &str) -> (ChannelReport, Vec<Vec<u8>>) {
    let server = MockServer::start().await;
    let answer = match medium {
        Medium::Sms | Medium::Call => {
            ResponseTemplate::new(201).set_body_string(r#"{"sid":"SM1"}"#)
        }
        Medium::Email => ResponseTemplate::new(202)
            .insert_header("X-Message-Id", "m1")
            .set_body_string(r#"{"id":"<m1@mg>","message":"Queued"}"#),
    };
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let (dir, state) = temp_state();
    let ch = build("ch", &toml.replace("BASE", &server.uri()), dir.path());
    let clock = FakeClock::new(at(now));
    let report = deliver(&state, ch, berliners(1, medium, "ch"), clocked(&clock))
        .await
        .unwrap();
    let bodies = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.body)
        .collect();
    (report, bodies)
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

const SCHEDULE: &str = "quiet_hours = \"21:00-09:00\"\ndefer = \"schedule\"\n";

#[tokio::test]
async fn sendgrid_schedules_send_at_at_the_windows_start() {
    let toml = sendgrid_toml("BASE", SCHEDULE);
    let (report, bodies) = scheduled_bodies(&toml, Medium::Email, QUIET_NOW).await;
    assert_eq!(
        (report.delivered, report.scheduled, report.deferred),
        (1, 1, 0)
    );
    let v: serde_json::Value = serde_json::from_slice(&bodies[0]).unwrap();
    assert_eq!(v["personalizations"][0]["send_at"], at(OPENS).timestamp());
    assert_eq!(at(OPENS).timestamp(), 1_799_654_400);
}

#[tokio::test]
async fn mailgun_schedules_o_deliverytime_at_the_windows_start() {
    let toml = mailgun_toml("BASE", SCHEDULE);
    let (report, bodies) = scheduled_bodies(&toml, Medium::Email, QUIET_NOW).await;
    assert_eq!((report.delivered, report.scheduled), (1, 1));
    let f = form(&bodies[0]);
    assert_eq!(
        field(&f, "o:deliverytime"),
        Some("Mon, 11 Jan 2027 08:00:00 +0000")
    );
}

fn twilio_service(extra: &str) -> String {
    format!(
        "type = \"twilio\"\nbase_url = \"BASE\"\naccount_sid_env = \"TW_SID\"\nauth_token_env = \"TW_TOKEN\"\nmessaging_service_sid = \"MG0123\"\n{FAST}{extra}"
    )
}

#[tokio::test]
async fn twilio_schedules_send_at_at_the_windows_start() {
    let (report, bodies) = scheduled_bodies(
        &twilio_service("defer = \"schedule\"\n"),
        Medium::Sms,
        QUIET_NOW,
    )
    .await;
    assert_eq!((report.delivered, report.scheduled), (1, 1));
    let f = form(&bodies[0]);
    assert_eq!(field(&f, "SendAt"), Some("2027-01-11T08:00:00Z"));
    assert_eq!(field(&f, "ScheduleType"), Some("fixed"));
    assert_eq!(field(&f, "MessagingServiceSid"), Some("MG0123"));
    // Five minutes before the window opens Twilio would refuse a SendAt that close: it is
    // set 16 minutes ahead (07:55 + 0:16 = 08:11 UTC), inside the window.
    let (_, bodies) = scheduled_bodies(
        &twilio_service("defer = \"schedule\"\n"),
        Medium::Sms,
        "2027-01-11T07:55:00Z",
    )
    .await;
    assert_eq!(
        field(&form(&bodies[0]), "SendAt"),
        Some("2027-01-11T08:11:00Z")
    );
    // Window open: sent as usual, no scheduling fields.
    let (report, bodies) = scheduled_bodies(
        &twilio_service("defer = \"schedule\"\n"),
        Medium::Sms,
        "2027-01-11T12:00:00Z",
    )
    .await;
    assert_eq!((report.delivered, report.scheduled), (1, 0));
    assert_eq!(field(&form(&bodies[0]), "SendAt"), None);
}

#[tokio::test]
async fn next_run_makes_no_request_in_quiet_hours() {
    let (report, bodies) = scheduled_bodies(&twilio_service(""), Medium::Sms, QUIET_NOW).await;
    assert_eq!(
        (report.delivered, report.deferred, report.requests),
        (0, 1, 0)
    );
    assert!(bodies.is_empty());
}

fn invalid(toml: &str) -> String {
    let cfg: ChannelConfig = toml::from_str(toml).unwrap();
    cfg.validate("ch").unwrap_err().to_string()
}

#[test]
fn defer_schedule_is_checked_at_validate() {
    let twilio_from = twilio_toml("http://127.0.0.1:1", "defer = \"schedule\"\n");
    assert!(invalid(&twilio_from).contains("messaging_service_sid"));
    let file = "type = \"file\"\nmedium = \"sms\"\ndefer = \"schedule\"\n";
    assert!(invalid(file).contains("schedules deliveries"));
    let bad = "type = \"file\"\nmedium = \"sms\"\ndefer = \"later\"\n";
    assert!(invalid(bad).contains("\"later\""));
    let cfg: ChannelConfig = toml::from_str(
        &twilio_service("defer = \"schedule\"\n").replace("BASE", "http://127.0.0.1:1"),
    )
    .unwrap();
    assert!(matches!(
        cfg.validate("ch").unwrap().defer,
        crate::channel_rules::Defer::Schedule(_)
    ));
}
