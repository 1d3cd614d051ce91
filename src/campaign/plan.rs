//! The nightly campaign planner: who gets which message tonight, and a recorded reason
//! for everyone who does not. Pure and deterministic: the same inputs give the same plan.
//!
//! Rules, in this order:
//! 1. **Sequence** ([`sequence::next_step`]): a customer enters a campaign once per lapse
//!    (entry date = the lapse's alert date) when the ledger has no row of that campaign
//!    for that (customer, entry date); step 1 is due when `as_of >= entry + day`, so a
//!    missed night still sends it. Step k > 1 is due when `as_of >= entry + day`, step
//!    k-1 of the same entry ended `delivered` (or `holdout`), and at least the configured
//!    gap (day k - day k-1) has passed since step k-1's `as_of`, so a late entry keeps
//!    its spacing instead of sending one step per night. A step in the ledger as
//!    `delivered`, `rejected`, `holdout`, `unknown` (unless `on_unknown = "resend"`),
//!    `suppressed` or `in_flight` is not planned again; `planned`, `deferred` and
//!    `failed` are. With `only_if_no_purchase`, a purchase on or after the previous
//!    step's `as_of` ends the sequence: a `Suppressed` decision with reason `purchased`
//!    is recorded (for both arms), so the ledger shows why the sequence stopped.
//!    Customers no longer in the audience are not planned at all. A campaign with
//!    `repeat_every_days = N` keeps in touch: after its last step, the last step is sent
//!    again every N days (step numbers last + 1, last + 2, ..., each its own ledger row
//!    and idempotency key; `sequence::position`), by the same rules, while the customer
//!    stays in the audience and has not bought since the previous one.
//! 2. **Priority**: a customer in several campaigns' audiences tonight belongs to the
//!    highest `priority` (ties: campaign name); a step due in another campaign is
//!    `Suppressed` with reason `lower_priority` (and, being final, ends that entry).
//! 3. **Holdout** ([`holdout::in_holdout`]), before any suppression: a due step of a
//!    holdout customer is a `Holdout` decision and never a message; it records the
//!    channel the customer would have been sent on (rule 4's choice), else the first,
//!    and `would_be_suppressed`: the first of rules 4 and 5 (channel and suppression, the
//!    frequency cap, quiet hours) that would have stopped the message, so results
//!    compare like with like. The budget is simulated once the treated arm is cut (see
//!    rule 6); the daily cap is not.
//! 4. **Channel and suppression** of the treated arm (`channel_choice.rs`): a step lists
//!    its channels in order of preference (`channel = ["email", "sms"]`), or starts from
//!    the audience's `preferred_channel` when it names a configured channel whose medium
//!    the step has templates for (`channel = "preferred"`, then `fallback`). The first
//!    channel on which the customer passes every check is used; when none does, the
//!    step is `Suppressed` with the first channel's reason, first match: `no_consent`
//!    (null or no customers row is no consent), `unsubscribed` (customer or address,
//!    that medium or all), `missing_address`, `invalid_address`. Decisions made before
//!    the contact is read (`purchased`, `lower_priority`) record the first channel.
//! 5. **Deferred** (a later run plans it again and sends it): `frequency_cap` (ledger
//!    rows `delivered`, `unknown`, `in_flight` or `planned` whose `as_of` is within the
//!    last `days` days, across all campaigns; the earlier steps of the same sequence
//!    entry do not count, or a day-3 step could never follow a day-0 one; tonight's plan
//!    adds nothing to the count: after priority a customer has one campaign, and an
//!    entry one due step, so a customer is a candidate at most once per plan; being
//!    deferred, the step goes out on the first night the window has room and the later
//!    steps keep their gap after it), `quiet_hours` (the chosen channel's window in the
//!    customer's timezone, else the pipeline's, at the injected `now`) and `daily_cap`
//!    (ledger rows of the channel with `sent_at` on `now`'s UTC day, plus tonight's plan).
//!    Candidates are taken in priority order, then by value (highest first), then
//!    customer id, so a cap keeps the most valuable.
//! 6. **Budget**: per campaign, the planned sends are kept from the highest value down
//!    while their summed cost fits the budget (its own `budget` and its share of
//!    `[budget]`, then what `reallocate` moves); the rest are `Suppressed` with reason
//!    `budget`. In a campaign the budget cut, a holdout customer whose value is below the
//!    lowest value kept gets `would_be_suppressed = "budget"`.
//! 7. **Render**: the chosen medium's templates (an e-mail's subject, text and html; an
//!    SMS's `text`, or `sms_text` on a step with e-mail too) are rendered per message, on
//!    the chosen channel (the ledger's `channel` and the idempotency key); a render
//!    failure is `Suppressed` with reason `render_error` (its detail names the template
//!    part, never the address).

use super::draft::Draft;
use super::render::render_all;
use super::rules::{apply_budget, apply_rules};
use super::select::select;
use super::suppress::UnsubscribeIndex;

pub use super::decision::Decision;
pub use super::plan_input::{AudienceRow, PlanInput};
pub use super::summary::{ChannelCounts, PlanSummary};

/// The outcome of planning: messages to send, and decisions for the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Rendered at send time ([`Draft::render`]).
    pub send: Vec<Draft>,
    pub decisions: Vec<Decision>,
    pub summary: PlanSummary,
}

/// Planning cannot start: the configuration and the channel table disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("campaign {campaign} step {step}: channel {channel:?} is not configured")]
    UnknownChannel {
        campaign: String,
        step: u32,
        channel: String,
    },
}

impl crate::error::Blamed for PlanError {
    /// Campaigns are checked against the channels when the pipeline is loaded: a step
    /// naming an unknown channel at planning time is winback's own fault.
    fn blame(&self) -> crate::error::Blame {
        crate::error::Blame::Internal
    }
}

/// Plan tonight's messages. See the module documentation for the rules.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, PlanError> {
    for campaign in input.campaigns {
        for step in &campaign.steps {
            for channel in &step.channels {
                if !input.channels.contains_key(&channel.name) {
                    return Err(PlanError::UnknownChannel {
                        campaign: campaign.name.clone(),
                        step: step.number,
                        channel: channel.name.clone(),
                    });
                }
            }
        }
    }
    let unsubscribes = UnsubscribeIndex::new(input.unsubscribes);
    let mut decisions = Vec::new();
    let candidates = select(input, &unsubscribes, &mut decisions);
    let planned = apply_rules(input, &unsubscribes, candidates, &mut decisions);
    let (planned, spend) = apply_budget(input, planned, &mut decisions);
    let send = render_all(input, planned, &mut decisions);
    let summary = PlanSummary::new(input, &send, &decisions, &spend);
    Ok(Plan {
        send,
        decisions,
        summary,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
