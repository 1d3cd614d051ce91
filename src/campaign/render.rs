//! Rule 7 of planning: every planned message rendered once from its step's templates, on
//! all cores; a template that fails for one recipient suppresses that message only.

use super::decision::{Decision, Planned, decision};
use super::draft::Draft;
use super::par::par_map;
use super::plan_input::PlanInput;
use crate::message::{Message, SendState};

/// Check every planned message by rendering it (on all cores); the text is dropped and
/// rendered again at send time ([`Draft`]). A failure becomes a `render_error` decision
/// whose detail names the template part (never the recipient).
pub(super) fn render_all(
    input: &PlanInput<'_>,
    planned: Vec<Planned<'_>>,
    decisions: &mut Vec<Decision>,
) -> Vec<Draft> {
    let drafts = par_map(&planned, |p| draft(input, p));
    let failed = par_map(&drafts, |d| d.parts().err());
    let mut send = Vec::with_capacity(planned.len());
    for ((p, draft), failure) in planned.iter().zip(drafts).zip(failed) {
        match failure {
            None => send.push(draft),
            Some(e) => {
                let mut d = decision(
                    input,
                    &p.candidate,
                    SendState::Suppressed,
                    "render_error",
                    Some(p.address),
                );
                d.detail = Some(e.to_string());
                decisions.push(d);
            }
        }
    }
    send
}

fn draft(input: &PlanInput<'_>, p: &Planned<'_>) -> Draft {
    let c = &p.candidate;
    let campaign = &input.campaigns[c.campaign];
    let step = &campaign.steps[c.step];
    let token = match p.token {
        Some(t) => t.to_string(),
        None => input
            .tokens
            .issue(&c.row.customer_id, c.medium, &campaign.name),
    };
    let contact = input.contacts.get(&c.row.customer_id);
    let owner = (c.medium == crate::message::Medium::Call)
        .then(|| {
            super::owner::call_owner(
                &c.row.customer_id,
                contact.and_then(|ct| ct.owner.as_deref()),
                input.staff,
            )
        })
        .flatten()
        .map(str::to_string);
    let survey_token = input
        .tokens
        .issue_survey(&c.row.customer_id, c.medium, &campaign.name);
    let message = Message {
        campaign: campaign.name.clone(),
        step: c.number,
        customer_id: c.row.customer_id.clone(),
        channel: c.channel.to_string(),
        to: p.address.to_string(),
        idempotency_key: c.idempotency_key(input),
        cost: c.cost(input),
        // Delivery checks the channel's quiet hours again in this zone, batch by batch.
        timezone: Some(contact.and_then(|ct| ct.timezone).unwrap_or(input.timezone)),
        owner,
        ..Message::unrendered(c.medium, input.as_of, c.row.entry_date)
    };
    // The chosen channel's medium has templates: a listed channel's are checked when the
    // pipeline is loaded, and a preferred channel without them is never chosen.
    let templates = step
        .templates_for(c.medium)
        .or_else(|| step.templates.values().next())
        .expect("a resolved step has templates");
    Draft::new(
        message,
        c.row.fields.clone(),
        c.row.value,
        (token, survey_token),
        std::sync::Arc::clone(templates),
    )
}
