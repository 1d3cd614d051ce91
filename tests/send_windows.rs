//! The shipped pipeline (`pipelines/reactivation.toml`) and schedule
//! (`schedules/nightly.toml`) over 14 simulated nights: every fire time of the schedule is
//! planned with the shipped campaigns and channels at that instant, and each message goes
//! through the send-time window check ten minutes later (the stages ran), as delivery does.
//! Customers in New York, Berlin and Shanghai must all get the `winback_quick` SMS step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use winback::campaign::timezone::resolve;
use winback::campaign::{
    AudienceRow, Campaign, CampaignContext, ChannelRules, Contact, Fields, IdMap, PlanInput,
};
use winback::config::Pipeline;
use winback::delivery::window::by_window;
use winback::message::{LedgerEntry, SendState};
use winback::schedule::config::Schedule;

const CUSTOMERS: [&str; 3] = ["ny", "berlin", "shanghai"];

struct Shipped {
    pipeline: Pipeline,
    campaigns: Vec<Campaign>,
    channels: BTreeMap<String, ChannelRules>,
}

fn shipped() -> Shipped {
    let pipeline = winback::config::load(
        Path::new("pipelines/reactivation.toml"),
        &winback::config::LoadOptions::default(),
    )
    .unwrap();
    let channels = winback::pipeline::session::channel_rules(&pipeline);
    let known: Vec<String> = pipeline
        .campaigns
        .values()
        .map(|c| c.audience.clone())
        .collect();
    let ctx = CampaignContext {
        base_dir: Path::new("pipelines"),
        known_tables: &known,
        channels: &channels,
    };
    let campaigns = winback::campaign::resolve_campaigns(&pipeline.campaigns, &ctx).unwrap();
    Shipped {
        pipeline,
        campaigns,
        channels,
    }
}

/// New York (its own zone), Berlin (`Mars/Olympus`, country DE) and Shanghai (no zone,
/// country CN), all consenting, in `winback_quick`'s audience from `entry`.
fn world(entry: NaiveDate) -> (HashMap<String, Vec<AudienceRow>>, IdMap<String, Contact>) {
    let given: [(Option<&str>, Option<&str>, &str); 3] = [
        (Some("America/New_York"), Some("US"), "+12125550100"),
        (Some("Mars/Olympus"), Some("DE"), "+4915112345678"),
        (None, Some("CN"), "+8613812345678"),
    ];
    let mut contacts = IdMap::default();
    let mut rows = Vec::new();
    for (id, (tz, country, phone)) in CUSTOMERS.into_iter().zip(given) {
        // The holdout is a hash of campaign and customer: these three are treated.
        assert!(!winback::campaign::holdout::in_holdout(
            "winback_quick",
            id,
            0.10
        ));
        let (timezone, timezone_source) = resolve(tz, country, Some(phone));
        contacts.insert(
            id.to_string(),
            Contact {
                email: Some(format!("{id}@example.com")),
                phone: Some(phone.to_string()),
                consent_email: Some(true),
                consent_sms: Some(true),
                consent_call: Some(true),
                timezone,
                timezone_source,
                unsubscribe_token: None,
                ..Contact::default()
            },
        );
        rows.push(AudienceRow {
            customer_id: id.to_string(),
            entry_date: entry,
            value: 100.0,
            fields: Fields::from_pairs(&[
                ("days_since_last_purchase", serde_json::json!(60)),
                ("orders", serde_json::json!(7)),
                ("favourite_channel", serde_json::json!("web")),
                // For the call list's row (step 1 calls the most valuable).
                ("last_purchase_date", serde_json::json!("2026-11-01")),
                ("monetary_total", serde_json::json!(420.0)),
            ]),
        });
    }
    (
        HashMap::from([("winback_quick".to_string(), rows)]),
        contacts,
    )
}

/// What 14 nights from `entry` did: (fire time, step, customer) of every delivered message,
/// and the summary's repeated-deferral count of each fire.
struct Nights {
    delivered: BTreeSet<(DateTime<Utc>, u32, String)>,
    repeated: Vec<(NaiveDate, u64)>,
}

fn fourteen_nights(schedule: &Schedule, entry: NaiveDate) -> Nights {
    let s = shipped();
    let (audiences, contacts) = world(entry);
    let start = entry.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let end = start + TimeDelta::days(14);
    let mut ledger: BTreeMap<(String, u32, String, NaiveDate), LedgerEntry> = BTreeMap::new();
    let mut nights = Nights {
        delivered: BTreeSet::new(),
        repeated: Vec::new(),
    };
    let no_purchases = IdMap::default();
    for fire in schedule.next_fire_times(start, 100) {
        if fire >= end {
            break;
        }
        let as_of = schedule.as_of_for(fire);
        let rows: Vec<LedgerEntry> = ledger.values().cloned().collect();
        let input = PlanInput {
            as_of,
            now: fire,
            timezone: s.pipeline.timezone,
            campaigns: &s.campaigns,
            channels: &s.channels,
            audiences: &audiences,
            contacts: &contacts,
            unsubscribes: &[],
            ledger: &rows,
            last_purchase: &no_purchases,
            frequency_cap: s.pipeline.delivery.frequency_cap,
            staff: &s.pipeline.staff,
            warn_deferred_nights: s.pipeline.delivery.warn_deferred_nights,
            budget: s.pipeline.budget.as_ref(),
            tokens: &winback::unsubscribe_token::TokenKeys::development(),
        };
        let plan = winback::campaign::plan(&input).unwrap();
        nights
            .repeated
            .push((as_of, plan.summary.repeated_deferrals));
        let mut record =
            |campaign: &str, step, customer: &str, entry, channel: &str, medium, state, sent_at| {
                let key = (campaign.to_string(), step, customer.to_string(), entry);
                if ledger.get(&key).is_some_and(|r| r.state.is_final()) {
                    return;
                }
                ledger.insert(
                    key,
                    LedgerEntry {
                        campaign: campaign.to_string(),
                        step,
                        customer_id: customer.to_string(),
                        channel: channel.to_string(),
                        medium,
                        state,
                        entry_date: entry,
                        as_of,
                        sent_at,
                    },
                );
            };
        for d in &plan.decisions {
            record(
                &d.campaign,
                d.step,
                &d.customer_id,
                d.entry_date,
                &d.channel,
                d.medium,
                d.state,
                None,
            );
        }
        let sent_at = fire + TimeDelta::minutes(10);
        for draft in plan.send {
            let m = draft.message;
            let settings = &s.pipeline.channels[&m.channel].settings;
            let open = by_window(settings, sent_at, vec![m.clone()]).send.len() == 1;
            let state = if open {
                nights
                    .delivered
                    .insert((fire, m.step, m.customer_id.clone()));
                SendState::Delivered
            } else {
                SendState::Deferred
            };
            let at = open.then_some(sent_at);
            record(
                &m.campaign,
                m.step,
                &m.customer_id,
                m.entry_date,
                &m.channel,
                m.medium,
                state,
                at,
            );
        }
    }
    nights
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn all_three(fire: &str, step: u32) -> Vec<(DateTime<Utc>, u32, String)> {
    CUSTOMERS
        .iter()
        .map(|c| (at(fire), step, c.to_string()))
        .collect()
}

/// Winter (entry Monday 2027-01-11) and summer (Monday 2027-07-12), fires at 04:00 and
/// 17:00 UTC. Step 1 (day 0, e-mail, no quiet hours) goes to all three at the first fire.
/// Step 2 (day 3, SMS, window 09:00-21:00 local) is due on the 14th / 15th: at 04:00 UTC
/// (sent 04:10) it is 12:10 in Shanghai (sent), 23:10 / 00:10 in New York and 05:10 /
/// 06:10 in Berlin (deferred); at 17:00 UTC (sent 17:10) it is 12:10 / 13:10 in New York
/// and 18:10 / 19:10 in Berlin (sent). Step 3 (day 10) keeps its 7-day gap after step 2's
/// as_of: the 21st / 22nd at 04:00, all three. No step is deferred twice.
#[test]
fn the_shipped_schedule_delivers_the_sms_step_in_new_york_berlin_and_shanghai() {
    let schedule = Schedule::load_file(Path::new("schedules/nightly.toml")).unwrap();
    for (entry, first, sms_asia, sms_west, last) in [
        (
            "2027-01-11",
            "2027-01-11T04:00:00Z",
            "2027-01-14T04:00:00Z",
            "2027-01-14T17:00:00Z",
            "2027-01-21T04:00:00Z",
        ),
        (
            "2027-07-12",
            "2027-07-12T04:00:00Z",
            "2027-07-15T04:00:00Z",
            "2027-07-15T17:00:00Z",
            "2027-07-22T04:00:00Z",
        ),
    ] {
        let nights = fourteen_nights(&schedule, entry.parse().unwrap());
        let mut expect: BTreeSet<_> = all_three(first, 1).into_iter().collect();
        expect.insert((at(sms_asia), 2, "shanghai".into()));
        expect.insert((at(sms_west), 2, "ny".into()));
        expect.insert((at(sms_west), 2, "berlin".into()));
        expect.extend(all_three(last, 3));
        assert_eq!(nights.delivered, expect, "entry {entry}");
        assert!(
            nights.repeated.iter().all(|(_, n)| *n == 0),
            "entry {entry}"
        );
    }
}

/// The schedule this replaces, 02:30 UTC: 21:30 in New York and 03:30 in Berlin, every
/// night. Their SMS, due on 01-14, is deferred night after night and never sent (nor is
/// step 3, which waits for it); Shanghai (10:30) gets it. From 01-16, the third night of
/// deferral, each run counts the two repeated deferrals.
#[test]
fn a_single_0230_run_never_reaches_new_york_or_berlin_and_warns() {
    let text = std::fs::read_to_string("schedules/nightly.toml")
        .unwrap()
        .replace("cron = \"0 4,17 * * *\"", "cron = \"30 2 * * *\"");
    let schedule = Schedule::from_toml_str(&text, Path::new("nightly.toml")).unwrap();
    let nights = fourteen_nights(&schedule, "2027-01-11".parse().unwrap());
    let sms: BTreeSet<&str> = nights
        .delivered
        .iter()
        .filter(|(_, step, _)| *step == 2)
        .map(|(_, _, c)| c.as_str())
        .collect();
    assert_eq!(sms, BTreeSet::from(["shanghai"]));
    let warned: Vec<(String, u64)> = nights
        .repeated
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| (d.to_string(), *n))
        .collect();
    let expect: Vec<(String, u64)> = (16..=24).map(|day| (format!("2027-01-{day}"), 2)).collect();
    assert_eq!(warned, expect);
}
