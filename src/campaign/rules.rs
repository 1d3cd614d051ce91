//! Rules 4-6 of planning: suppression and deferral of the treated arm, then the budget.

use std::collections::BTreeMap;

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
    let address = match choose(input, step, c.row, contact, unsubscribes, c.calls) {
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

/// Per campaign with a budget (its own `budget`, and its share of `[budget]`): keep sends
/// from the highest value down while the summed cost fits; cut the rest. With `[budget]
/// reallocate = true`, what the campaigns left of `total_per_run` is then offered to the
/// campaigns the split cut, highest priority first, each still within its own `budget`.
/// Candidates arrive sorted by value within each campaign. Returns the sends kept and what
/// each campaign spent.
pub(super) fn apply_budget<'a>(
    input: &PlanInput<'_>,
    planned: Vec<Planned<'a>>,
    decisions: &mut Vec<Decision>,
) -> (Vec<Planned<'a>>, IdMap<usize, Spend>) {
    let limit = |ci: usize| budget_limit(input, ci);
    let mut spend: IdMap<usize, Spend> = IdMap::default();
    let mut cut: IdMap<usize, Vec<Planned<'a>>> = IdMap::default();
    let mut kept = Vec::with_capacity(planned.len());
    for p in planned {
        let ci = p.candidate.campaign;
        let Some(limit) = limit(ci) else {
            spend.entry(ci).or_default().spent += p.candidate.cost(input);
            kept.push(p);
            continue;
        };
        let cost = p.candidate.cost(input);
        let s = spend.entry(ci).or_default();
        let over = cut.entry(ci).or_default();
        if over.is_empty() && s.spent + cost <= limit + 1e-9 {
            s.spent += cost;
            kept.push(p);
        } else {
            over.push(p);
        }
    }
    if let Some(split) = input.budget.filter(|b| b.reallocate) {
        // Summed in campaign order: the same total whatever the map's order.
        let mut by_campaign: Vec<(usize, f64)> = spend.iter().map(|(c, s)| (*c, s.spent)).collect();
        by_campaign.sort_by_key(|c| c.0);
        let spent: f64 = by_campaign.iter().map(|c| c.1).sum();
        let mut pool = (split.total_per_run - spent).max(0.0);
        let mut order: Vec<usize> = cut
            .keys()
            .copied()
            .filter(|ci| !cut[ci].is_empty())
            .collect();
        order.sort_by_key(|ci| (std::cmp::Reverse(input.campaigns[*ci].priority), *ci));
        for ci in order {
            let own = input.campaigns[ci].budget.unwrap_or(f64::INFINITY);
            let waiting = std::mem::take(cut.get_mut(&ci).expect("listed"));
            let s = spend.entry(ci).or_default();
            let mut rest = waiting.into_iter();
            while let Some(p) = rest.next() {
                let cost = p.candidate.cost(input);
                if cost <= pool + 1e-9 && s.spent + cost <= own + 1e-9 {
                    pool -= cost;
                    s.spent += cost;
                    s.reallocated += cost;
                    kept.push(p);
                } else {
                    let mut left = vec![p];
                    left.extend(rest);
                    cut.insert(ci, left);
                    break;
                }
            }
        }
    }
    let mut cut: Vec<(usize, Vec<Planned<'a>>)> = cut.into_iter().collect();
    cut.sort_by_key(|c| c.0);
    holdout_budget(input, &kept, &cut, decisions);
    for p in cut.into_iter().flat_map(|c| c.1) {
        decisions.push(decision(
            input,
            &p.candidate,
            SendState::Suppressed,
            "budget",
            Some(p.address),
        ));
    }
    (kept, spend)
}

/// The budget, simulated for the holdout: in a campaign the budget cut, a holdout customer
/// whose value is below the lowest value the budget kept would have been cut too, so their
/// holdout decision records `would_be_suppressed = "budget"` (unless an earlier rule
/// already stopped them) and results leave them out of the like-with-like comparison, as
/// the treated customers the budget cut are.
fn holdout_budget(
    input: &PlanInput<'_>,
    kept: &[Planned<'_>],
    cut: &[(usize, Vec<Planned<'_>>)],
    decisions: &mut [Decision],
) {
    let mut lowest: BTreeMap<&str, f64> = BTreeMap::new();
    for (ci, left) in cut {
        if !left.is_empty() {
            lowest.insert(&input.campaigns[*ci].name, f64::INFINITY);
        }
    }
    for p in kept {
        let name = input.campaigns[p.candidate.campaign].name.as_str();
        if let Some(v) = lowest.get_mut(name) {
            *v = v.min(p.candidate.row.value);
        }
    }
    for d in decisions.iter_mut() {
        if d.state == SendState::Holdout
            && d.would_be_suppressed.is_none()
            && lowest
                .get(d.campaign.as_str())
                .is_some_and(|v| d.value < *v)
        {
            d.would_be_suppressed = Some("budget".to_string());
        }
    }
}

/// The most campaign `ci` may spend tonight before reallocation: its own `budget` and its
/// share of `[budget]`, whichever is smaller; None when it has neither.
pub(super) fn budget_limit(input: &PlanInput<'_>, ci: usize) -> Option<f64> {
    let campaign = &input.campaigns[ci];
    let share = input.budget.map(|b| b.limit(&campaign.name));
    match (campaign.budget, share) {
        (Some(own), Some(share)) => Some(own.min(share)),
        (own, share) => own.or(share),
    }
}

/// What a campaign spent tonight (messages and offers), and how much of it came from
/// other campaigns' unused shares.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    pub spent: f64,
    pub reallocated: f64,
}
