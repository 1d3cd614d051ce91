//! Where a customer stands in a campaign's sequence, decided from the send ledger and the
//! lapse's alert date alone (never from `is_first_alert`), so a missed night loses nobody
//! and a customer still lapsed the next night does not enter twice.

use chrono::{Days, NaiveDate};

use super::config::{Campaign, OnUnknown};
use super::id_hash::IdMap;
use crate::message::{LedgerEntry, SendState};

/// No further ledger row in a customer's chain.
const NONE: usize = usize::MAX;

/// Tonight's customers, each with the campaign that owns them (priority) and their
/// ledger rows across all campaigns. One map lookup per audience row answers priority,
/// sequence and frequency; ledger rows of customers in no audience are never indexed.
#[derive(Debug)]
pub struct CustomerIndex<'a> {
    slots: IdMap<&'a str, Slot>,
    /// Per ledger row: the previous row of the same customer (a chain through the ledger).
    next: Vec<usize>,
    ledger: &'a [LedgerEntry],
}

/// One customer's entry in the [`CustomerIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// (campaign index, row index) of the customer's first audience row in priority order.
    pub owner: (usize, usize),
    head: usize,
}

impl<'a> CustomerIndex<'a> {
    /// `rows` are (campaign, row index, customer id) in priority order.
    pub fn new(
        rows: impl Iterator<Item = (usize, usize, &'a str)>,
        capacity: usize,
        ledger: &'a [LedgerEntry],
    ) -> CustomerIndex<'a> {
        let mut slots: IdMap<&str, Slot> = IdMap::default();
        slots.reserve(capacity);
        for (ci, ri, id) in rows {
            slots.entry(id).or_insert(Slot {
                owner: (ci, ri),
                head: NONE,
            });
        }
        let mut next = vec![NONE; ledger.len()];
        for (i, row) in ledger.iter().enumerate() {
            if let Some(slot) = slots.get_mut(row.customer_id.as_str()) {
                next[i] = slot.head;
                slot.head = i;
            }
        }
        CustomerIndex {
            slots,
            next,
            ledger,
        }
    }

    pub fn get(&self, customer_id: &str) -> Option<Slot> {
        self.slots.get(customer_id).copied()
    }

    /// The customer's ledger rows, all campaigns and entries.
    pub fn rows(&self, slot: Slot) -> LedgerRows<'_, 'a> {
        LedgerRows {
            index: self,
            at: slot.head,
        }
    }
}

/// Iterator over one customer's ledger rows.
#[derive(Debug, Clone, Copy)]
pub struct LedgerRows<'i, 'a> {
    index: &'i CustomerIndex<'a>,
    at: usize,
}

impl<'a> Iterator for LedgerRows<'_, 'a> {
    type Item = &'a LedgerEntry;

    fn next(&mut self) -> Option<&'a LedgerEntry> {
        let row = self.index.ledger.get(self.at)?;
        self.at = self.index.next.get(self.at).copied().unwrap_or(NONE);
        Some(row)
    }
}

/// What the sequence wants for one audience row tonight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing due: waiting for a step's day, sequence finished, or stopped.
    Nothing,
    /// This step (0-based index) is due.
    Due(usize),
    /// This step is due but the customer bought after the previous step was sent.
    Purchased(usize),
}

/// How settled a ledger state is, to pick one row when a step has several.
fn rank(state: SendState) -> u8 {
    match state {
        SendState::Delivered | SendState::Holdout => 4,
        SendState::Unknown | SendState::Rejected | SendState::Suppressed => 3,
        SendState::InFlight => 2,
        SendState::Planned | SendState::Deferred | SendState::Failed | SendState::NotSent => 1,
    }
}

/// The night step `k` (0-based) of an entry becomes due: `entry_date + day`, and after the
/// first step not before the configured gap after the previous step's `as_of`
/// (`previous_as_of`), so a step that went out late keeps its spacing.
pub fn due_date(
    campaign: &Campaign,
    k: usize,
    entry_date: NaiveDate,
    previous_as_of: Option<NaiveDate>,
) -> Option<NaiveDate> {
    let step = campaign.steps.get(k)?;
    let due = entry_date.checked_add_days(Days::new(u64::from(step.day)));
    match (
        k.checked_sub(1).and_then(|p| campaign.steps.get(p)),
        previous_as_of,
    ) {
        (Some(before), Some(prev)) => {
            let gap = step.day.saturating_sub(before.day);
            due.max(prev.checked_add_days(Days::new(u64::from(gap))))
        }
        _ => due,
    }
}

/// Decide the next step of `campaign` for one (customer, entry). `rows` are the
/// customer's ledger rows (any campaign and entry: the others are ignored);
/// `last_purchase` gives the customer's last purchase day (asked only when a purchase
/// matters).
///
/// A step whose row is `delivered` or `holdout` is done and the sequence moves on; one
/// that is `rejected`, `suppressed`, `in_flight` or `unknown` stops it (`unknown` is
/// re-planned when the campaign says `on_unknown = "resend"`); `planned`, `deferred`,
/// `failed` and `not_sent` rows, and no row, make the step plannable. A plannable step is due when
/// `as_of >= entry_date + day` and, after the first, also when `as_of` is at least the
/// steps' configured gap after the previous step's `as_of`: a customer who entered late
/// (a lapse found after a missed night, or campaigns switched on with old lapses) gets
/// the steps at their intended spacing, not one per night. A later step with `only_if_no_purchase` is `Purchased`
/// when the customer's last purchase is on or after the `as_of` of the previous step's
/// row (purchases on that day were not yet known when it was sent).
pub fn next_step<'a>(
    campaign: &Campaign,
    entry_date: NaiveDate,
    rows: impl Iterator<Item = &'a LedgerEntry> + Clone,
    as_of: NaiveDate,
    last_purchase: impl FnOnce() -> Option<NaiveDate>,
) -> Next {
    // The most settled row of a step of this entry (rows are few: no allocation).
    let best = |number: u32| {
        rows.clone()
            .filter(|r| {
                r.step == number && r.entry_date == entry_date && r.campaign == campaign.name
            })
            .max_by_key(|r| (rank(r.state), r.as_of))
    };
    let mut previous: Option<&LedgerEntry> = None;
    for (k, step) in campaign.steps.iter().enumerate() {
        let row = best(step.number);
        let plannable = match row.map(|r| r.state) {
            Some(SendState::Delivered | SendState::Holdout) => {
                previous = row;
                continue;
            }
            Some(SendState::Unknown) => campaign.on_unknown == OnUnknown::Resend,
            Some(SendState::Rejected | SendState::Suppressed | SendState::InFlight) => false,
            None
            | Some(
                SendState::Planned | SendState::Deferred | SendState::Failed | SendState::NotSent,
            ) => true,
        };
        if !plannable {
            return Next::Nothing;
        }
        let due = due_date(campaign, k, entry_date, previous.map(|p| p.as_of));
        if due.is_none_or(|d| as_of < d) {
            return Next::Nothing;
        }
        if k > 0
            && step.only_if_no_purchase
            && let Some(prev) = previous
            && let Some(bought) = last_purchase()
            && bought >= prev.as_of
        {
            return Next::Purchased(k);
        }
        return Next::Due(k);
    }
    Next::Nothing
}
