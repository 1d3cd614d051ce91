//! Which of a step's channels reaches a customer: the first, in the step's order of
//! preference (the customer's own `preferred_channel` first when the step says
//! `"preferred"`), that the customer has consented to, is not unsubscribed from, and has
//! a valid address for. The right medium for each customer, not one for all.

use super::plan_input::{AudienceRow, PlanInput};
use super::step::{PREFERRED_CHANNEL_COLUMN, Step};
use super::suppress::{Contact, UnsubscribeIndex, check_contact};
use crate::message::Medium;

const NO_CONSENT: &str = "no_consent";

/// The channel a message goes out on, and the address it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chosen<'a> {
    pub channel: &'a str,
    pub medium: Medium,
    pub address: &'a str,
}

/// No channel qualifies: the channel whose refusal is reported ([`choose`]), and why (`no_consent`,
/// `unsubscribed`, `missing_address`, `invalid_address`), with the address considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused<'a> {
    pub channel: &'a str,
    pub medium: Medium,
    pub reason: &'static str,
    pub address: Option<&'a str>,
}

/// The channels to try for one audience row, in order, each once: with `preferred`,
/// the row's `preferred_channel` when it names a configured channel whose medium the
/// step has templates for (else it is skipped); then the step's list. Without `calls`
/// (the campaign's `call_top` places are taken), channels of medium call are skipped.
pub(super) fn options<'a>(
    input: &PlanInput<'a>,
    step: &'a Step,
    row: &AudienceRow,
    calls: bool,
) -> impl Iterator<Item = (&'a str, Medium)> {
    let channels = input.channels;
    let preferred = step
        .preferred
        .then(|| row.fields.text(PREFERRED_CHANNEL_COLUMN))
        .flatten()
        .and_then(|name| channels.get_key_value(name.trim()))
        .map(|(name, rules)| (name.as_str(), rules.medium))
        .filter(|(_, medium)| step.templates_for(*medium).is_some());
    let listed = step
        .channels
        .iter()
        .map(|c| (c.name.as_str(), c.medium))
        .filter(move |(name, _)| preferred.is_none_or(|(p, _)| p != *name));
    preferred
        .into_iter()
        .chain(listed)
        .filter(move |(_, medium)| calls || *medium != Medium::Call)
}

/// The first channel to try: what a decision made before the contact is read records.
pub(super) fn first<'a>(
    input: &PlanInput<'a>,
    step: &'a Step,
    row: &AudienceRow,
) -> (&'a str, Medium) {
    options(input, step, row, true)
        .next()
        .unwrap_or(("", Medium::Email)) // a resolved step lists at least one channel
}

/// The first channel of the step that qualifies for this customer, or why none does:
/// the first refusal other than `no_consent` when there is one, else the first.
pub(super) fn choose<'a>(
    input: &PlanInput<'a>,
    step: &'a Step,
    row: &AudienceRow,
    contact: Option<&'a Contact>,
    unsubscribes: &UnsubscribeIndex,
    calls: bool,
) -> Result<Chosen<'a>, Refused<'a>> {
    let mut refused: Option<Refused<'a>> = None;
    for (channel, medium) in options(input, step, row, calls) {
        match check_contact(&row.customer_id, contact, medium, unsubscribes) {
            Ok(address) => {
                return Ok(Chosen {
                    channel,
                    medium,
                    address,
                });
            }
            // The reason that says most: a channel the customer consented to and that
            // failed (unsubscribed, a hard bounce, a bad address) over one they never
            // accepted, which is every SMS-only customer's e-mail.
            Err((reason, address))
                if refused.is_none_or(|r| r.reason == NO_CONSENT && reason != NO_CONSENT) =>
            {
                refused = Some(Refused {
                    channel,
                    medium,
                    reason,
                    address,
                });
            }
            Err(_) => {}
        }
    }
    let (channel, medium) = first(input, step, row);
    Err(refused.unwrap_or(Refused {
        channel,
        medium,
        reason: NO_CONSENT,
        address: None,
    }))
}
