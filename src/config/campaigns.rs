//! `[campaigns.NAME]` and the frequency cap as written in the pipeline file: plain serde
//! types (unknown keys rejected). `crate::campaign` resolves them into validated campaigns
//! with compiled templates once the stages are known.

use serde::{Deserialize, Serialize};

/// One `[campaigns.NAME]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaign {
    /// The SQL stage (table) whose rows are this campaign's audience, one per customer.
    pub audience: String,
    /// Higher wins when a customer is in several campaigns' audiences on one night.
    #[serde(default)]
    pub priority: i64,
    pub holdout_share: Option<f64>,
    /// Most this campaign may spend per run (sum of its messages' cost).
    pub budget: Option<f64>,
    pub value_column: Option<String>,
    #[serde(default)]
    pub on_unknown: OnUnknown,
    pub description: Option<String>,
    /// At most this many calls per night (steps listing a channel of medium `call`), to
    /// the highest-value customers due; the others go on to the step's next channel.
    /// None: everyone the call channel qualifies for.
    pub call_top: Option<u32>,
    /// After the last step, send the last step again every this many days while the
    /// customer stays in the audience (keep in touch with the long lost); unset: the
    /// sequence ends with its last step.
    pub repeat_every_days: Option<u32>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

/// One `[[campaigns.NAME.steps]]` table as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Days after entry (the lapse's alert date) when this step is due.
    pub day: u32,
    /// One channel, several in order of preference, or `"preferred"` (the audience's
    /// `preferred_channel`, then `fallback`).
    pub channel: RawChannel,
    /// With `channel = "preferred"`: the channels to try, in order, when the customer's
    /// preferred channel is unset, unknown or does not qualify.
    pub fallback: Option<Vec<String>>,
    /// Default: true for steps after the first.
    pub only_if_no_purchase: Option<bool>,
    /// The expected cost of this step's offer per message sent (the discount's value times
    /// the share expected to redeem it); 0 without an offer. Added to the channel's
    /// `cost_per_message` in budgets, SLTV and ROI.
    pub offer_cost: Option<f64>,
    pub subject: Option<String>,
    pub subject_file: Option<String>,
    pub html: Option<String>,
    pub html_file: Option<String>,
    pub text: Option<String>,
    pub text_file: Option<String>,
    /// The SMS text of a step that may also go by e-mail (whose `text` is the e-mail's).
    pub sms_text: Option<String>,
    pub sms_text_file: Option<String>,
    pub unsubscribe_url: Option<String>,
    pub unsubscribe_mailto: Option<String>,
    /// A call's row on the call list (a step with a channel of medium `call`): why we
    /// call (`call_reason`), what points at it (`call_evidence`, optional), and what the
    /// caller offers (`call_remedy`). Templates, like the message parts.
    pub call_reason: Option<String>,
    pub call_evidence: Option<String>,
    pub call_remedy: Option<String>,
    /// The survey link's template (`{{ survey_token }}`), shown as `{{ survey_url }}`.
    pub survey_url: Option<String>,
}

/// A step's `channel` as written: `"email"` or `["email", "sms"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawChannel {
    One(String),
    Several(Vec<String>),
}

impl Default for RawChannel {
    fn default() -> RawChannel {
        RawChannel::Several(Vec::new())
    }
}

impl RawChannel {
    /// The names as written, in order.
    pub fn names(&self) -> &[String] {
        match self {
            RawChannel::One(name) => std::slice::from_ref(name),
            RawChannel::Several(names) => names,
        }
    }
}

impl<'de> Deserialize<'de> for RawChannel {
    /// A string or a list of strings; anything else says so (serde's untagged enums
    /// would only say "did not match any variant").
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawChannel, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawChannel;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a channel name or a list of channel names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawChannel, E> {
                Ok(RawChannel::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawChannel, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(RawChannel::Several(names))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// What to do with a step whose earlier attempt ended `unknown` (maybe delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnknown {
    /// Never risk sending twice: the step is not planned again.
    #[default]
    Skip,
    /// Plan it again (same idempotency key, so a provider that dedups drops the copy).
    Resend,
}

/// At most `max_messages` per customer within `days` days, across all campaigns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max_messages: u32,
    pub days: u32,
}

impl Default for FrequencyCap {
    fn default() -> FrequencyCap {
        FrequencyCap {
            max_messages: 1,
            days: 7,
        }
    }
}
