//! `campaign_costs`: what each campaign's whole sequence of steps is expected to cost per
//! customer, from the pipeline file, as a table SQL stages read (the `sltv` mart weighs it
//! against the value of winning a customer back). The same figures budgets count and the
//! ledger records per message: the channel's `cost_per_message` plus the step's
//! `offer_cost`. A step with several channels is costed at the first it lists (with
//! `channel = "preferred"`, the first of its fallback list): the channel most customers get.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::Campaign;
use crate::channel_rules::ChannelRules;

pub const TABLE: &str = "campaign_costs";

/// One campaign's expected costs per customer who receives every step.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignCost {
    pub campaign: String,
    pub audience: String,
    pub steps: i64,
    pub message_cost: f64,
    pub offer_cost: f64,
}

impl CampaignCost {
    pub fn sequence_cost(&self) -> f64 {
        self.message_cost + self.offer_cost
    }
}

/// Each campaign's costs, in the order given.
pub fn costs(
    campaigns: &[Campaign],
    channels: &BTreeMap<String, ChannelRules>,
) -> Vec<CampaignCost> {
    campaigns
        .iter()
        .map(|c| CampaignCost {
            campaign: c.name.clone(),
            audience: c.audience.clone(),
            steps: c.steps.len() as i64,
            message_cost: c
                .steps
                .iter()
                .filter_map(|s| s.channels.first())
                .map(|ch| channels.get(&ch.name).map_or(0.0, |r| r.cost_per_message))
                .sum(),
            offer_cost: c.steps.iter().map(|s| s.offer_cost).sum(),
        })
        .collect()
}

/// The table `campaign_costs` (campaign, audience, steps, message_cost, offer_cost,
/// sequence_cost): one row per campaign, none when the pipeline has no campaign.
pub fn batch(costs: &[CampaignCost]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("campaign", DataType::Utf8, false),
        Field::new("audience", DataType::Utf8, false),
        Field::new("steps", DataType::Int64, false),
        Field::new("message_cost", DataType::Float64, false),
        Field::new("offer_cost", DataType::Float64, false),
        Field::new("sequence_cost", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            costs.iter().map(|c| c.campaign.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            costs.iter().map(|c| c.audience.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(costs.iter().map(|c| c.steps))),
        Arc::new(Float64Array::from_iter_values(
            costs.iter().map(|c| c.message_cost),
        )),
        Arc::new(Float64Array::from_iter_values(
            costs.iter().map(|c| c.offer_cost),
        )),
        Arc::new(Float64Array::from_iter_values(
            costs.iter().map(CampaignCost::sequence_cost),
        )),
    ];
    RecordBatch::try_new(schema, cols).expect("the columns match the schema")
}
