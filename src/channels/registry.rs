//! `[channels.NAME]` tables: the closed, internally tagged set of providers, registered in
//! this one list. Each provider's folder holds its config (with a pure `validate`), its
//! requests, the reading of its answers and its look-up; this file only dispatches.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::outcome::ChannelError;
use super::settings::ChannelSettings;
use super::{file, mailgun, sendgrid, twilio, webhook};

/// Every channel `type`, in the order of [`ChannelConfig`]'s variants.
pub const TYPES: &[&str] = &["file", "sendgrid", "mailgun", "twilio", "webhook"];

/// One `[channels.NAME]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChannelConfig {
    File(file::FileConfig),
    Sendgrid(sendgrid::SendgridConfig),
    Mailgun(mailgun::MailgunConfig),
    Twilio(twilio::TwilioConfig),
    Webhook(webhook::WebhookConfig),
}

/// What building a channel needs besides its table.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Root of the file outbox, e.g. `<output>/_outbox/as_of=<D>/`.
    pub outbox: PathBuf,
}

impl ChannelConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelConfig::File(_) => TYPES[0],
            ChannelConfig::Sendgrid(_) => TYPES[1],
            ChannelConfig::Mailgun(_) => TYPES[2],
            ChannelConfig::Twilio(_) => TYPES[3],
            ChannelConfig::Webhook(_) => TYPES[4],
        }
    }

    /// Names of the environment variables holding this channel's secrets.
    pub fn secret_env_names(&self) -> Vec<&str> {
        match self {
            ChannelConfig::File(_) => vec![],
            ChannelConfig::Sendgrid(c) => c.secret_env_names(),
            ChannelConfig::Mailgun(c) => c.secret_env_names(),
            ChannelConfig::Twilio(c) => c.secret_env_names(),
            ChannelConfig::Webhook(c) => c.secret_env_names(),
        }
    }

    /// Checks everything that can be checked without I/O and resolves the shared settings.
    pub fn validate(&self, name: &str) -> Result<ChannelSettings, ChannelError> {
        match self {
            ChannelConfig::File(c) => c.validate(name),
            ChannelConfig::Sendgrid(c) => c.validate(name),
            ChannelConfig::Mailgun(c) => c.validate(name),
            ChannelConfig::Twilio(c) => c.validate(name),
            ChannelConfig::Webhook(c) => c.validate(name),
        }
    }

    /// Whether every request of the channel goes to the provider's sandbox (`sandbox =
    /// true`, SendGrid and Mailgun): accepted, never delivered.
    pub fn sandbox(&self) -> bool {
        match self {
            ChannelConfig::Sendgrid(c) => c.sandbox == Some(true),
            ChannelConfig::Mailgun(c) => c.sandbox == Some(true),
            _ => false,
        }
    }

    /// Validates, reads the secrets through `env` and builds the live channel.
    pub fn build(
        &self,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
        ctx: &BuildContext,
    ) -> Result<Arc<dyn Channel>, ChannelError> {
        let settings = self.validate(name)?;
        if self.sandbox() {
            tracing::warn!(channel = %name, "sandbox = true: the provider accepts this channel's messages and delivers none");
        }
        Ok(match self {
            ChannelConfig::File(_) => {
                Arc::new(file::FileChannel::new(settings, ctx.outbox.clone()))
            }
            ChannelConfig::Sendgrid(c) => Arc::new(sendgrid::build(settings, c, env)?),
            ChannelConfig::Mailgun(c) => Arc::new(mailgun::build(settings, c, env)?),
            ChannelConfig::Twilio(c) => Arc::new(twilio::build(settings, c, env)?),
            ChannelConfig::Webhook(c) => Arc::new(webhook::build(settings, c, env)?),
        })
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
