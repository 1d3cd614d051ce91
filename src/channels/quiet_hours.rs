//! Quiet hours (`quiet_hours = "21:00-09:00"`): a daily window in the recipient's own local
//! time in which a channel sends nothing; windows may span midnight.

use chrono::NaiveTime;

/// A daily window, in the recipient's local time, in which no message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// Parses `"HH:MM-HH:MM"`; `""` means none.
    pub fn parse_opt(s: &str) -> Result<Option<QuietHours>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let bad = || format!("quiet_hours {s:?} is not of the form \"21:00-09:00\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (t(a)?, t(b)?);
        if start == end {
            return Err(format!(
                "quiet_hours {s:?} is empty or the whole day; use \"\" to turn them off"
            ));
        }
        Ok(Some(QuietHours { start, end }))
    }

    /// Whether `local` falls in the window (start inclusive, end exclusive; may span midnight).
    pub fn contains(&self, local: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}
