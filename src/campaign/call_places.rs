//! `call_top`: a team makes only so many calls a night. Of a campaign's customers due
//! tonight whom a call would reach (a step listing a call channel, and the call channel
//! the first that qualifies: consent, not unsubscribed, a valid phone), the `call_top`
//! highest-value ones (ties: the id's hash, then the id) get a call; the others go on to
//! the step's next channel, as if the call channel were not listed. Places are given
//! across both arms before the holdout is set aside, so a held-out customer is recorded
//! as "would have been called" exactly when a treated one of the same value would have
//! been called. A place is taken before the frequency cap and the budget: a customer
//! deferred or cut tonight leaves their place unused.
//!
//! A rerun of the same night (after a crash, or a partial run) counts the places its
//! earlier attempts already used: the calls of tonight whose ledger rows are settled
//! (delivered, held out, in flight, unknown, rejected) are no longer candidates, and the
//! places left go to the same customers as before, so a customer planned for e-mail
//! beyond `call_top` is not called instead on the rerun (which would leave their e-mail
//! row planned and the night over its `call_top`).

use super::channel_choice::choose;
use super::decision::Candidate;
use super::plan_input::PlanInput;
use super::suppress::UnsubscribeIndex;
use crate::message::{Medium, SendState};

/// Clears `calls` on the candidates (treated and held out) beyond their campaign's
/// `call_top`.
pub(super) fn limit_calls<'a>(
    input: &PlanInput<'_>,
    unsubscribes: &UnsubscribeIndex,
    treated: &mut [Candidate<'a>],
    held: &mut [Candidate<'a>],
) {
    if input.campaigns.iter().all(|c| c.call_top.is_none()) {
        return;
    }
    let mut used = vec![0usize; input.campaigns.len()];
    for r in input.ledger {
        if r.as_of == input.as_of
            && r.medium == Medium::Call
            && matches!(
                r.state,
                SendState::Delivered
                    | SendState::Holdout
                    | SendState::InFlight
                    | SendState::Unknown
                    | SendState::Rejected
            )
            && let Some(ci) = input.campaigns.iter().position(|c| c.name == r.campaign)
        {
            used[ci] += 1;
        }
    }
    let mut callable: Vec<Vec<&mut Candidate<'a>>> =
        (0..input.campaigns.len()).map(|_| Vec::new()).collect();
    for c in treated.iter_mut().chain(held.iter_mut()) {
        if input.campaigns[c.campaign].call_top.is_some() && would_call(input, unsubscribes, c) {
            callable[c.campaign].push(c);
        }
    }
    for (ci, mut list) in callable.into_iter().enumerate() {
        let Some(top) = input.campaigns[ci].call_top else {
            continue;
        };
        list.sort_unstable_by(|a, b| {
            b.row
                .value
                .total_cmp(&a.row.value)
                .then(a.tie.cmp(&b.tie))
                .then_with(|| a.row.customer_id.cmp(&b.row.customer_id))
        });
        let left = (top as usize).saturating_sub(used[ci]);
        for c in list.into_iter().skip(left) {
            c.calls = false;
        }
    }
}

/// Would this candidate be called, places aside?
fn would_call(input: &PlanInput<'_>, unsubscribes: &UnsubscribeIndex, c: &Candidate<'_>) -> bool {
    let step = &input.campaigns[c.campaign].steps[c.step];
    let lists_calls = step.preferred || step.channels.iter().any(|ch| ch.medium == Medium::Call);
    lists_calls
        && choose(
            input,
            step,
            c.row,
            input.contacts.get(c.row.customer_id.as_str()),
            unsubscribes,
            true,
        )
        .is_ok_and(|chosen| chosen.medium == Medium::Call)
}
