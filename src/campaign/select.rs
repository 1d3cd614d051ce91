//! Rules 1-3 of planning: which step of which campaign is due for each audience row
//! (sequence), which campaign owns a customer tonight (priority) and who is held out.

use std::hash::BuildHasher;

use super::call_places::limit_calls;
use super::channel_choice::{choose, first};
use super::decision::{Candidate, Decision, decision};
use super::holdout::in_holdout;
use super::id_hash::IdBuildHasher;
use super::par::par_map;
use super::plan_input::{AudienceRow, PlanInput};
use super::rules::deferral;
use super::sequence::{CustomerIndex, Next, next_step};
use super::suppress::{UnsubscribeIndex, counts_as_sent};
use crate::message::{Medium, SendState};

/// What one audience row comes to.
enum Pre<'a> {
    /// Nothing due, or a repeated row.
    Skip,
    /// Purchased, lower priority or holdout (boxed: one `Pre` per audience row is held
    /// at once, and most are not decisions).
    Decided(Box<Decision>),
    /// Due and treated: goes on to suppression.
    Treated(Candidate<'a>),
    /// Due and held out: its decision waits for the call places ([`limit_calls`]).
    Held(Candidate<'a>),
}

/// The treated candidates, in campaign priority order and, within a campaign, by value
/// (highest first); decisions for the rest are appended to `decisions`.
pub(super) fn select<'a>(
    input: &'a PlanInput<'a>,
    unsubscribes: &UnsubscribeIndex,
    decisions: &mut Vec<Decision>,
) -> Vec<Candidate<'a>> {
    let (order, rank) = priority_order(input);

    // Every row, in priority order; the index gives each customer's owning campaign
    // (their first row in that order) and their ledger rows.
    let mut rows: Vec<(usize, usize, &AudienceRow)> = Vec::new();
    for &ci in &order {
        if let Some(audience) = input.audiences.get(&input.campaigns[ci].name) {
            rows.extend(audience.iter().enumerate().map(|(ri, row)| (ci, ri, row)));
        }
    }
    let index = CustomerIndex::new(
        rows.iter()
            .map(|&(ci, ri, row)| (ci, ri, row.customer_id.as_str())),
        rows.len(),
        input.ledger,
    );

    let hasher = IdBuildHasher::default();
    let pre = par_map(&rows, |&(ci, ri, row)| {
        classify(input, &index, &hasher, ci, ri, row)
    });

    let mut candidates = Vec::with_capacity(pre.len());
    let mut held = Vec::new();
    for p in pre {
        match p {
            Pre::Skip => {}
            Pre::Decided(d) => decisions.push(*d),
            Pre::Treated(c) => candidates.push(c),
            Pre::Held(c) => held.push(c),
        }
    }
    limit_calls(input, unsubscribes, &mut candidates, &mut held);
    decisions.extend(par_map(&held, |c| holdout(input, unsubscribes, c)));
    // By campaign priority, then value (highest first), then a hash of the id (no
    // pointer chasing into the strings), then the id: deterministic whatever the
    // audience's row order.
    candidates.sort_unstable_by(|a, b| {
        rank[a.campaign]
            .cmp(&rank[b.campaign])
            .then(b.row.value.total_cmp(&a.row.value))
            .then(a.tie.cmp(&b.tie))
            .then_with(|| a.row.customer_id.cmp(&b.row.customer_id))
    });
    candidates
}

/// The campaigns' indexes in priority order (highest priority first, ties by name) and
/// each campaign's position in that order.
fn priority_order(input: &PlanInput<'_>) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..input.campaigns.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&input.campaigns[a], &input.campaigns[b]);
        cb.priority
            .cmp(&ca.priority)
            .then_with(|| ca.name.cmp(&cb.name))
    });
    let mut rank = vec![0usize; input.campaigns.len()];
    for (position, &ci) in order.iter().enumerate() {
        rank[ci] = position;
    }
    (order, rank)
}

/// What row `ri` of campaign `ci`'s audience comes to: skipped (nothing due, or a
/// repeated row), decided (purchased, lower priority), held out or treated, with its
/// count of recent messages and its tie-break hash. A decision records the step's first
/// channel; a held-out candidate's decision waits for the call places ([`holdout`]).
#[allow(clippy::too_many_arguments)] // one audience row and what it is checked against
fn classify<'a>(
    input: &'a PlanInput<'a>,
    index: &CustomerIndex<'_>,
    hasher: &IdBuildHasher,
    ci: usize,
    ri: usize,
    row: &'a AudienceRow,
) -> Pre<'a> {
    let campaign = &input.campaigns[ci];
    let Some(slot) = index.get(&row.customer_id) else {
        return Pre::Skip; // every audience row is indexed
    };
    let (oc, ori) = slot.owner;
    if oc == ci && ori != ri {
        return Pre::Skip; // a repeated row
    }
    let owned = oc == ci;
    let past = index.rows(slot);
    let last = || input.last_purchase.get(&row.customer_id).copied();
    let mut c = Candidate {
        campaign: ci,
        step: 0,
        number: 0,
        row,
        channel: "",
        medium: Medium::Email,
        recent_sent: 0,
        tie: 0,
        calls: true,
    };
    let decided = |c: &Candidate<'_>, state: SendState, reason: &str| {
        Pre::Decided(Box::new(decision(input, c, state, reason, None)))
    };
    let purchased = match next_step(campaign, row.entry_date, past, input.as_of, last) {
        Next::Nothing => return Pre::Skip,
        Next::Purchased(at) => {
            (c.step, c.number) = (at.index, at.number);
            true
        }
        Next::Due(at) => {
            (c.step, c.number) = (at.index, at.number);
            false
        }
    };
    let step = &campaign.steps[c.step];
    (c.channel, c.medium) = first(input, step, row);
    if purchased {
        return decided(&c, SendState::Suppressed, "purchased");
    }
    if !owned {
        return decided(&c, SendState::Suppressed, "lower_priority");
    }
    // Messages in the frequency window, all campaigns, except this sequence entry's
    // own earlier steps.
    let cap = input.frequency_cap;
    c.recent_sent = past
        .filter(|r| {
            counts_as_sent(r.state)
                && cap.in_window(r.as_of, input.as_of)
                && !(r.entry_date == row.entry_date && r.campaign == campaign.name)
        })
        .count() as u32;
    c.tie = hasher.hash_one(row.customer_id.as_str());
    if in_holdout(&campaign.name, &row.customer_id, campaign.holdout_share) {
        return Pre::Held(c);
    }
    Pre::Treated(c)
}

/// A held-out candidate's decision: the same rules as the treated arm, recorded, never
/// acted on: results compare the customers who would have been messaged in both arms.
/// The budget is simulated once the treated arm is cut (rules::holdout_budget), the call
/// places too ([`limit_calls`]); the daily cap, which depends on the order of the whole
/// night's sends, is not.
fn holdout(input: &PlanInput<'_>, unsubscribes: &UnsubscribeIndex, c: &Candidate<'_>) -> Decision {
    let mut c = *c;
    let step = &input.campaigns[c.campaign].steps[c.step];
    let contact = input.contacts.get(&c.row.customer_id);
    let would_be = match choose(input, step, c.row, contact, unsubscribes, c.calls) {
        Ok(chosen) => {
            (c.channel, c.medium) = (chosen.channel, chosen.medium);
            deferral(input, &c, contact)
        }
        Err(refused) => Some(refused.reason),
    };
    let mut d = decision(input, &c, SendState::Holdout, "holdout", None);
    d.would_be_suppressed = would_be.map(str::to_string);
    d
}
