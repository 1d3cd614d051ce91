//! A fake SendGrid / Twilio on 127.0.0.1 for `scripts/bench_send.sh`: accepts every request
//! at once and prints how many it accepted when stopped (SIGTERM or Ctrl-C).
//!
//! `cargo run --release --example fake_provider -- PORT`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "support/fake_provider.rs"]
mod fake_provider;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let requests = Arc::new(AtomicU64::new(0));
    tokio::spawn(fake_provider::serve_counting(listener, requests.clone()));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!(
        "fake_provider: {} requests",
        requests.load(Ordering::Relaxed)
    );
    Ok(())
}
