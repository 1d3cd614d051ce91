//! Cron fire times computed in a schedule's own timezone, including what happens to wall-clock times that a daylight-saving change skips or repeats.
//!
//! The cron expression is matched against local wall-clock time; each matching
//! wall-clock time then becomes one instant, like cronie / Vixie cron do:
//!
//! * a wall-clock time that occurs twice (fall back) fires once, at its first
//!   occurrence: a daily `30 1 * * *` in `America/New_York` fires at 01:30 EDT
//!   and not again at 01:30 EST;
//! * a wall-clock time that does not exist (spring forward) fires at the first
//!   instant after the gap: a daily `30 2 * * *` in `Europe/Berlin` fires at
//!   03:00 CEST on the last Sunday of March, so no day is lost. Several skipped
//!   times collapse into that one fire.
//!
//! This is why iteration runs the `cron` crate over naive wall-clock time (with
//! `Utc` standing in for "no DST") and resolves each time with `chrono-tz`, instead
//! of calling `Schedule::after` with the zone: that one silently drops skipped
//! times and yields repeated ones twice.
//!
//! Five-field expressions are standard cron (`minute hour day month weekday`,
//! weekday 0-7 with 0 and 7 = Sunday) and fire at second 0. Six and seven field
//! expressions are the `cron` crate's syntax (`sec min hour day month weekday
//! [year]`, weekday 1-7 with 1 = Sunday). Weekday names (`MON-FRI`) mean the same
//! in both. When both day-of-month and weekday are restricted, the `cron` crate
//! requires both to match (classic cron fires when either does).

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A parsed cron expression bound to a timezone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    expr: String,
    schedule: cron::Schedule,
    tz: Tz,
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a 5-field expression into the `cron` crate's 6-field form.
fn normalize(expr: &str) -> Result<String, String> {
    let expr = expr.trim();
    if expr.starts_with('@') {
        return Ok(expr.to_string());
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    match fields.len() {
        5 => Ok(format!(
            "0 {} {} {} {} {}",
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            weekday_field(fields[4])?
        )),
        6 | 7 => Ok(fields.join(" ")),
        n => Err(format!(
            "expected 5 fields (minute hour day month weekday) or 6-7 fields \
             (second minute hour day month weekday [year]), found {n}"
        )),
    }
}

/// Translates a standard weekday field (0-7, 0 and 7 = Sunday) into names.
fn weekday_field(field: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if base == "*" || base == "?" || !numeric(base) {
            // `*`, `*/n` and names mean the same set of days in both syntaxes.
            out.push(item.to_string());
            continue;
        }
        let num = |s: &str| -> Result<usize, String> {
            s.parse::<usize>()
                .ok()
                .filter(|&n| n <= 7)
                .ok_or_else(|| format!("weekday {s:?} is not in 0-7"))
        };
        let (lo, hi) = match base.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None if step.is_some() => (num(base)?, 6),
            None => (num(base)?, num(base)?),
        };
        let step = match step {
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("bad step {s:?} in weekday {item:?}"))?,
            None => 1,
        };
        if lo > hi {
            return Err(format!("weekday range {base:?} runs backwards"));
        }
        for day in (lo..=hi).step_by(step) {
            let name = WEEKDAYS[day % 7].to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    Ok(out.join(","))
}

impl CronSpec {
    /// Parses `expr` (5, 6 or 7 fields, or `@daily`-style) for timezone `tz`.
    pub fn parse(expr: &str, tz: Tz) -> Result<CronSpec, String> {
        let normalized = normalize(expr)?;
        let schedule = cron::Schedule::from_str(&normalized)
            .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
        Ok(CronSpec {
            expr: expr.trim().to_string(),
            schedule,
            tz,
        })
    }

    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    fn wall(&self, t: DateTime<Utc>) -> NaiveDateTime {
        let wall = t.with_timezone(&self.tz).naive_local();
        wall.with_nanosecond(0).unwrap_or(wall)
    }

    /// The instant a matching wall-clock time fires at (see the module docs).
    fn resolve(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            LocalResult::None => {
                // In a gap: find the first wall-clock time that exists again.
                let exists = |w: &NaiveDateTime| {
                    !matches!(self.tz.from_local_datetime(w), LocalResult::None)
                };
                let minute = wall.with_second(0)?;
                let mut probe = (1..=48 * 60)
                    .map(|m| minute + TimeDelta::minutes(m))
                    .find(exists)?;
                while probe - TimeDelta::seconds(1) > wall
                    && exists(&(probe - TimeDelta::seconds(1)))
                {
                    probe -= TimeDelta::seconds(1);
                }
                self.tz
                    .from_local_datetime(&probe)
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            }
        }
    }

    /// Fire times strictly after `t`, ascending.
    pub fn after(&self, t: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let start = Utc.from_utc_datetime(&self.wall(t));
        let mut last: Option<DateTime<Utc>> = None;
        self.schedule.after_owned(start).filter_map(move |w| {
            let fire = self.resolve(w.naive_utc())?;
            // Wall times of a repeated hour map to its first pass, which may be
            // before `t`; collapsed gap times map to one instant.
            if fire <= t || last.is_some_and(|l| fire <= l) {
                return None;
            }
            last = Some(fire);
            Some(fire)
        })
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.after(t).next()
    }

    /// The next `n` fire times strictly after `now`.
    pub fn next_fire_times(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.after(now).take(n).collect()
    }

    /// Fire times at or before `upto`, newest first.
    pub fn at_or_before(&self, upto: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let wall = self.wall(upto);
        // If `upto` is in the second pass of a repeated hour, later wall times of
        // that hour fired (at their first pass) before `upto`: start past them.
        let extra = match self.tz.from_local_datetime(&wall) {
            LocalResult::Ambiguous(first, second) => second - first,
            _ => TimeDelta::zero(),
        };
        let start = Utc.from_utc_datetime(&(wall + extra + TimeDelta::seconds(1)));
        let mut last: Option<DateTime<Utc>> = None;
        self.schedule.after_owned(start).rev().filter_map(move |w| {
            let fire = self.resolve(w.naive_utc())?;
            if fire > upto || last.is_some_and(|l| fire >= l) {
                return None;
            }
            last = Some(fire);
            Some(fire)
        })
    }

    /// `t` as local time in this zone, for people: `2025-03-30 03:00:00 CEST`.
    pub fn local_display(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn spec(expr: &str, tz: &str) -> CronSpec {
        CronSpec::parse(expr, tz.parse().unwrap()).unwrap()
    }

    #[test]
    fn five_field_expressions_use_standard_weekdays() {
        assert_eq!(normalize("30 2 * * *").unwrap(), "0 30 2 * * *");
        assert_eq!(
            normalize("0 9 * * 1-5").unwrap(),
            "0 0 9 * * MON,TUE,WED,THU,FRI"
        );
        assert_eq!(normalize("0 9 * * 0,7").unwrap(), "0 0 9 * * SUN");
        assert_eq!(normalize("0 9 * * 5-7").unwrap(), "0 0 9 * * FRI,SAT,SUN");
        assert_eq!(normalize("0 9 * * 1/2").unwrap(), "0 0 9 * * MON,WED,FRI");
        assert_eq!(normalize("0 9 * * MON-FRI").unwrap(), "0 0 9 * * MON-FRI");
        assert_eq!(normalize("0 30 2 * * *").unwrap(), "0 30 2 * * *");
        assert!(normalize("* * *").is_err());
        assert!(normalize("0 9 * * 8").is_err());
        // 2025-06-02 is a Monday: "1" in 5-field cron is Monday.
        let s = spec("0 9 * * 1", "UTC");
        let next = s.next_after(utc("2025-05-31T00:00:00Z")).unwrap();
        assert_eq!(next, utc("2025-06-02T09:00:00Z"));
    }

    #[test]
    fn daily_in_a_fixed_zone() {
        let s = spec("30 2 * * *", "Asia/Shanghai");
        let next = s.next_fire_times(utc("2025-05-01T00:00:00Z"), 3);
        assert_eq!(
            next,
            vec![
                utc("2025-05-01T18:30:00Z"),
                utc("2025-05-02T18:30:00Z"),
                utc("2025-05-03T18:30:00Z")
            ]
        );
        assert_eq!(s.local_display(next[0]), "2025-05-02 02:30:00 CST");
        // Strictly after: a fire time itself is not returned again.
        assert_eq!(s.next_after(next[0]), Some(next[1]));
        assert_eq!(
            s.next_after(next[0] - TimeDelta::milliseconds(1)),
            Some(next[0])
        );
    }

    #[test]
    fn berlin_spring_forward_fires_once_right_after_the_gap() {
        // 2025-03-30: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let s = spec("30 2 * * *", "Europe/Berlin");
        let fires = s.next_fire_times(utc("2025-03-28T12:00:00Z"), 4);
        assert_eq!(
            fires,
            vec![
                utc("2025-03-29T01:30:00Z"), // 02:30 CET
                utc("2025-03-30T01:00:00Z"), // 03:00 CEST, first instant after the gap
                utc("2025-03-31T00:30:00Z"), // 02:30 CEST
                utc("2025-04-01T00:30:00Z"),
            ]
        );
    }

    #[test]
    fn berlin_fall_back_fires_once() {
        // 2025-10-26: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let s = spec("30 2 * * *", "Europe/Berlin");
        let fires = s.next_fire_times(utc("2025-10-25T12:00:00Z"), 2);
        assert_eq!(
            fires,
            vec![utc("2025-10-26T00:30:00Z"), utc("2025-10-27T01:30:00Z")]
        );
        // Asking from inside the repeated hour (second pass) does not fire again.
        assert_eq!(
            s.next_after(utc("2025-10-26T01:10:00Z")),
            Some(utc("2025-10-27T01:30:00Z"))
        );
    }

    #[test]
    fn new_york_transitions() {
        // Spring forward 2025-03-09 02:00 EST -> 03:00 EDT.
        let s = spec("30 2 * * *", "America/New_York");
        let fires = s.next_fire_times(utc("2025-03-08T12:00:00Z"), 2);
        assert_eq!(
            fires,
            vec![utc("2025-03-09T07:00:00Z"), utc("2025-03-10T06:30:00Z")]
        );
        // Fall back 2025-11-02 02:00 EDT -> 01:00 EST; 01:30 happens twice.
        let s = spec("30 1 * * *", "America/New_York");
        let fires = s.next_fire_times(utc("2025-11-01T12:00:00Z"), 2);
        assert_eq!(
            fires,
            vec![utc("2025-11-02T05:30:00Z"), utc("2025-11-03T06:30:00Z")]
        );
    }

    #[test]
    fn sub_hourly_across_the_gap_has_no_duplicates() {
        let s = spec("*/30 * * * *", "Europe/Berlin");
        let fires = s.next_fire_times(utc("2025-03-30T00:15:00Z"), 4);
        // 01:30 CET, then 02:00 and 02:30 collapse into 03:00 CEST, then 03:30 CEST.
        assert_eq!(
            fires,
            vec![
                utc("2025-03-30T00:30:00Z"),
                utc("2025-03-30T01:00:00Z"),
                utc("2025-03-30T01:30:00Z"),
                utc("2025-03-30T02:00:00Z"),
            ]
        );
    }

    #[test]
    fn backwards_matches_forwards_across_transitions() {
        for (expr, tz) in [
            ("30 2 * * *", "Europe/Berlin"),
            ("*/20 * * * *", "Europe/Berlin"),
            ("30 1 * * *", "America/New_York"),
            ("0 15 2 * * *", "UTC"),
        ] {
            let s = spec(expr, tz);
            for (from, to) in [
                ("2025-03-27T00:00:00Z", "2025-04-02T00:00:00Z"),
                ("2025-10-24T00:00:00Z", "2025-11-04T00:00:00Z"),
            ] {
                let (from, to) = (utc(from), utc(to));
                let forward: Vec<_> = s.after(from).take_while(|t| *t <= to).collect();
                let mut backward: Vec<_> = s.at_or_before(to).take_while(|t| *t > from).collect();
                backward.reverse();
                assert_eq!(forward, backward, "{expr} {tz}");
                assert!(!forward.is_empty());
            }
        }
        // From inside the repeated hour, the hour's first pass is found.
        let s = spec("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            s.at_or_before(utc("2025-10-26T01:10:00Z")).next(),
            Some(utc("2025-10-26T00:30:00Z"))
        );
        // `upto` itself is included.
        assert_eq!(
            s.at_or_before(utc("2025-10-27T01:30:00Z")).next(),
            Some(utc("2025-10-27T01:30:00Z"))
        );
    }

    #[test]
    fn rejects_bad_expressions() {
        let tz: Tz = "UTC".parse().unwrap();
        assert!(CronSpec::parse("61 * * * *", tz).is_err());
        assert!(CronSpec::parse("not cron", tz).is_err());
        assert!(CronSpec::parse("@daily", tz).is_ok());
    }
}
