//! Send windows at send time: each batch is checked against the channel's quiet hours in
//! every recipient's timezone when it is sent, not only when the run planned it (sending
//! can last an hour, plus the pauses after 429s). A recipient whose window is closed is
//! not sent (`deferred`, reason `quiet_hours`: the next run plans them again), or, on a
//! channel with `defer = "schedule"`, sent now for delivery when the window opens.

use chrono::{DateTime, Utc};

use crate::channel_rules::{QuietHours, Window, window_at};
use crate::channels::ChannelSettings;
use crate::message::Message;

/// The ledger reason of a message held back by its recipient's quiet hours.
pub const QUIET_HOURS: &str = "quiet_hours";

/// A batch sorted by its recipients' windows at `now`.
#[derive(Debug, Default)]
pub struct ByWindow {
    /// To send now (`send_at` set on those the provider is to deliver later).
    pub send: Vec<Message>,
    /// Quiet time: not sent.
    pub deferred: Vec<Message>,
    /// How many of `send` got a `send_at` here.
    pub scheduled: u64,
}

/// Sort `batch` by window. A message without a timezone (sent by hand, not planned) and a
/// message already scheduled by an earlier attempt are sent as they are.
pub fn by_window(settings: &ChannelSettings, now: DateTime<Utc>, batch: Vec<Message>) -> ByWindow {
    if settings.quiet_hours == QuietHours::Off {
        return ByWindow {
            send: batch,
            ..ByWindow::default()
        };
    }
    let mut out = ByWindow {
        send: Vec::with_capacity(batch.len()),
        ..ByWindow::default()
    };
    for mut m in batch {
        let window = match (m.timezone, m.send_at) {
            (Some(tz), None) => window_at(settings.quiet_hours, settings.defer, now, tz),
            _ => Window::Open,
        };
        match window {
            Window::Open => out.send.push(m),
            Window::ScheduleAt(at) => {
                m.send_at = Some(at);
                out.scheduled += 1;
                out.send.push(m);
            }
            Window::Closed => out.deferred.push(m),
        }
    }
    out
}
