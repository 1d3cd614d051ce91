//! Counts of a plan per campaign and channel, for the run summary and the manifest
//! (numbers only: no addresses).

use std::collections::BTreeMap;

use serde::Serialize;

use super::decision::Decision;
use super::draft::Draft;
use super::plan_input::PlanInput;
use crate::message::SendState;

/// What a plan decided, per campaign (and per channel inside it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanSummary {
    /// Audience rows per campaign (one per customer).
    pub audience: BTreeMap<String, u64>,
    /// Per campaign, per channel.
    pub channels: BTreeMap<String, BTreeMap<String, ChannelCounts>>,
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
    pub fn new(input: &PlanInput<'_>, send: &[Draft], decisions: &[Decision]) -> PlanSummary {
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
