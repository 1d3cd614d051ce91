//! Every log line and error string of the fault scenarios, searched for the keys, e-mail
//! addresses and phone numbers used: none may appear.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::channels::test_support::*;
use crate::clock::SystemClock;
use crate::message::Medium;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn global_buffer() -> Buf {
    static BUF: std::sync::OnceLock<Buf> = std::sync::OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the lib tests");
        buf
    })
    .clone()
}

async fn mock(server: &MockServer, status: u16, times: Option<u64>, body: &str) {
    let mut r = ResponseTemplate::new(status).set_body_string(body);
    if status == 429 {
        r = r.insert_header("Retry-After", "0");
    }
    let m = Mock::given(method("POST")).respond_with(r);
    match times {
        Some(n) => m.up_to_n_times(n).with_priority(1).mount(server).await,
        None => m.mount(server).await,
    }
}

#[tokio::test]
async fn fault_logs_and_errors_hold_no_secret_or_address() {
    // A global subscriber: a thread-local one (`set_default`) misses events whose callsite
    // interest another test thread cached first. Other tests' logs land here too, which
    // only widens the search.
    let buf = global_buffer();
    let mut seen: Vec<String> = Vec::new();
    let opts = || DeliveryOptions::new(Arc::new(SystemClock));
    let (dir, state) = temp_state();

    // 429 storm, then 500s, then an invalid number, on Twilio.
    let tw = MockServer::start().await;
    mock(&tw, 429, Some(3), "slow down").await;
    mock(&tw, 500, Some(2), "oops").await;
    Mock::given(method("POST"))
        .and(body_string_contains("To=%2B15550000003"))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!(
            r#"{{"code":21211,"message":"The 'To' number {} is not a valid phone number."}}"#,
            phone_of(3)
        )))
        .with_priority(2)
        .mount(&tw)
        .await;
    mock(&tw, 201, None, r#"{"sid":"SM1"}"#).await;
    let ch = build(
        "sms",
        &twilio_toml(&tw.uri(), "max_attempts = 4\n"),
        dir.path(),
    );
    let r = deliver(&state, ch, messages(6, Medium::Sms, "sms"), opts()).await;
    seen.push(format!("{r:?}"));

    // SendGrid: a 400 quoting an address, then a 401.
    let sg = MockServer::start().await;
    let body = format!(
        r#"{{"errors":[{{"message":"Invalid address {}","field":"personalizations.0.to.0.email"}}]}}"#,
        email_of(0)
    );
    mock(&sg, 400, Some(1), &body).await;
    mock(&sg, 401, None, &format!("bad key {SG_KEY}")).await;
    let ch = build("mail", &sendgrid_toml(&sg.uri(), ""), dir.path());
    let r = deliver(&state, ch, messages(5, Medium::Email, "mail"), opts()).await;
    seen.push(format!("{r:?}"));
    if let Err(e) = &r {
        seen.push(e.to_string());
    }

    // Webhook timeouts.
    let wh = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&wh)
        .await;
    let ch = build(
        "hook",
        &webhook_toml(&wh.uri(), "timeout_secs = 0.2\nmax_attempts = 2\n"),
        dir.path(),
    );
    let r = deliver(&state, ch, messages(3, Medium::Email, "hook"), opts()).await;
    seen.push(format!("{r:?}"));

    for row in state.all_rows().unwrap() {
        seen.push(format!("{:?} {}", row.reason, row.masked_address()));
        seen.push(serde_json::to_string(&row).unwrap());
    }
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("pausing the channel"),
        "the scenarios ran: {logs}"
    );
    assert!(logs.contains("stopping the channel"));
    seen.push(logs);
    let all = seen.join("\n");
    let mut forbidden: Vec<String> = vec![
        SG_KEY.into(),
        MG_KEY.into(),
        TW_TOKEN.into(),
        WH_SECRET.into(),
        basic(TW_SID, TW_TOKEN),
    ];
    forbidden.extend((0..6).map(phone_of));
    forbidden.extend((0..6).map(email_of));
    for f in &forbidden {
        assert!(
            !all.contains(f.as_str()),
            "leaked {}",
            crate::mask::address(None, f)
        );
    }
}
