//! What planning and delivery need to know about a channel (medium, cost, quiet hours and
//! what to do in them, daily cap), kept apart from the channel's provider settings so
//! planning stays pure.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::message::Medium;

/// The planning view of one `[channels.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRules {
    pub medium: Medium,
    /// Local times at which nothing is sent on this channel (deferred to a later run).
    pub quiet_hours: QuietHours,
    /// At most this many messages per UTC day on this channel; None = no cap.
    pub daily_cap: Option<u32>,
    /// What one message costs, counted against a campaign's budget.
    pub cost_per_message: f64,
    /// What happens to a message whose recipient is in quiet hours.
    pub defer: Defer,
}

impl ChannelRules {
    /// A channel with its medium's default quiet hours, no daily cap and no cost.
    pub fn new(medium: Medium) -> ChannelRules {
        ChannelRules {
            medium,
            quiet_hours: QuietHours::default_for(medium),
            daily_cap: None,
            cost_per_message: 0.0,
            defer: Defer::NextRun,
        }
    }
}

/// A channel's `defer`: what happens to a message whose recipient is in quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Defer {
    /// `"next_run"` (the default): not sent; the ledger row is `deferred` and the next run
    /// plans it again.
    #[default]
    NextRun,
    /// `"schedule"`: sent now with the provider's scheduling field set to the moment the
    /// recipient's window opens (SendGrid, Mailgun, Twilio with a Messaging Service).
    Schedule(ScheduleLead),
}

/// How far ahead a provider accepts a scheduled delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleLead {
    /// A delivery time sooner than this is moved to now + `min`.
    pub min: Duration,
    /// A window that opens later than this is deferred to the next run instead.
    pub max: Duration,
}

impl Defer {
    /// `"next_run"` or `"schedule"` (the provider's `lead`, None when it cannot schedule).
    pub fn parse(value: &str, lead: Option<ScheduleLead>) -> Result<Defer, String> {
        match (value, lead) {
            ("next_run", _) => Ok(Defer::NextRun),
            ("schedule", Some(lead)) => Ok(Defer::Schedule(lead)),
            ("schedule", None) => {
                Err("defer = \"schedule\" needs a provider that schedules deliveries (sendgrid, mailgun, twilio)".into())
            }
            (other, _) => Err(format!(
                "defer {other:?} is not \"next_run\" or \"schedule\""
            )),
        }
    }
}

/// What delivery does with one message at `now`, given its recipient's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The window is open: send.
    Open,
    /// Quiet time: send with the provider's delivery time set to this instant.
    ScheduleAt(DateTime<Utc>),
    /// Quiet time: not sent tonight (`deferred`, reason `quiet_hours`).
    Closed,
}

/// Decide `Open`, `ScheduleAt` or `Closed` for a recipient in `tz` at `now`.
pub fn window_at(quiet: QuietHours, defer: Defer, now: DateTime<Utc>, tz: Tz) -> Window {
    if !quiet.quiet_at(now, tz) {
        return Window::Open;
    }
    let Defer::Schedule(lead) = defer else {
        return Window::Closed;
    };
    let Some(opens) = quiet.next_open(now, tz) else {
        return Window::Closed;
    };
    let at = opens.max(crate::clock::add_std(now, lead.min));
    let within = (at - now).to_std().is_ok_and(|ahead| ahead <= lead.max);
    if within && !quiet.quiet_at(at, tz) {
        Window::ScheduleAt(at)
    } else {
        Window::Closed
    }
}

/// A daily window of local time, `start` inclusive to `end` exclusive, possibly over
/// midnight ("21:00-09:00"). `Off` sends at any hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuietHours {
    #[default]
    Off,
    Window {
        start: NaiveTime,
        end: NaiveTime,
    },
}

/// A `quiet_hours` value that is not `""` or `"HH:MM-HH:MM"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "quiet_hours {value:?} is not a range of local times like \"21:00-09:00\" (or \"\" for none): {why}"
)]
pub struct QuietHoursError {
    pub value: String,
    pub why: &'static str,
}

impl QuietHours {
    /// SMS: 21:00-09:00 (people sleep; several countries forbid night texts). E-mail: off.
    /// A call: off (the list is a file; the team calls in its working hours).
    pub fn default_for(medium: Medium) -> QuietHours {
        match medium {
            Medium::Sms => QuietHours::Window {
                start: NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
                end: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            },
            Medium::Email | Medium::Call => QuietHours::Off,
        }
    }

    /// Parse `"HH:MM-HH:MM"`; `""` (or blanks) is `Off`.
    pub fn parse(value: &str) -> Result<QuietHours, QuietHoursError> {
        let err = |why| QuietHoursError {
            value: value.to_string(),
            why,
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(QuietHours::Off);
        }
        let (a, b) = trimmed
            .split_once('-')
            .ok_or_else(|| err("no '-' between the times"))?;
        let parse = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| err("a time is not HH:MM"))
        };
        let (start, end) = (parse(a)?, parse(b)?);
        if start == end {
            return Err(err(
                "start and end are equal (use \"\" to turn quiet hours off)",
            ));
        }
        Ok(QuietHours::Window { start, end })
    }

    /// Is it quiet time at `now` for a recipient in `tz`?
    pub fn quiet_at(&self, now: DateTime<Utc>, tz: Tz) -> bool {
        *self != QuietHours::Off && self.contains(now.with_timezone(&tz).time())
    }

    /// The first instant at or after `now` that is outside the quiet window in `tz` (its
    /// end, the next time the local clock shows it; `now` itself when not quiet). None
    /// only when no such local time exists within two days (never for a real zone).
    pub fn next_open(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let QuietHours::Window { end, .. } = *self else {
            return Some(now);
        };
        if !self.quiet_at(now, tz) {
            return Some(now);
        }
        let local = now.with_timezone(&tz);
        // Today's end if it is still ahead, else tomorrow's (a window over midnight).
        let mut day = local.date_naive();
        if local.time() >= end {
            day = day.checked_add_days(Days::new(1))?;
        }
        // A DST gap can skip the end's local time: take the first hour that exists.
        (0..3).find_map(|h| {
            let t = day.and_time(end) + chrono::TimeDelta::hours(h);
            tz.from_local_datetime(&t)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }

    /// Is `local` (the recipient's wall-clock time) inside the quiet window?
    pub fn contains(&self, local: NaiveTime) -> bool {
        match *self {
            QuietHours::Off => false,
            QuietHours::Window { start, end } if start < end => local >= start && local < end,
            QuietHours::Window { start, end } => local >= start || local < end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn over_midnight_window() {
        let q = QuietHours::parse("21:00-09:00").unwrap();
        assert_eq!(q, QuietHours::default_for(Medium::Sms));
        assert!(q.contains(t(21, 0)));
        assert!(q.contains(t(23, 59)));
        assert!(q.contains(t(0, 0)));
        assert!(q.contains(t(8, 59)));
        assert!(!q.contains(t(9, 0)));
        assert!(!q.contains(t(14, 0)));
        assert!(!q.contains(t(20, 59)));
    }

    #[test]
    fn same_day_window_and_off() {
        let q = QuietHours::parse(" 12:00 - 14:30 ").unwrap();
        assert!(q.contains(t(12, 0)));
        assert!(q.contains(t(14, 29)));
        assert!(!q.contains(t(14, 30)));
        assert!(!q.contains(t(11, 59)));
        assert_eq!(QuietHours::parse("").unwrap(), QuietHours::Off);
        assert!(!QuietHours::Off.contains(t(3, 0)));
        assert_eq!(QuietHours::default_for(Medium::Email), QuietHours::Off);
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn next_open_is_the_windows_end_in_local_time() {
        let q = QuietHours::default_for(Medium::Sms);
        let ny = chrono_tz::America::New_York;
        // 02:30 UTC on 2027-01-12 is 21:30 on the 11th in New York (EST, UTC-5): quiet
        // until 09:00 EST on the 12th = 14:00 UTC.
        assert!(q.quiet_at(utc("2027-01-12T02:30:00Z"), ny));
        assert_eq!(
            q.next_open(utc("2027-01-12T02:30:00Z"), ny),
            Some(utc("2027-01-12T14:00:00Z"))
        );
        // 06:00 UTC is 01:00 EST, after midnight: the same day's 09:00.
        assert_eq!(
            q.next_open(utc("2027-01-12T06:00:00Z"), ny),
            Some(utc("2027-01-12T14:00:00Z"))
        );
        // In summer (EDT, UTC-4) the opening is 13:00 UTC; not quiet: now.
        assert_eq!(
            q.next_open(utc("2027-07-12T02:30:00Z"), ny),
            Some(utc("2027-07-12T13:00:00Z"))
        );
        assert_eq!(
            q.next_open(utc("2027-07-12T15:00:00Z"), ny),
            Some(utc("2027-07-12T15:00:00Z"))
        );
    }

    #[test]
    fn next_open_across_a_dst_gap() {
        // Quiet 01:00-02:30 in Berlin; on 2027-03-28 clocks jump from 02:00 to 03:00, so
        // 02:30 does not exist that night: the window opens at 03:30 CEST = 01:30 UTC.
        let q = QuietHours::parse("01:00-02:30").unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            q.next_open(utc("2027-03-28T00:30:00Z"), berlin),
            Some(utc("2027-03-28T01:30:00Z"))
        );
    }

    #[test]
    fn window_at_defers_or_schedules() {
        let q = QuietHours::default_for(Medium::Sms);
        let berlin = chrono_tz::Europe::Berlin;
        let lead = ScheduleLead {
            min: Duration::from_secs(900),
            max: Duration::from_secs(3600 * 72),
        };
        // 06:00 UTC = 07:00 CET: quiet until 08:00 UTC.
        let now = utc("2027-01-11T06:00:00Z");
        assert_eq!(window_at(q, Defer::NextRun, now, berlin), Window::Closed);
        assert_eq!(
            window_at(q, Defer::Schedule(lead), now, berlin),
            Window::ScheduleAt(utc("2027-01-11T08:00:00Z"))
        );
        assert_eq!(
            window_at(
                q,
                Defer::Schedule(lead),
                utc("2027-01-11T12:00:00Z"),
                berlin
            ),
            Window::Open
        );
        // Opening in 10 minutes, the provider wants 15: 07:50 + 0:15 = 08:05 UTC.
        assert_eq!(
            window_at(
                q,
                Defer::Schedule(lead),
                utc("2027-01-11T07:50:00Z"),
                berlin
            ),
            Window::ScheduleAt(utc("2027-01-11T08:05:00Z"))
        );
        // A provider that schedules at most an hour ahead cannot reach 08:00: deferred.
        let short = ScheduleLead {
            min: Duration::ZERO,
            max: Duration::from_secs(3600),
        };
        assert_eq!(
            window_at(q, Defer::Schedule(short), now, berlin),
            Window::Closed
        );
    }

    #[test]
    fn bad_values() {
        for v in ["21:00", "21-09", "25:00-09:00", "09:00-09:00", "night"] {
            assert!(QuietHours::parse(v).is_err(), "{v}");
        }
    }
}
