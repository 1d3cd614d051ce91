//! Deferrals that repeat. A step deferred night after night (its recipient's window is
//! always closed when the run sends, a daily cap always full) never goes out while the
//! holdout arm moves on; the plan summary counts such steps so the run warns about them.

use chrono::NaiveDate;

use super::decision::Decision;
use super::draft::Draft;
use super::id_hash::{IdMap, IdSet};
use super::plan_input::PlanInput;
use super::sequence::{due_date, position};
use crate::message::{LedgerEntry, SendState};

/// One due step of tonight's plan: (campaign, step number, customer, entry, deferred now).
type Due<'a> = (&'a str, u32, &'a str, NaiveDate, bool);

/// How many of tonight's due steps have been deferred on at least
/// `input.warn_deferred_nights` nights in a row: from the night the step became due to
/// its last deferral (tonight's, when tonight's plan defers it again; else the ledger's),
/// with the step's ledger row still `deferred`. 0 turns the count off.
pub(super) fn repeated_deferrals(
    input: &PlanInput<'_>,
    send: &[Draft],
    decisions: &[Decision],
) -> u64 {
    let n = input.warn_deferred_nights;
    if n == 0 {
        return 0;
    }
    let due: Vec<Due<'_>> = send
        .iter()
        .map(|d| {
            let m = &d.message;
            (
                m.campaign.as_str(),
                m.step,
                m.customer_id.as_str(),
                m.entry_date,
                false,
            )
        })
        .chain(
            decisions
                .iter()
                .filter(|d| d.state == SendState::Deferred)
                .map(|d| {
                    (
                        d.campaign.as_str(),
                        d.step,
                        d.customer_id.as_str(),
                        d.entry_date,
                        true,
                    )
                }),
        )
        .collect();
    let customers: IdSet<&str> = due.iter().map(|d| d.2).collect();
    // The ledger rows of those customers, by (campaign, customer, entry).
    let mut rows: IdMap<(&str, &str, NaiveDate), Vec<&LedgerEntry>> = IdMap::default();
    for r in input.ledger {
        if customers.contains(r.customer_id.as_str()) {
            rows.entry((r.campaign.as_str(), r.customer_id.as_str(), r.entry_date))
                .or_default()
                .push(r);
        }
    }
    let mut count = 0;
    let none = Vec::new();
    for (campaign, step, customer, entry, now) in due {
        let entry_rows = rows.get(&(campaign, customer, entry)).unwrap_or(&none);
        // The step's ledger row, when its latest state is `deferred`.
        let last = entry_rows
            .iter()
            .filter(|r| r.step == step)
            .max_by_key(|r| r.as_of)
            .filter(|r| r.state == SendState::Deferred);
        let nights = match (last, now) {
            (None, true) => 1,
            (None, false) => continue,
            (Some(last), _) => {
                let Some(c) = input.campaigns.iter().find(|c| c.name == campaign) else {
                    continue;
                };
                // Step numbers are the 1-based places of the sequence (repeats too).
                let k = step.saturating_sub(1) as usize;
                let previous = k.checked_sub(1).and_then(|p| {
                    let number = position(c, p)?.number;
                    entry_rows
                        .iter()
                        .filter(|r| {
                            r.step == number
                                && matches!(r.state, SendState::Delivered | SendState::Holdout)
                        })
                        .map(|r| r.as_of)
                        .max()
                });
                let Some(due_on) = due_date(c, k, entry, previous) else {
                    continue;
                };
                let through = if now { input.as_of } else { last.as_of };
                (through - due_on).num_days() + 1
            }
        };
        if nights >= i64::from(n) {
            count += 1;
        }
    }
    count
}
