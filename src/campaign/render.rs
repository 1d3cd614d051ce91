//! Rule 7 of planning: every planned message rendered from its step's templates, on all
//! cores; a template that fails for one recipient suppresses that message only.

use sha2::{Digest, Sha256};

use super::holdout::idempotency_key;
use super::message::{Message, SendState};
use super::par::par_map;
use super::plan::{Decision, PlanInput, Planned, decision};
use super::template::{RenderInput, TemplateError};

/// The unsubscribe token of a customer without one in `customers`: hex of the first 16
/// bytes of SHA-256(secret, customer id). Keep the secret secret, or anyone who knows a
/// customer id can unsubscribe them.
pub fn derived_token(secret: &str, customer_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(secret.as_bytes());
    hasher.update([0u8]);
    hasher.update(customer_id.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// Render every planned message; a failure becomes a `render_error` decision whose
/// detail names the template part (never the recipient).
pub(super) fn render_all(
    input: &PlanInput<'_>,
    planned: Vec<Planned<'_>>,
    decisions: &mut Vec<Decision>,
) -> Vec<Message> {
    let rendered = par_map(&planned, |p| render_one(input, p));
    let mut send = Vec::with_capacity(planned.len());
    for (p, result) in planned.iter().zip(rendered) {
        match result {
            Ok(m) => send.push(m),
            Err(e) => {
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

fn render_one(input: &PlanInput<'_>, p: &Planned<'_>) -> Result<Message, TemplateError> {
    let c = &p.candidate;
    let campaign = &input.campaigns[c.campaign];
    let step = &campaign.steps[c.step];
    let derived;
    let token = match p.token {
        Some(t) => t,
        None => {
            derived = derived_token(input.token_secret, &c.row.customer_id);
            derived.as_str()
        }
    };
    let entry = c.row.entry_date.to_string();
    let r = step.templates.render(&RenderInput {
        fields: &c.row.fields,
        customer_id: &c.row.customer_id,
        campaign: &campaign.name,
        step: step.number,
        entry_date: &entry,
        unsubscribe_token: token,
    })?;
    Ok(Message {
        campaign: campaign.name.clone(),
        step: step.number,
        customer_id: c.row.customer_id.clone(),
        channel: step.channel.clone(),
        medium: step.medium,
        to: p.address.to_string(),
        idempotency_key: idempotency_key(
            &campaign.name,
            step.number,
            &c.row.customer_id,
            &step.channel,
            c.row.entry_date,
        ),
        as_of: input.as_of,
        entry_date: c.row.entry_date,
        subject: r.subject,
        html: r.html,
        text: r.text,
        unsubscribe_url: r.unsubscribe_url,
        unsubscribe_mailto: r.unsubscribe_mailto,
        cost: input
            .channels
            .get(&step.channel)
            .map_or(0.0, |r| r.cost_per_message),
    })
}
