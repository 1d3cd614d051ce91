//! Campaign planning: from audience rows to the messages to send tonight and a recorded
//! decision for everyone who is not sent (holdout, suppressed, deferred). Pure: no I/O
//! besides reading template files while the configuration is resolved.

pub mod address;
mod channel_choice;
pub mod config;
pub mod costs_table;
pub mod decision;
pub mod draft;
pub mod fields;
pub mod holdout;
pub mod id_hash;
mod par;
pub mod plan;
pub mod plan_input;
mod render;
mod repeats;
mod rules;
mod select;
pub mod sequence;
pub mod sms;
pub mod step;
pub mod summary;
pub mod suppress;
pub mod template;
pub mod test_send;
pub mod timezone;

pub use crate::channel_rules::{ChannelRules, QuietHours};
pub use config::{Campaign, CampaignConfigError, CampaignContext, RawCampaign, resolve_campaigns};
pub use draft::Draft;
pub use fields::Fields;
pub use id_hash::{IdMap, IdSet};
pub use plan::{AudienceRow, Decision, Plan, PlanError, PlanInput, plan};
pub use suppress::{Contact, FrequencyCap, Unsubscribe, suppression_reason};
