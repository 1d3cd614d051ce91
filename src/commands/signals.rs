//! Stopping a long-running command (`serve`, `backfill`, `listen`) on SIGTERM or Ctrl-C.

use tokio_util::sync::CancellationToken;

/// Cancel the token on SIGTERM or SIGINT (Ctrl-C), saying `on_first` on stderr; a second
/// signal exits at once (130).
pub fn cancel_on_signals(on_first: String) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("stop requested");
        eprintln!("{on_first}");
        t.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("second stop signal: exiting now");
        std::process::exit(130);
    });
    token
}
