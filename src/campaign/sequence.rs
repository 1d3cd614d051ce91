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

/// One place in a campaign's sequence: the configured step it sends, and its number and
/// day. Past the last step of a campaign with `repeat_every_days = N`, place `k` repeats
/// the last step: number `k + 1` (so each repeat has its own ledger row and idempotency
/// key) and day `last day + (k + 1 - steps) x N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Index of the step in `campaign.steps` (templates, channels, offer).
    pub index: usize,
    /// The step number the ledger records: `k + 1`.
    pub number: u32,
    /// Days after the entry date.
    pub day: u64,
}

/// Place `k` (0-based) of `campaign`'s sequence; None past the last step without
/// repeats (or past any representable day).
pub fn position(campaign: &Campaign, k: usize) -> Option<Position> {
    let number = u32::try_from(k.checked_add(1)?).ok()?;
    if let Some(step) = campaign.steps.get(k) {
        return Some(Position {
            index: k,
            number,
            day: u64::from(step.day),
        });
    }
    let every = u64::from(campaign.repeat_every_days.filter(|&n| n > 0)?);
    let index = campaign.steps.len().checked_sub(1)?;
    let repeats = u64::try_from(k - index).ok()?;
    let day = u64::from(campaign.steps[index].day).checked_add(repeats.checked_mul(every)?)?;
    Some(Position { index, number, day })
}

/// What the sequence wants for one audience row tonight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing due: waiting for a step's day, sequence finished, or stopped.
    Nothing,
    /// This place of the sequence is due.
    Due(Position),
    /// This place is due but the customer bought after the previous step was sent.
    Purchased(Position),
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

/// The night place `k` (0-based, see [`position`]) of an entry becomes due:
/// `entry_date + day`, and after the first not before the gap between the two places'
/// days after the previous one's `as_of` (`previous_as_of`), so a step that went out late
/// keeps its spacing (and a repeat comes `repeat_every_days` after the one before).
pub fn due_date(
    campaign: &Campaign,
    k: usize,
    entry_date: NaiveDate,
    previous_as_of: Option<NaiveDate>,
) -> Option<NaiveDate> {
    let at = position(campaign, k)?;
    let due = entry_date.checked_add_days(Days::new(at.day));
    match (
        k.checked_sub(1).and_then(|p| position(campaign, p)),
        previous_as_of,
    ) {
        (Some(before), Some(prev)) => {
            let gap = at.day.saturating_sub(before.day);
            due.max(prev.checked_add_days(Days::new(gap)))
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
/// row (purchases on that day were not yet known when it was sent). With
/// `repeat_every_days`, the places after the last step ([`position`]) follow the same
/// rules: each repeat is due `repeat_every_days` after the one before was done.
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
    // Ends: every place is a ledger row of this entry until the first not done, and the
    // customer's rows are finite.
    for k in 0.. {
        let Some(at) = position(campaign, k) else {
            break;
        };
        let step = &campaign.steps[at.index];
        let row = best(at.number);
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
            return Next::Purchased(at);
        }
        return Next::Due(at);
    }
    Next::Nothing
}
