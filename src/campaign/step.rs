//! One step of a campaign: the channels it may go out on (one, several in order of
//! preference, or the customer's preferred one with a fallback list) and its compiled
//! templates per medium. Checked when the pipeline is loaded: every channel a step names
//! exists and has its medium's templates, so planning never meets a step it cannot render.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use super::template::{Part, StepTemplates, TemplateSources};
use crate::channel_rules::ChannelRules;
use crate::config::campaigns::{RawChannel, RawStep};
use crate::message::Medium;

/// `channel = "preferred"`: the customer's own channel first (the audience's
/// [`PREFERRED_CHANNEL_COLUMN`]), then the step's `fallback` list.
pub const PREFERRED: &str = "preferred";
/// The audience column that names a customer's preferred channel (a `[channels.NAME]`).
pub const PREFERRED_CHANNEL_COLUMN: &str = "preferred_channel";

/// A validated step with its compiled templates.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based position in the sequence.
    pub number: u32,
    pub day: u32,
    /// The channels to try, in order of preference (with `preferred`: after the
    /// customer's own). Never empty.
    pub channels: Vec<StepChannel>,
    /// Try the audience's `preferred_channel` first.
    pub preferred: bool,
    pub only_if_no_purchase: bool,
    /// The expected cost of the step's offer per message (`offer_cost`, 0 without one).
    pub offer_cost: f64,
    /// The compiled templates of each medium the step can be sent on.
    pub templates: BTreeMap<Medium, Arc<StepTemplates>>,
}

/// One channel a step names, with its medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChannel {
    pub name: String,
    pub medium: Medium,
}

impl Step {
    /// The templates for `medium`; None when the step cannot be sent on it.
    pub fn templates_for(&self, medium: Medium) -> Option<&Arc<StepTemplates>> {
        self.templates.get(&medium)
    }

    /// The pipeline-file key of a part of `medium`'s templates: the SMS text of a step
    /// that also has e-mail templates is `sms_text`.
    pub fn part_key(&self, medium: Medium, part: Part) -> &'static str {
        if medium == Medium::Call {
            return call_key(part);
        }
        if medium == Medium::Sms
            && part == Part::Text
            && self.templates.contains_key(&Medium::Email)
        {
            "sms_text"
        } else {
            part.key()
        }
    }
}

/// Resolve one step against the configured channels (`*_file` paths are relative to
/// `base_dir`); its problems (without the "step N:" prefix) go to `problems`.
pub(super) fn resolve_step(
    number: u32,
    raw: &RawStep,
    base_dir: &Path,
    configured: &BTreeMap<String, ChannelRules>,
    problems: &mut Vec<String>,
) -> Option<Step> {
    let before = problems.len();
    let offer_cost = raw.offer_cost.unwrap_or(0.0);
    if !(offer_cost.is_finite() && offer_cost >= 0.0) {
        problems.push(format!(
            "offer_cost must be an amount >= 0, got {offer_cost}"
        ));
    }
    let (preferred, channels) = resolve_channels(raw, configured, problems);
    let media: BTreeSet<Medium> = channels.iter().map(|c| c.medium).collect();
    let by_medium = if problems.len() > before {
        // The media are not known: the templates are compiled for their own problems only.
        BTreeMap::from([(Medium::Email, template_sources(raw, base_dir, problems))])
    } else {
        sources_by_medium(raw, base_dir, preferred, &media, problems)
    };
    let mut templates = BTreeMap::new();
    for (medium, sources) in by_medium {
        match StepTemplates::compile(&sources) {
            Ok(t) => {
                templates.insert(medium, Arc::new(t));
            }
            Err(errors) => {
                for mut e in errors {
                    if medium == Medium::Sms
                        && (raw.sms_text.is_some() || raw.sms_text_file.is_some())
                    {
                        e.part = "sms_text";
                    }
                    if medium == Medium::Call {
                        e.part = Part::ALL
                            .into_iter()
                            .find(|p| p.key() == e.part)
                            .map_or(e.part, call_key);
                    }
                    problems.push(format!("template {e}"));
                }
            }
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(Step {
        number,
        day: raw.day,
        channels,
        preferred,
        only_if_no_purchase: raw.only_if_no_purchase.unwrap_or(number > 1),
        offer_cost,
        templates,
    })
}

/// Whether the step starts from the customer's preferred channel, and the channels it
/// lists (the `channel` list, or `fallback` with `"preferred"`), each a `[channels.*]`.
fn resolve_channels(
    raw: &RawStep,
    configured: &BTreeMap<String, ChannelRules>,
    problems: &mut Vec<String>,
) -> (bool, Vec<StepChannel>) {
    let preferred = matches!(&raw.channel, RawChannel::One(name) if name == PREFERRED);
    let listed: &[String] = if preferred {
        if configured.contains_key(PREFERRED) {
            problems.push(format!(
                "channel {PREFERRED:?} means the customer's preferred channel; rename [channels.{PREFERRED}]"
            ));
        }
        match &raw.fallback {
            Some(list) if list.is_empty() => {
                problems.push("fallback lists no channel".into());
                list
            }
            Some(list) => list,
            None => {
                problems.push(format!(
                    "channel = {PREFERRED:?} needs fallback = [...]: the channels to try when the customer's preferred channel is unset or does not qualify"
                ));
                &[]
            }
        }
    } else {
        if raw.fallback.is_some() {
            problems.push(format!("fallback is only for channel = {PREFERRED:?}"));
        }
        if raw.channel.names().is_empty() {
            problems.push("channel lists no channel".into());
        }
        raw.channel.names()
    };
    let mut channels: Vec<StepChannel> = Vec::with_capacity(listed.len());
    for name in listed {
        if channels.iter().any(|c| &c.name == name) {
            problems.push(format!("channel {name:?} is listed twice"));
            continue;
        }
        match configured.get(name) {
            Some(rules) => channels.push(StepChannel {
                name: name.clone(),
                medium: rules.medium,
            }),
            None if name == PREFERRED => problems.push(format!(
                "{PREFERRED:?} cannot be one of a list: write channel = {PREFERRED:?} and fallback = [...]"
            )),
            None => problems.push(format!("channel {name:?} is not a [channels.*] table")),
        }
    }
    (preferred, channels)
}

/// The template sources of each medium the step can be sent on. E-mail: `subject`,
/// `text`, `unsubscribe_url` (and `html`, `unsubscribe_mailto`) when the step lists an
/// e-mail channel, or is `preferred` and gives e-mail parts. SMS: `sms_text`, or `text`
/// when the step has no e-mail templates. A listed channel without its medium's
/// templates is a problem; a preferred channel without them does not qualify.
fn sources_by_medium(
    raw: &RawStep,
    base_dir: &Path,
    preferred: bool,
    media: &BTreeSet<Medium>,
    problems: &mut Vec<String>,
) -> BTreeMap<Medium, TemplateSources> {
    let sources = template_sources(raw, base_dir, problems);
    let has = |p: Part| sources.parts.contains_key(&p);
    let email_only = [
        Part::Subject,
        Part::Html,
        Part::UnsubscribeUrl,
        Part::UnsubscribeMailto,
    ];
    let email_parts = email_only.iter().any(|p| has(*p));
    let email = media.contains(&Medium::Email) || (preferred && email_parts);
    let may_sms = media.contains(&Medium::Sms) || preferred;
    let mut out = BTreeMap::new();
    if email {
        for p in [Part::Subject, Part::Text, Part::UnsubscribeUrl] {
            if !has(p) {
                let or_file = match p {
                    Part::UnsubscribeUrl => String::new(),
                    _ => format!(" (inline or {}_file)", p.key()),
                };
                problems.push(format!("an email step needs {}{or_file}", p.key()));
            }
        }
    } else {
        for p in email_only.into_iter().filter(|p| has(*p)) {
            problems.push(format!(
                "{} is for e-mail; an sms step has only text",
                p.key()
            ));
        }
    }
    let sms_text = read_part(
        "sms_text",
        &raw.sms_text,
        &raw.sms_text_file,
        base_dir,
        problems,
    );
    if sms_text.is_some() && !may_sms {
        problems.push("sms_text is for a step with an sms channel".into());
    }
    if sms_text.is_some() && !email && has(Part::Text) {
        problems.push("give either text or sms_text, not both (an sms step has only text)".into());
    }
    let sms = match sms_text {
        Some(text) => Some(text),
        None if !email => sources.parts.get(&Part::Text).cloned(),
        None => None,
    };
    if media.contains(&Medium::Sms) && sms.is_none() {
        problems.push(if email {
            "a step with e-mail and sms channels needs sms_text (inline or sms_text_file): text is the e-mail's".into()
        } else {
            "an sms step needs text (inline or text_file)".into()
        });
    }
    if let Some(text) = sms.filter(|_| may_sms) {
        let mut parts = BTreeMap::from([(Part::Text, text)]);
        // The survey link is any medium's: an SMS may show it too.
        if let Some(survey) = sources.parts.get(&Part::SurveyUrl) {
            parts.insert(Part::SurveyUrl, survey.clone());
        }
        out.insert(Medium::Sms, TemplateSources { parts });
    }
    if !email && !may_sms && has(Part::Text) {
        problems.push(
            "a step with only call channels has call_reason, call_evidence and call_remedy, not text".into(),
        );
    }
    if let Some(call) = call_sources(raw, preferred, media, problems) {
        out.insert(Medium::Call, call);
    }
    if email {
        out.insert(Medium::Email, sources);
    }
    out
}

/// The pipeline-file key of a part of a call's templates.
fn call_key(part: Part) -> &'static str {
    match part {
        Part::Subject => "call_reason",
        Part::Text => "call_remedy",
        other => other.key(),
    }
}

/// A call's row of the call list: `call_reason` (its `Subject`), `call_remedy` (its
/// `Text`), both needed on a step that lists a call channel, and `call_evidence`
/// (optional). Call parts on a step without a call channel are a problem.
fn call_sources(
    raw: &RawStep,
    preferred: bool,
    media: &BTreeSet<Medium>,
    problems: &mut Vec<String>,
) -> Option<TemplateSources> {
    let given = [
        (Part::Subject, &raw.call_reason),
        (Part::Text, &raw.call_remedy),
        (Part::Evidence, &raw.call_evidence),
    ];
    let any = given.iter().any(|(_, v)| v.is_some());
    if !(media.contains(&Medium::Call) || preferred && any) {
        if any {
            problems.push(
                "call_reason, call_evidence and call_remedy are for a step with a call channel"
                    .into(),
            );
        }
        return None;
    }
    let mut sources = TemplateSources::default();
    for (part, value) in given {
        match value {
            Some(text) => {
                sources.parts.insert(part, text.clone());
            }
            None if part != Part::Evidence => {
                problems.push(format!("a call step needs {}", call_key(part)));
            }
            None => {}
        }
    }
    Some(sources)
}

/// A step's e-mail template texts and `text`, each given inline or read from its
/// `*_file` (relative to `base_dir`).
fn template_sources(raw: &RawStep, base_dir: &Path, problems: &mut Vec<String>) -> TemplateSources {
    let mut sources = TemplateSources::default();
    let pairs = [
        (Part::Subject, &raw.subject, &raw.subject_file),
        (Part::Html, &raw.html, &raw.html_file),
        (Part::Text, &raw.text, &raw.text_file),
        (Part::UnsubscribeUrl, &raw.unsubscribe_url, &None),
        (Part::UnsubscribeMailto, &raw.unsubscribe_mailto, &None),
        (Part::SurveyUrl, &raw.survey_url, &None),
    ];
    for (part, inline, file) in pairs {
        if let Some(text) = read_part(part.key(), inline, file, base_dir, problems) {
            sources.parts.insert(part, text);
        }
    }
    sources
}

/// One template text, inline or from its `key_file`; both at once, or a file that
/// cannot be read, is a problem.
fn read_part(
    key: &str,
    inline: &Option<String>,
    file: &Option<String>,
    base_dir: &Path,
    problems: &mut Vec<String>,
) -> Option<String> {
    match (inline, file) {
        (Some(text), Some(_)) => {
            problems.push(format!("give either {key} or {key}_file, not both"));
            Some(text.clone())
        }
        (Some(text), None) => Some(text.clone()),
        (None, Some(path)) => match std::fs::read_to_string(base_dir.join(path)) {
            Ok(text) => Some(text),
            Err(e) => {
                problems.push(format!("{key}_file {path:?} cannot be read: {e}"));
                None
            }
        },
        (None, None) => None,
    }
}
