//! The golden cases of send windows at planning (hand-worked): inferred timezones, a
//! channel that schedules, and a deferral that repeats night after night.

use super::*;
use crate::campaign::timezone::{TimezoneSource, resolve};
use crate::channel_rules::{Defer, ScheduleLead};
use SendState::Deferred;

const SMS_NOW: &[(u32, &str)] = &[(0, "sms")];

fn with_timezone(w: &mut World, id: &str, tz: Option<&str>, country: Option<&str>, phone: &str) {
    let c = w.contacts.get_mut(id).unwrap();
    c.phone = Some(phone.to_string());
    (c.timezone, c.timezone_source) = resolve(tz, country, Some(phone));
}

/// 08:30 UTC on 2027-01-11 is 09:30 in Berlin (CET): the SMS window is open there, and
/// still closed in the pipeline's UTC (before 09:00). `mars` (timezone `Mars/Olympus`,
/// country `DE`) is Berlin and gets the SMS; `nowhere` (no timezone, no country, a phone
/// of no known calling code) gets the pipeline's UTC and is deferred.
#[test]
fn golden_mars_olympus_in_germany_is_treated_as_berlin() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, SMS_NOW));
    w.as_of = d("2027-01-11");
    w.now = at("2027-01-11T08:30:00Z");
    w.add("quick", "mars", "2027-01-11", 1.0);
    w.add("quick", "nowhere", "2027-01-11", 1.0);
    with_timezone(
        &mut w,
        "mars",
        Some("Mars/Olympus"),
        Some("DE"),
        "+15551234567",
    );
    with_timezone(&mut w, "nowhere", None, None, "+9991234567");
    assert_eq!(w.contacts["mars"].timezone_source, TimezoneSource::Country);
    let p = w.plan();
    assert_eq!(sent(&p), BTreeSet::from([s("quick", 1, "mars")]));
    assert_eq!(p.send[0].message.timezone, Some(chrono_tz::Europe::Berlin));
    assert_eq!(
        decided(&p),
        BTreeMap::from([(
            "nowhere".to_string(),
            x("quick", 1, Deferred, "quiet_hours")
        )])
    );
    let inferred = p.summary.timezones_inferred;
    assert_eq!(
        (inferred.country, inferred.phone, inferred.pipeline),
        (1, 0, 1)
    );
}

/// A channel with `defer = "schedule"` is not deferred at planning: delivery sets the
/// provider's delivery time when the batch is sent.
#[test]
fn golden_a_scheduling_channel_plans_in_quiet_hours() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, SMS_NOW));
    w.now = at("2026-06-04T02:30:00Z");
    w.add("quick", "c1", "2026-06-04", 1.0);
    assert_eq!(
        decided(&w.plan())["c1"],
        x("quick", 1, Deferred, "quiet_hours")
    );
    w.channels.get_mut("sms").unwrap().defer = Defer::Schedule(ScheduleLead {
        min: std::time::Duration::ZERO,
        max: std::time::Duration::from_secs(72 * 3600),
    });
    assert_eq!(sent(&w.plan()), BTreeSet::from([s("quick", 1, "c1")]));
}

/// A run at 02:30 UTC, a customer in UTC: the SMS due on 06-04 is deferred on 06-04, 06-05
/// and 06-06. The third night makes three in a row: counted (the run warns); the first two
/// are not. A customer deferred for the first time on 06-06 (entered that day) is not.
#[test]
fn golden_a_deferral_repeated_three_nights_is_counted() {
    let mut w = World::new(&campaign_toml("quick", 10, 0.0, None, SMS_NOW));
    w.add("quick", "c1", "2026-06-04", 1.0);
    let mut counted = Vec::new();
    for day in 4..=6 {
        w.as_of = d(&format!("2026-06-{day:02}"));
        w.now = at(&format!("2026-06-{day:02}T02:30:00Z"));
        if day == 6 {
            w.add("quick", "c2", "2026-06-06", 1.0);
        }
        let p = w.plan();
        assert!(p.send.is_empty());
        counted.push(p.summary.repeated_deferrals);
        w.record(&p);
    }
    assert_eq!(counted, vec![0, 0, 1]);
}
