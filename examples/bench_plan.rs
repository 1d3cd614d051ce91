//! Times planning for 1M audience rows (two campaigns, consent, unsubscribes, the ledger
//! of past steps, holdout, caps, budget, rendering) in two scenarios:
//! `cargo run --release --example bench_plan [ROWS] [SPREAD_DAYS]`.
//! SPREAD_DAYS = 1: every customer enters tonight (the worst case: ~900k messages to
//! render); 60 (steady state): entries spread over 60 days, earlier steps in the ledger,
//! a few percent due tonight. Without SPREAD_DAYS both are run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use winback::campaign::config::{CampaignContext, RawCampaign, resolve_campaigns};
use winback::campaign::{
    AudienceRow, ChannelRules, Contact, Fields, FrequencyCap, IdMap, PlanInput, Unsubscribe, plan,
};
use winback::message::{LedgerEntry, Medium, SendState};

/// The main crate's allocator: glibc malloc doubles the time of this allocation-heavy pass.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PIPELINE: &str = r#"
[campaigns.winback_quick]
audience = "winback_quick"
priority = 10
budget = 5000.0
[[campaigns.winback_quick.steps]]
day = 0
channel = "email"
subject = "{{ first_name or 'Hello' }}, we kept something for you"
text = "Hi {{ first_name or 'there' }}, it has been {{ days_since_last_purchase }} days. As one of our {{ segment }} customers: 15% off this week. Unsubscribe: {{ unsubscribe_url }}"
html = "<p>Hi {{ first_name or 'there' }},</p><p>it has been {{ days_since_last_purchase }} days.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
[[campaigns.winback_quick.steps]]
day = 3
channel = "sms"
text = "{{ first_name or 'Hi' }}, 15% off ends Sunday. Reply STOP to opt out."

[campaigns.winback_amends]
audience = "winback_amends"
priority = 20
[[campaigns.winback_amends.steps]]
day = 0
channel = "email"
subject = "Did we let you down?"
text = "Hi {{ first_name or 'there' }}, what went wrong? {{ unsubscribe_url }}"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let spreads: Vec<u64> = match args.next().and_then(|a| a.parse().ok()) {
        Some(s) => vec![s],
        None => vec![1, 60],
    };
    for spread in spreads {
        run(n, spread.max(1));
    }
}

/// The audience columns the templates read, one row per customer (as planning loads them).
fn fields_table(n: usize) -> Arc<datafusion::arrow::array::RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    let ids: StringArray = (0..n).map(|i| Some(format!("C{i:08}"))).collect();
    let names: StringArray = (0..n).map(|i| (i % 7 != 0).then_some("Anna")).collect();
    let segments: StringArray = (0..n).map(|_| Some("At Risk")).collect();
    let days: Int64Array = (0..n).map(|i| Some(90 + (i % 30) as i64)).collect();
    let sltv: Float64Array = (0..n).map(|i| Some((i % 1000) as f64)).collect();
    let batch = datafusion::arrow::array::RecordBatch::try_from_iter(vec![
        ("customer_id", Arc::new(ids) as ArrayRef),
        ("first_name", Arc::new(names) as ArrayRef),
        ("segment", Arc::new(segments) as ArrayRef),
        ("days_since_last_purchase", Arc::new(days) as ArrayRef),
        ("sltv", Arc::new(sltv) as ArrayRef),
    ])
    .expect("bench columns");
    Fields::table(&batch).expect("bench fields")
}

fn run(n: usize, spread: u64) {
    #[derive(serde::Deserialize)]
    struct File {
        campaigns: BTreeMap<String, RawCampaign>,
    }
    let raw: File = toml::from_str(PIPELINE).expect("bench pipeline parses");
    let mut email = ChannelRules::new(Medium::Email);
    email.cost_per_message = 0.01;
    let mut sms = ChannelRules::new(Medium::Sms);
    sms.cost_per_message = 0.05;
    let channels = BTreeMap::from([("email".to_string(), email), ("sms".to_string(), sms)]);
    let tables = vec!["winback_quick".to_string(), "winback_amends".to_string()];
    let ctx = CampaignContext {
        base_dir: Path::new("."),
        known_tables: &tables,
        channels: &channels,
    };
    let campaigns = resolve_campaigns(&raw.campaigns, &ctx).expect("bench campaigns resolve");

    let as_of = NaiveDate::from_ymd_opt(2026, 6, 10).unwrap_or_default();
    let mut audiences: HashMap<String, Vec<AudienceRow>> = HashMap::new();
    let mut contacts: IdMap<String, Contact> = IdMap::default();
    let mut ledger = Vec::new();
    let mut unsubscribes = Vec::new();
    let mut last_purchase: IdMap<String, NaiveDate> = IdMap::default();
    let table = fields_table(n);
    for i in 0..n {
        let id = format!("C{i:08}");
        // Independent pseudo-random attributes from one multiplicative hash of i.
        let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let pick = |shift: u32, m: u64| (h >> shift) % m;
        let ci = usize::from(pick(8, 5) == 0);
        let campaign = &campaigns[ci];
        let entry = as_of - Days::new(pick(16, spread));
        audiences
            .entry(campaign.name.clone())
            .or_default()
            .push(AudienceRow {
                customer_id: id.clone(),
                entry_date: entry,
                value: (i % 1000) as f64,
                fields: Fields::new(Arc::clone(&table), i),
            });
        // Steps due before tonight went out on their day.
        for step in &campaign.steps {
            let day = entry + Days::new(u64::from(step.day));
            if day < as_of {
                ledger.push(LedgerEntry {
                    campaign: campaign.name.clone(),
                    step: step.number,
                    customer_id: id.clone(),
                    channel: step.channels[0].name.clone(),
                    medium: step.channels[0].medium,
                    state: SendState::Delivered,
                    entry_date: entry,
                    as_of: day,
                    sent_at: day.and_hms_opt(3, 0, 0).map(|t| t.and_utc()),
                });
            }
        }
        if pick(40, 50) == 0 {
            unsubscribes.push(Unsubscribe {
                customer_id: Some(id.clone()),
                address: None,
                medium: None,
                at: as_of.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
                reason: "unsubscribed",
            });
        }
        last_purchase.insert(id.clone(), as_of - Days::new(100));
        contacts.insert(
            id.clone(),
            Contact {
                email: Some(format!("c{i}@example.com")),
                phone: Some(format!("+4915{i:09}")),
                consent_email: Some(pick(24, 10) != 0),
                consent_sms: Some(pick(32, 4) != 0),
                timezone: Some(chrono_tz::Europe::Berlin),
                timezone_source: winback::campaign::timezone::TimezoneSource::Given,
                unsubscribe_token: None,
                ..Contact::default()
            },
        );
    }
    let now = as_of.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
    let tokens = winback::unsubscribe_token::TokenKeys::development();
    let input = PlanInput {
        as_of,
        now,
        timezone: chrono_tz::UTC,
        campaigns: &campaigns,
        channels: &channels,
        audiences: &audiences,
        contacts: &contacts,
        unsubscribes: &unsubscribes,
        ledger: &ledger,
        last_purchase: &last_purchase,
        frequency_cap: FrequencyCap::default(),
        tokens: &tokens,
        staff: &[],
        warn_deferred_nights: 3,
        budget: None,
    };
    // The first pass warms the allocator; the second is reported.
    drop(plan(&input).expect("bench plan"));
    // BENCH_REPEAT=N plans N more times (for profiling the planner, not the set-up).
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for _ in 0..repeat {
        drop(plan(&input).expect("bench plan"));
    }
    let start = Instant::now();
    let cpu_start = cpu_secs();
    let p = plan(&input).expect("bench plan");
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_start;
    println!(
        "{n} audience rows, entries over {spread} day(s), {} ledger rows: planned in {secs:.3} s wall, {cpu:.2} s CPU (all threads); {} messages, {} decisions; load average {}",
        ledger.len(),
        p.send.len(),
        p.decisions.len(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if std::env::var("BENCH_SUMMARY").is_ok() {
        println!(
            "{}",
            serde_json::to_string_pretty(&p.summary).unwrap_or_default()
        );
    }
}

/// User + system CPU seconds of this process (Linux; 0 elsewhere), to tell our work
/// from waiting for a core on a busy machine.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after the command name.
    (ticks(11) + ticks(12)) / 100.0
}
