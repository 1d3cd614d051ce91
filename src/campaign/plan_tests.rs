//! Golden cases of the planner: every expectation below is worked out by hand from the
//! rules in `plan.rs`, never copied from output.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::*;
use crate::campaign::config::{Campaign, CampaignContext, RawCampaign, resolve_campaigns};
use crate::campaign::fields::Fields;
use crate::campaign::holdout::idempotency_key;
use crate::campaign::holdout::in_holdout;
use crate::campaign::id_hash::IdMap;
use crate::campaign::suppress::{Contact, FrequencyCap, Unsubscribe};
use crate::channel_rules::{ChannelRules, QuietHours};
use crate::message::{LedgerEntry, Medium, SendState};

pub fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const EMAIL: &str = r#"
channel = "email"
subject = "We miss you"
text = "Hello {{ customer_id }}, {{ segment }}. Leave: {{ unsubscribe_url }}"
html = "<p>Hello {{ segment }}</p>"
unsubscribe_url = "https://shop.example/u/{{ unsubscribe_token }}"
"#;

/// A campaign of `steps` ("email" or "sms" at a day), in TOML.
pub fn campaign_toml(
    name: &str,
    priority: i64,
    holdout: f64,
    budget: Option<f64>,
    steps: &[(u32, &str)],
) -> String {
    let mut s = format!(
        "[campaigns.{name}]\naudience = \"aud_{name}\"\npriority = {priority}\nholdout_share = {holdout}\n"
    );
    if let Some(b) = budget {
        s.push_str(&format!("budget = {b}\n"));
    }
    for (day, channel) in steps {
        s.push_str(&format!("[[campaigns.{name}.steps]]\nday = {day}\n"));
        if *channel == "sms" {
            s.push_str(
                "channel = \"sms\"\ntext = \"Hi {{ customer_id }}, 10% off. STOP to end\"\n",
            );
        } else {
            s.push_str(EMAIL);
        }
    }
    s
}

pub struct World {
    pub campaigns: Vec<Campaign>,
    pub channels: BTreeMap<String, ChannelRules>,
    pub audiences: HashMap<String, Vec<AudienceRow>>,
    pub contacts: IdMap<String, Contact>,
    pub unsubscribes: Vec<Unsubscribe>,
    pub ledger: Vec<LedgerEntry>,
    pub last_purchase: IdMap<String, NaiveDate>,
    pub as_of: NaiveDate,
    pub now: DateTime<Utc>,
    pub timezone: Tz,
    pub cap: FrequencyCap,
    /// `[staff]`: who calls.
    pub staff: Vec<String>,
    pub budget: Option<crate::config::budget::BudgetSplit>,
}

impl World {
    pub fn new(toml_text: &str) -> World {
        #[derive(serde::Deserialize)]
        struct File {
            campaigns: BTreeMap<String, RawCampaign>,
        }
        let raw: File = toml::from_str(toml_text).unwrap();
        let mut sms = ChannelRules::new(Medium::Sms);
        sms.cost_per_message = 0.05;
        let mut email = ChannelRules::new(Medium::Email);
        email.cost_per_message = 0.01;
        let mut calls = ChannelRules::new(Medium::Call);
        calls.cost_per_message = 4.0;
        let channels = BTreeMap::from([
            ("email".to_string(), email),
            ("sms".to_string(), sms),
            ("calls".to_string(), calls),
        ]);
        let tables: Vec<String> = raw.campaigns.keys().map(|n| format!("aud_{n}")).collect();
        let ctx = CampaignContext {
            base_dir: Path::new("."),
            known_tables: &tables,
            channels: &channels,
        };
        let campaigns = resolve_campaigns(&raw.campaigns, &ctx).unwrap();
        World {
            campaigns,
            channels,
            audiences: HashMap::new(),
            contacts: IdMap::default(),
            unsubscribes: Vec::new(),
            ledger: Vec::new(),
            last_purchase: IdMap::default(),
            as_of: d("2026-06-04"),
            now: at("2026-06-04T12:00:00Z"),
            timezone: chrono_tz::UTC,
            cap: FrequencyCap::default(),
            staff: Vec::new(),
            budget: None,
        }
    }

    /// Add `id` to `campaign`'s audience with a consenting, valid contact.
    pub fn add(&mut self, campaign: &str, id: &str, entry: &str, value: f64) {
        self.add_row(campaign, id, entry, value);
        self.contacts
            .entry(id.to_string())
            .or_insert_with(|| Contact {
                email: Some(format!("{}@example.com", id.to_lowercase())),
                phone: Some("+4915112345678".to_string()),
                consent_email: Some(true),
                consent_sms: Some(true),
                consent_call: Some(true),
                timezone: None,
                unsubscribe_token: Some(format!("tok-{id}")),
                ..Contact::default()
            });
    }

    pub fn add_row(&mut self, campaign: &str, id: &str, entry: &str, value: f64) {
        let fields = Fields::from_pairs(&[("segment", serde_json::json!("At Risk"))]);
        self.audiences
            .entry(campaign.to_string())
            .or_default()
            .push(AudienceRow {
                customer_id: id.to_string(),
                entry_date: d(entry),
                value,
                fields,
            });
    }

    #[allow(clippy::too_many_arguments)] // a ledger row, field by field
    pub fn past(
        &mut self,
        campaign: &str,
        step: u32,
        id: &str,
        channel: &str,
        entry: &str,
        state: SendState,
        as_of: &str,
    ) {
        let medium = match channel {
            "sms" => Medium::Sms,
            "calls" => Medium::Call,
            _ => Medium::Email,
        };
        self.ledger.push(LedgerEntry {
            campaign: campaign.to_string(),
            step,
            customer_id: id.to_string(),
            channel: channel.to_string(),
            medium,
            state,
            entry_date: d(entry),
            as_of: d(as_of),
            sent_at: Some(d(as_of).and_hms_opt(2, 30, 0).unwrap().and_utc()),
        });
    }

    pub fn plan(&self) -> Plan {
        plan(&PlanInput {
            as_of: self.as_of,
            now: self.now,
            timezone: self.timezone,
            campaigns: &self.campaigns,
            channels: &self.channels,
            audiences: &self.audiences,
            contacts: &self.contacts,
            unsubscribes: &self.unsubscribes,
            ledger: &self.ledger,
            last_purchase: &self.last_purchase,
            frequency_cap: self.cap,
            tokens: &crate::unsubscribe_token::TokenKeys::development(),
            staff: &self.staff,
            warn_deferred_nights: 3,
            budget: self.budget.as_ref(),
        })
        .unwrap()
    }

    /// Record a plan's outcome in the ledger as the sender would: sends delivered,
    /// decisions in their state.
    pub fn record(&mut self, plan: &Plan) {
        for Draft { message: m, .. } in &plan.send {
            let entry = self.entry_of(&m.campaign, &m.customer_id);
            self.ledger.push(LedgerEntry {
                campaign: m.campaign.clone(),
                step: m.step,
                customer_id: m.customer_id.clone(),
                channel: m.channel.clone(),
                medium: m.medium,
                state: SendState::Delivered,
                entry_date: entry,
                as_of: m.as_of,
                sent_at: Some(self.now),
            });
        }
        for x in &plan.decisions {
            self.ledger.push(LedgerEntry {
                campaign: x.campaign.clone(),
                step: x.step,
                customer_id: x.customer_id.clone(),
                channel: x.channel.clone(),
                medium: x.medium,
                state: x.state,
                entry_date: x.entry_date,
                as_of: self.as_of,
                sent_at: None,
            });
        }
    }

    fn entry_of(&self, campaign: &str, id: &str) -> NaiveDate {
        self.audiences[campaign]
            .iter()
            .find(|r| r.customer_id == id)
            .unwrap()
            .entry_date
    }
}

/// (campaign, step, customer) of every message, sorted.
pub fn sent(plan: &Plan) -> BTreeSet<(String, u32, String)> {
    plan.send
        .iter()
        .map(|d| {
            let m = &d.message;
            (m.campaign.clone(), m.step, m.customer_id.clone())
        })
        .collect()
}

/// customer -> (campaign, step, state, reason) of every decision.
pub fn decided(plan: &Plan) -> BTreeMap<String, (String, u32, SendState, String)> {
    plan.decisions
        .iter()
        .map(|x| {
            (
                x.customer_id.clone(),
                (x.campaign.clone(), x.step, x.state, x.reason.clone()),
            )
        })
        .collect()
}

pub fn s(campaign: &str, step: u32, id: &str) -> (String, u32, String) {
    (campaign.to_string(), step, id.to_string())
}

pub fn x(
    campaign: &str,
    step: u32,
    state: SendState,
    reason: &str,
) -> (String, u32, SendState, String) {
    (campaign.to_string(), step, state, reason.to_string())
}

#[path = "plan_golden.rs"]
mod golden;

#[path = "plan_golden_sequence.rs"]
mod golden_sequence;

#[path = "plan_golden_budget.rs"]
mod golden_budget;
#[path = "plan_golden_calls.rs"]
mod golden_calls;
#[path = "plan_golden_repeats.rs"]
mod golden_repeats;

#[path = "plan_golden_channels.rs"]
mod golden_channels;
#[path = "plan_golden_windows.rs"]
mod golden_windows;

#[test]
fn quiet_hours_parse_default_is_used_by_sms_channel() {
    let w = World::new(&campaign_toml("q", 1, 0.0, None, &[(0, "sms")]));
    assert_eq!(
        w.channels["sms"].quiet_hours,
        QuietHours::default_for(Medium::Sms)
    );
}
