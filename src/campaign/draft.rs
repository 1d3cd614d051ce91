//! A planned message whose bodies are rendered when it is sent, not when it is planned.
//! A rendered e-mail is a few kilobytes: a million of them held from planning to
//! delivery would not fit a bounded process, while the row they are rendered from is
//! already in memory. Planning renders each draft once to find template failures
//! (`render_error`), then drops the text; delivery renders it again, batch by batch.
//! Rendering is deterministic, so both give the same message.

use std::sync::Arc;

use super::fields::Fields;
use super::template::{RenderInput, Rendered, StepTemplates, TemplateError};
use crate::message::Message;

/// A message with everything but its subject and bodies (`subject`, `html`, `text`,
/// `unsubscribe_url`, `unsubscribe_mailto` are empty until [`Draft::render`]).
#[derive(Debug, Clone)]
pub struct Draft {
    pub message: Message,
    /// The audience row it is rendered from (and the ledger's segment and treatment).
    pub fields: Fields,
    /// The campaign's value column for this recipient (ranks a budget cut; the ledger
    /// keeps it as the value predicted when the message was decided).
    pub value: f64,
    /// The recipient's unsubscribe token (theirs, or derived from the token secret).
    token: String,
    /// The recipient's survey token (derived from the token secret).
    survey_token: String,
    templates: Arc<StepTemplates>,
}

impl PartialEq for Draft {
    fn eq(&self, other: &Draft) -> bool {
        self.message == other.message
            && self.fields == other.fields
            && self.value.total_cmp(&other.value).is_eq()
            && self.token == other.token
            && self.survey_token == other.survey_token
            && Arc::ptr_eq(&self.templates, &other.templates)
    }
}

impl Draft {
    pub fn new(
        message: Message,
        fields: Fields,
        value: f64,
        tokens: (String, String),
        templates: Arc<StepTemplates>,
    ) -> Draft {
        let (token, survey_token) = tokens;
        Draft {
            message,
            fields,
            value,
            token,
            survey_token,
            templates,
        }
    }

    /// The subject and bodies (a template error names the part, never the recipient).
    pub fn parts(&self) -> Result<Rendered, TemplateError> {
        let m = &self.message;
        self.templates.render(&RenderInput {
            fields: &self.fields,
            customer_id: &m.customer_id,
            campaign: &m.campaign,
            step: m.step,
            entry_date: &m.entry_date.to_string(),
            unsubscribe_token: &self.token,
            survey_token: &self.survey_token,
        })
    }

    /// The message, rendered.
    pub fn render(self) -> Result<Message, TemplateError> {
        let parts = self.parts()?;
        Ok(self.with(parts))
    }

    /// The message with these parts (from [`Draft::parts`]).
    pub fn with(self, r: Rendered) -> Message {
        Message {
            subject: r.subject,
            html: r.html,
            text: r.text,
            unsubscribe_url: r.unsubscribe_url,
            unsubscribe_mailto: r.unsubscribe_mailto,
            evidence: r.evidence,
            ..self.message
        }
    }
}
