//! What planning decides about one recipient who is not sent tonight, and the candidate
//! steps the rules work through on the way.

use chrono::NaiveDate;
use serde::Serialize;

use super::fields::Fields;
use super::holdout::idempotency_key;
use super::plan_input::{AudienceRow, PlanInput};
use crate::message::{Medium, SendState};

/// A recipient who is not sent tonight, and why (goes to the ledger and output tables).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub campaign: String,
    pub step: u32,
    pub customer_id: String,
    pub channel: String,
    pub medium: Medium,
    /// The address considered, when there was one (never for holdout).
    pub address: Option<String>,
    pub entry_date: NaiveDate,
    pub idempotency_key: String,
    /// `Holdout`, `Suppressed` or `Deferred`.
    pub state: SendState,
    pub reason: String,
    /// More about the reason (a render error's template part), no personal data.
    pub detail: Option<String>,
    pub value: f64,
    /// A holdout decision: the first rule that would have stopped the message (see
    /// `state::Tags::would_be_suppressed`); None otherwise.
    pub would_be_suppressed: Option<String>,
    /// The audience row (the ledger's segment and treatment).
    #[serde(skip)]
    pub fields: Fields,
}

/// A due step of one customer in one campaign.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate<'a> {
    pub campaign: usize,
    /// The index of the configured step it sends (templates, channels, offer).
    pub step: usize,
    /// The step number the ledger records: the step's own, or past the last step a
    /// repeat's (`sequence::position`).
    pub number: u32,
    pub row: &'a AudienceRow,
    /// The channel of the step this candidate is on: the first to try until the rules
    /// choose one for the customer ([`super::channel_choice`]).
    pub channel: &'a str,
    pub medium: Medium,
    /// Messages in the frequency window (all campaigns), this entry's own steps excluded.
    pub recent_sent: u32,
    /// Hash of the customer id: the cheap tie-break when sorting by value.
    pub tie: u64,
    /// The step's call channels may be chosen: always, unless the campaign's `call_top`
    /// places went to more valuable customers tonight.
    pub calls: bool,
}

impl Candidate<'_> {
    /// The key of this step's message: the same whichever run plans or sends it.
    pub fn idempotency_key(&self, input: &PlanInput<'_>) -> String {
        let campaign = &input.campaigns[self.campaign];
        idempotency_key(
            &campaign.name,
            self.number,
            &self.row.customer_id,
            self.channel,
            self.row.entry_date,
        )
    }

    /// What sending this step to the customer is expected to cost: the channel's
    /// `cost_per_message` plus the step's `offer_cost`. Budgets count it, the ledger
    /// records it, and ROI and SLTV use the same figures.
    pub fn cost(&self, input: &PlanInput<'_>) -> f64 {
        let message = input
            .channels
            .get(self.channel)
            .map_or(0.0, |r| r.cost_per_message);
        message + input.campaigns[self.campaign].steps[self.step].offer_cost
    }
}

/// A candidate that passed every rule and will be rendered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planned<'a> {
    pub candidate: Candidate<'a>,
    pub address: &'a str,
    pub token: Option<&'a str>,
}

/// The decision record for a candidate (pure: built on any thread).
pub(super) fn decision(
    input: &PlanInput<'_>,
    c: &Candidate<'_>,
    state: SendState,
    reason: &str,
    address: Option<&str>,
) -> Decision {
    let campaign = &input.campaigns[c.campaign];
    Decision {
        campaign: campaign.name.clone(),
        step: c.number,
        customer_id: c.row.customer_id.clone(),
        channel: c.channel.to_string(),
        medium: c.medium,
        address: address.map(str::to_string),
        entry_date: c.row.entry_date,
        idempotency_key: c.idempotency_key(input),
        state,
        reason: reason.to_string(),
        detail: None,
        value: c.row.value,
        would_be_suppressed: None,
        fields: c.row.fields.clone(),
    }
}
