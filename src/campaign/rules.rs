//! Rules 4-6 of planning: suppression and deferral of the treated arm, then the budget.

use super::channel_choice::choose;
use super::decision::{Candidate, Decision, Planned, decision};
use super::id_hash::IdMap;
use super::par::par_map;
use super::plan_input::PlanInput;
use super::suppress::{Contact, UnsubscribeIndex, daily_counts, in_quiet_hours};
use crate::channel_rules::Defer;
use crate::message::SendState;

/// What the per-candidate rules (everything but the daily cap) say.
enum Verdict<'a> {
    Decided(Decision),
    Pass(Planned<'a>),
}

/// The channel (the first of the step's that qualifies, else suppressed: consent,
/// unsubscribes, addresses) and deferral (frequency cap, quiet hours, daily cap), in rule
/// order. Candidates arrive in priority and value order, which decides who gets the
/// daily cap's places.
pub(super) fn apply_rules<'a>(
    input: &'a PlanInput<'a>,
    unsubscribes: &UnsubscribeIndex,
    candidates: Vec<Candidate<'a>>,
    decisions: &mut Vec<Decision>,
) -> Vec<Planned<'a>> {
    let verdicts = par_map(&candidates, |&c| verdict(input, unsubscribes, c));
    apply_daily_caps(input, verdicts, decisions)
}

/// The per-candidate rules: the channel that reaches the customer (consent,
/// unsubscribes, address), the frequency cap and the channel's quiet hours in the
/// customer's timezone.
fn verdict<'a>(
    input: &'a PlanInput<'a>,
    unsubscribes: &UnsubscribeIndex,
    mut c: Candidate<'a>,
) -> Verdict<'a> {
    let step = &input.campaigns[c.campaign].steps[c.step];
    let contact = input.contacts.get(c.row.customer_id.as_str());
    let address = match choose(input, step, c.row, contact, unsubscribes) {
        Ok(chosen) => {
            (c.channel, c.medium) = (chosen.channel, chosen.medium);
            chosen.address
        }
        Err(refused) => {
            (c.channel, c.medium) = (refused.channel, refused.medium);
            let d = decision(
                input,
                &c,
                SendState::Suppressed,
                refused.reason,
                refused.address,
            );
            return Verdict::Decided(d);
        }
    };
    if let Some(reason) = deferral(input, &c, contact) {
        let d = decision(input, &c, SendState::Deferred, reason, Some(address));
        return Verdict::Decided(d);
    }
    Verdict::Pass(Planned {
        candidate: c,
        address,
        token: contact.and_then(|ct| ct.unsubscribe_token.as_deref()),
    })
}

/// Why a candidate on its chosen channel waits for a later night, if it does: the frequency
/// cap, then the channel's quiet hours in the customer's timezone. Deferred, not
/// suppressed: the step is planned again each night and goes out once the window has
/// room. Tonight's plan adds nothing to the count: after priority a customer has one
/// campaign, and a sequence entry one due step, so a customer is a candidate once. The
/// holdout is checked by the same function ([`super::select`]).
pub(super) fn deferral(
    input: &PlanInput<'_>,
    c: &Candidate<'_>,
    contact: Option<&Contact>,
) -> Option<&'static str> {
    if c.recent_sent >= input.frequency_cap.max_messages {
        return Some("frequency_cap");
    }
    let tz = contact.and_then(|ct| ct.timezone).unwrap_or(input.timezone);
    // A channel with `defer = "schedule"` sends in quiet hours for delivery at the window's
    // opening: delivery decides, batch by batch.
    let quiet = input
        .channels
        .get(c.channel)
        .is_some_and(|rules| rules.defer == Defer::NextRun && in_quiet_hours(rules, input.now, tz));
    quiet.then_some("quiet_hours")
}

/// The channels' daily caps, in candidate order on top of what the ledger already sent
/// today: a send over its channel's cap is deferred; the decided verdicts go to
/// `decisions`.
fn apply_daily_caps<'a>(
    input: &'a PlanInput<'a>,
    verdicts: Vec<Verdict<'a>>,
    decisions: &mut Vec<Decision>,
) -> Vec<Planned<'a>> {
    let mut daily = daily_counts(input.ledger, input.now);
    let mut planned = Vec::with_capacity(verdicts.len());
    for v in verdicts {
        let p = match v {
            Verdict::Decided(d) => {
                decisions.push(d);
                continue;
            }
            Verdict::Pass(p) => p,
        };
        let channel = p.candidate.channel;
        let limit = input.channels.get(channel).and_then(|r| r.daily_cap);
        let used = daily.entry(channel).or_default();
        if limit.is_some_and(|limit| *used >= limit) {
            let d = decision(
                input,
                &p.candidate,
                SendState::Deferred,
                "daily_cap",
                Some(p.address),
            );
            decisions.push(d);
            continue;
        }
        *used += 1;
        planned.push(p);
    }
    planned
}

/// Per campaign with a budget: keep sends from the highest value down while the summed
/// cost fits; cut the rest. Candidates arrive sorted by value within each campaign.
pub(super) fn apply_budget<'a>(
    input: &PlanInput<'_>,
    planned: Vec<Planned<'a>>,
    decisions: &mut Vec<Decision>,
) -> Vec<Planned<'a>> {
    let mut spent: IdMap<usize, f64> = IdMap::default();
    let mut over: IdMap<usize, bool> = IdMap::default();
    let mut kept = Vec::with_capacity(planned.len());
    for p in planned {
        let ci = p.candidate.campaign;
        let campaign = &input.campaigns[ci];
        let Some(budget) = campaign.budget else {
            kept.push(p);
            continue;
        };
        let cost = p.candidate.cost(input);
        let total = spent.entry(ci).or_default();
        let cut = over.entry(ci).or_default();
        if !*cut && *total + cost <= budget + 1e-9 {
            *total += cost;
            kept.push(p);
        } else {
            *cut = true;
            decisions.push(decision(
                input,
                &p.candidate,
                SendState::Suppressed,
                "budget",
                Some(p.address),
            ));
        }
    }
    kept
}
