//! Which fire times missed while winback was not running (or while the machine slept) get run, according to a schedule's catch-up policy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::fire_times::CronSpec;

/// A schedule's catch-up policy for fire times missed while winback was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum CatchUp {
    /// Run none of them.
    Skip,
    /// Run only the most recent one.
    Latest,
    /// Run all of them, oldest first; at most `max` (the most recent `max`).
    All { max: u32 },
}

/// The policy as written in a schedule file (`catch_up = "latest"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUpMode {
    Skip,
    Latest,
    All,
}

impl CatchUp {
    /// The policy used when the serve loop wakes up late (machine suspended,
    /// process stalled): like `self`, except that `skip` still runs the latest
    /// fire, which is the one the loop was waiting for.
    pub fn when_late(self) -> CatchUp {
        match self {
            CatchUp::Skip => CatchUp::Latest,
            other => other,
        }
    }
}

impl std::fmt::Display for CatchUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatchUp::Skip => f.write_str("skip"),
            CatchUp::Latest => f.write_str("latest"),
            CatchUp::All { max } => write!(f, "all (at most {max})"),
        }
    }
}

/// The missed fire times to run, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatchUpPlan {
    pub fires: Vec<DateTime<Utc>>,
    /// Missed fire times left out by the policy (counted up to `max` + 1000 back).
    pub dropped: usize,
}

/// How far back `dropped` is counted, so a years-long gap of a per-minute
/// schedule does not iterate for seconds.
const COUNT_LIMIT: usize = 1000;

/// The fire times in `(last, now]` to run under `policy`. With no `last`
/// (the schedule never fired before) nothing was missed.
pub fn missed_fires(
    cron: &CronSpec,
    policy: CatchUp,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> CatchUpPlan {
    let Some(last) = last else {
        return CatchUpPlan::default();
    };
    let keep = match policy {
        CatchUp::Skip => 0,
        CatchUp::Latest => 1,
        CatchUp::All { max } => max as usize,
    };
    let mut missed = cron.at_or_before(now).take_while(|t| *t > last);
    let mut fires: Vec<_> = missed.by_ref().take(keep).collect();
    fires.reverse();
    let dropped = missed.take(COUNT_LIMIT).count();
    CatchUpPlan { fires, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn daily() -> CronSpec {
        CronSpec::parse("30 2 * * *", "UTC".parse().unwrap()).unwrap()
    }

    // Last fire 2025-05-01 02:30; down until 2025-05-05 10:00: missed the 2nd to the 5th.
    const LAST: &str = "2025-05-01T02:30:00Z";
    const NOW: &str = "2025-05-05T10:00:00Z";

    #[test]
    fn skip_runs_nothing() {
        let plan = missed_fires(&daily(), CatchUp::Skip, Some(utc(LAST)), utc(NOW));
        assert!(plan.fires.is_empty());
        assert_eq!(plan.dropped, 4);
    }

    #[test]
    fn latest_runs_the_most_recent() {
        let plan = missed_fires(&daily(), CatchUp::Latest, Some(utc(LAST)), utc(NOW));
        assert_eq!(plan.fires, vec![utc("2025-05-05T02:30:00Z")]);
        assert_eq!(plan.dropped, 3);
    }

    #[test]
    fn all_runs_every_one_oldest_first_bounded() {
        let plan = missed_fires(
            &daily(),
            CatchUp::All { max: 31 },
            Some(utc(LAST)),
            utc(NOW),
        );
        assert_eq!(
            plan.fires,
            vec![
                utc("2025-05-02T02:30:00Z"),
                utc("2025-05-03T02:30:00Z"),
                utc("2025-05-04T02:30:00Z"),
                utc("2025-05-05T02:30:00Z"),
            ]
        );
        assert_eq!(plan.dropped, 0);
        let bounded = missed_fires(&daily(), CatchUp::All { max: 2 }, Some(utc(LAST)), utc(NOW));
        assert_eq!(
            bounded.fires,
            vec![utc("2025-05-04T02:30:00Z"), utc("2025-05-05T02:30:00Z")]
        );
        assert_eq!(bounded.dropped, 2);
    }

    #[test]
    fn nothing_missed() {
        let cron = daily();
        // Never fired before: nothing to catch up.
        assert!(
            missed_fires(&cron, CatchUp::All { max: 9 }, None, utc(NOW))
                .fires
                .is_empty()
        );
        // Last fire is the latest one due.
        let last = utc("2025-05-05T02:30:00Z");
        assert!(
            missed_fires(&cron, CatchUp::Latest, Some(last), utc(NOW))
                .fires
                .is_empty()
        );
        // A fire exactly at `now` is due.
        let now = utc("2025-05-06T02:30:00Z");
        assert_eq!(
            missed_fires(&cron, CatchUp::Latest, Some(last), now).fires,
            vec![now]
        );
    }

    #[test]
    fn late_wake_up_under_skip_still_runs_the_due_fire() {
        assert_eq!(CatchUp::Skip.when_late(), CatchUp::Latest);
        assert_eq!(CatchUp::All { max: 3 }.when_late(), CatchUp::All { max: 3 });
    }
}
