//! Delivery benchmark: prints figures, asserts nothing.
//!
//! (a) 1,000,000 e-mail recipients through SendGrid in 1,000-recipient batches, and
//! (b) 100,000 SMS through Twilio, one request each, both to a minimal keep-alive HTTP/1.1
//! responder on 127.0.0.1 and with the send ledger on (SQLite in a temp dir).
//!
//! `cargo run --release --example bench_delivery [-- EMAILS SMS]`

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use tokio::net::TcpListener;
use winback::channels::BuildContext;
use winback::channels::ChannelConfig;
use winback::clock::SystemClock;
use winback::delivery::{DeliveryOptions, deliver};
use winback::message::{Medium, Message, SendState};
use winback::state::State;

#[path = "support/fake_provider.rs"]
mod fake_provider;
use fake_provider::serve;

fn message(i: usize, medium: Medium, channel: &str) -> Message {
    let email = medium == Medium::Email;
    Message {
        campaign: "quick_winback".into(),
        step: 1,
        customer_id: format!("cust-{i:08}"),
        channel: channel.into(),
        medium,
        to: if email {
            format!("customer{i:08}@example.com")
        } else {
            format!("+1555{i:07}")
        },
        idempotency_key: format!("{channel}-{i:016x}-quick-1-2025-03-01"),
        as_of: NaiveDate::from_ymd_opt(2025, 3, 10).unwrap_or_default(),
        entry_date: NaiveDate::from_ymd_opt(2025, 3, 10).unwrap_or_default(),
        subject: email.then(|| format!("We miss you, customer {i}")),
        html: email.then(|| format!("<p>Hello {i}, here is 10% off your next order.</p>")),
        text: format!("Hello {i}, here is 10% off your next order. Reply STOP to opt out."),
        evidence: None,
        owner: None,
        unsubscribe_url: email.then(|| format!("https://shop.example.com/u/{i:08}")),
        unsubscribe_mailto: None,
        cost: if email { 0.0008 } else { 0.0079 },
        timezone: None,
        send_at: None,
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn env(name: &str) -> Option<String> {
    match name {
        "BENCH_KEY" => Some("bench-key-not-secret".into()),
        "BENCH_SID" => Some("ACbench".into()),
        "BENCH_TOKEN" => Some("bench-token".into()),
        _ => None,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let emails = args.first().copied().unwrap_or(1_000_000);
    let sms = args.get(1).copied().unwrap_or(100_000);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener));
    let dir = tempfile::tempdir()?;
    let state = State::open(dir.path())?;
    let ctx = BuildContext {
        outbox: dir.path().join("outbox"),
    };
    let opts = DeliveryOptions::new(Arc::new(SystemClock));

    let sg: ChannelConfig = toml::from_str(&format!(
        "type = \"sendgrid\"\nbase_url = \"{base}\"\napi_key_env = \"BENCH_KEY\"\nfrom = \"shop@example.com\"\nrate_per_sec = 1000000.0\nconcurrency = {}\nbatch_size = 1000\n",
        std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "4".into())
    ))?;
    let channel = sg.build("email", &env, &ctx)?;
    let started = Instant::now();
    let report = deliver(
        &state,
        channel,
        (0..emails).map(|i| message(i, Medium::Email, "email")),
        opts.clone(),
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sendgrid: {} recipients in {} requests: {secs:.2} s ({:.0} recipients/s), delivered {}, peak RSS {:.0} MiB",
        report.messages,
        report.requests,
        report.messages as f64 / secs,
        report.delivered,
        peak_rss_mib()
    );

    let tw: ChannelConfig = toml::from_str(&format!(
        "type = \"twilio\"\nbase_url = \"{base}\"\naccount_sid_env = \"BENCH_SID\"\nauth_token_env = \"BENCH_TOKEN\"\nfrom = \"+15550000000\"\nrate_per_sec = 1000000.0\nconcurrency = 64\n"
    ))?;
    let channel = tw.build("sms", &env, &ctx)?;
    let started = Instant::now();
    let report = deliver(
        &state,
        channel,
        (0..sms).map(|i| message(i, Medium::Sms, "sms")),
        opts,
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "twilio: {} SMS, {} requests in {secs:.2} s: {:.0} requests/s, delivered {}, peak RSS {:.0} MiB",
        report.messages,
        report.requests,
        report.requests as f64 / secs,
        report.delivered,
        peak_rss_mib()
    );
    let delivered: u64 = state
        .counts(None, None)?
        .iter()
        .filter(|c| c.state == SendState::Delivered)
        .map(|c| c.n)
        .sum();
    println!("ledger: {delivered} rows delivered");
    Ok(())
}
