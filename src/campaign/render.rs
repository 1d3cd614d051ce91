//! Rule 7 of planning: every planned message rendered once from its step's templates, on
//! all cores; a template that fails for one recipient suppresses that message only.

use sha2::{Digest, Sha256};

use super::decision::{Decision, Planned, decision};
use super::draft::Draft;
use super::par::par_map;
use super::plan_input::PlanInput;
use crate::message::{Message, SendState};

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
        None => derived_token(input.token_secret, &c.row.customer_id),
    };
    let message = Message {
        campaign: campaign.name.clone(),
        step: step.number,
        customer_id: c.row.customer_id.clone(),
        channel: step.channel.clone(),
        medium: step.medium,
        to: p.address.to_string(),
        idempotency_key: c.idempotency_key(input),
        as_of: input.as_of,
        entry_date: c.row.entry_date,
        subject: None,
        html: None,
        text: String::new(),
        unsubscribe_url: None,
        unsubscribe_mailto: None,
        cost: input
            .channels
            .get(&step.channel)
            .map_or(0.0, |r| r.cost_per_message),
        // Delivery checks the channel's quiet hours again in this zone, batch by batch.
        timezone: Some(
            input
                .contacts
                .get(&c.row.customer_id)
                .and_then(|ct| ct.timezone)
                .unwrap_or(input.timezone),
        ),
        send_at: None,
    };
    Draft::new(
        message,
        c.row.fields.clone(),
        c.row.value,
        token,
        std::sync::Arc::clone(&step.templates),
    )
}
