//! What one planning pass reads: the audience rows and everything else, borrowed.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::config::Campaign;
use super::fields::Fields;
use super::id_hash::IdMap;
use super::suppress::{Contact, FrequencyCap, Unsubscribe};
use crate::channel_rules::ChannelRules;
use crate::message::LedgerEntry;

/// One row of a campaign's audience table.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceRow {
    pub customer_id: String,
    /// The lapse's alert date: the sequence entry.
    pub entry_date: NaiveDate,
    /// Ranks recipients for a budget cut (the campaign's `value_column`).
    pub value: f64,
    /// The row's columns, for the templates and the ledger's tags (shared, never copied
    /// per message).
    pub fields: Fields,
}

/// Everything one planning pass reads.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub as_of: NaiveDate,
    /// The real clock at send time (quiet hours, daily cap); injected for tests.
    pub now: DateTime<Utc>,
    /// The pipeline's timezone: quiet hours of customers without their own.
    pub timezone: Tz,
    pub campaigns: &'a [Campaign],
    pub channels: &'a BTreeMap<String, ChannelRules>,
    /// Audience rows per campaign name (a campaign without an entry has no audience).
    pub audiences: &'a HashMap<String, Vec<AudienceRow>>,
    pub contacts: &'a IdMap<String, Contact>,
    pub unsubscribes: &'a [Unsubscribe],
    pub ledger: &'a [LedgerEntry],
    pub last_purchase: &'a IdMap<String, NaiveDate>,
    pub frequency_cap: FrequencyCap,
    /// Signs the unsubscribe tokens of contacts without one of their own (`winback listen`
    /// verifies them).
    pub tokens: &'a crate::unsubscribe_token::TokenKeys,
    /// `[staff]`: the people calls are shared among (a customer's own `owner` first).
    pub staff: &'a [String],
    /// A step deferred on this many nights in a row is counted in the summary's
    /// `repeated_deferrals` (the run warns); 0 = never.
    pub warn_deferred_nights: u32,
    /// `[budget]`: the run's budget split across the campaigns, if any.
    pub budget: Option<&'a crate::config::budget::BudgetSplit>,
}
