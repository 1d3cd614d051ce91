//! Counts of a plan per campaign and channel, for the run summary and the manifest
//! (numbers only: no addresses).

use std::collections::BTreeMap;

use serde::Serialize;

use super::decision::Decision;
use super::draft::Draft;
use super::id_hash::{IdMap, IdSet};
use super::plan_input::PlanInput;
use super::rules::Spend;
use super::timezone::TimezoneSource;
use crate::message::SendState;

/// What a plan decided, per campaign (and per channel inside it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanSummary {
    /// Audience rows per campaign (one per customer).
    pub audience: BTreeMap<String, u64>,
    /// Per campaign, per channel.
    pub channels: BTreeMap<String, BTreeMap<String, ChannelCounts>>,
    /// Customers planned for tonight (sent or decided) whose timezone was missing or not
    /// an IANA name, by what it was inferred from.
    pub timezones_inferred: TimezonesInferred,
    /// Due steps deferred on at least `repeated_deferral_nights` nights in a row (their
    /// window may never be open when the run sends: see the schedule's hour).
    pub repeated_deferrals: u64,
    pub repeated_deferral_nights: u32,
    /// Per campaign with a budget (its own, or a share of `[budget]`): tonight's spend
    /// against it.
    pub budget: BTreeMap<String, BudgetUse>,
}

/// One campaign's spend against its budget tonight.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BudgetUse {
    /// Its share of `[budget] total_per_run` (None without `[budget]`).
    pub share: Option<f64>,
    /// The most it could spend before reallocation: its own `budget` and its share.
    pub limit: f64,
    /// What its planned messages cost (messages and offers).
    pub spent: f64,
    /// Of that, what came from other campaigns' unused shares (`reallocate = true`).
    pub reallocated: f64,
}

/// How many customers' timezones were inferred, by source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TimezonesInferred {
    /// From `customers.country`.
    pub country: u64,
    /// From the phone number's country calling code.
    pub phone: u64,
    /// Nothing to infer from: the pipeline's timezone.
    pub pipeline: u64,
}

impl TimezonesInferred {
    pub fn total(&self) -> u64 {
        self.country + self.phone + self.pipeline
    }
}

/// One campaign's outcome on one channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelCounts {
    pub send: u64,
    pub cost: f64,
    pub holdout: u64,
    /// Suppressed, by reason.
    pub suppressed: BTreeMap<String, u64>,
    /// Deferred to a later run, by reason.
    pub deferred: BTreeMap<String, u64>,
}

impl PlanSummary {
    pub fn new(
        input: &PlanInput<'_>,
        send: &[Draft],
        decisions: &[Decision],
        spend: &IdMap<usize, Spend>,
    ) -> PlanSummary {
        let mut summary = PlanSummary::default();
        for campaign in input.campaigns {
            let rows = input.audiences.get(&campaign.name).map_or(0, Vec::len);
            summary.audience.insert(campaign.name.clone(), rows as u64);
        }
        for Draft { message: m, .. } in send {
            let counts = summary.counts(&m.campaign, &m.channel);
            counts.send += 1;
            counts.cost += m.cost;
        }
        for d in decisions {
            let counts = summary.counts(&d.campaign, &d.channel);
            match d.state {
                SendState::Holdout => counts.holdout += 1,
                SendState::Deferred => *counts.deferred.entry(d.reason.clone()).or_default() += 1,
                _ => *counts.suppressed.entry(d.reason.clone()).or_default() += 1,
            }
        }
        summary.timezones_inferred = timezones_inferred(input, send, decisions);
        summary.repeated_deferrals = super::repeats::repeated_deferrals(input, send, decisions);
        summary.repeated_deferral_nights = input.warn_deferred_nights;
        for (ci, campaign) in input.campaigns.iter().enumerate() {
            let share = input
                .budget
                .map(|b| b.shares.get(&campaign.name).copied().unwrap_or(0.0));
            let Some(limit) = super::rules::budget_limit(input, ci) else {
                continue;
            };
            let spent = summary
                .channels
                .get(&campaign.name)
                .map_or(0.0, |chans| chans.values().map(|c| c.cost).sum());
            let reallocated = spend.get(&ci).map_or(0.0, |s| s.reallocated);
            summary.budget.insert(
                campaign.name.clone(),
                BudgetUse {
                    share,
                    limit,
                    spent,
                    reallocated,
                },
            );
        }
        summary
    }

    fn counts(&mut self, campaign: &str, channel: &str) -> &mut ChannelCounts {
        self.channels
            .entry(campaign.to_string())
            .or_default()
            .entry(channel.to_string())
            .or_default()
    }

    /// Suppressed count of one reason for a campaign across channels.
    pub fn suppressed(&self, campaign: &str, reason: &str) -> u64 {
        self.channels.get(campaign).map_or(0, |chans| {
            chans
                .values()
                .filter_map(|c| c.suppressed.get(reason))
                .sum()
        })
    }
}

/// Each customer of tonight's plan once, by where their timezone came from.
fn timezones_inferred(
    input: &PlanInput<'_>,
    send: &[Draft],
    decisions: &[Decision],
) -> TimezonesInferred {
    let ids = send
        .iter()
        .map(|d| d.message.customer_id.as_str())
        .chain(decisions.iter().map(|d| d.customer_id.as_str()));
    let mut seen: IdSet<&str> = IdSet::default();
    let mut out = TimezonesInferred::default();
    for id in ids {
        if !seen.insert(id) {
            continue;
        }
        match input.contacts.get(id).map(|c| c.timezone_source) {
            Some(TimezoneSource::Country) => out.country += 1,
            Some(TimezoneSource::Phone) => out.phone += 1,
            Some(TimezoneSource::Pipeline) => out.pipeline += 1,
            Some(TimezoneSource::Given) | None => {}
        }
    }
    out
}
