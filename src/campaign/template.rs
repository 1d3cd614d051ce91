//! Message templates: each step's subject, HTML, text and unsubscribe link are compiled
//! once (minijinja, strict: an unknown field is an error, never a blank) and rendered per
//! recipient from their audience row plus the few fields the planner adds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

pub use super::fields::Fields;

/// Fields every template may use besides the audience's columns; the planner fills them:
/// `customer_id`, `campaign`, `step` (1-based), `entry_date` (the lapse's alert date,
/// YYYY-MM-DD), `unsubscribe_token` and `unsubscribe_url` (the rendered link; not
/// available inside the `unsubscribe_url` template itself), `survey_token` (the
/// customer's signed survey token) and `survey_url` (the step's rendered `survey_url`
/// template; only on a step that has one, and not inside it).
pub const PLANNER_FIELDS: [&str; 8] = [
    "customer_id",
    "campaign",
    "step",
    "entry_date",
    "unsubscribe_token",
    "unsubscribe_url",
    "survey_token",
    "survey_url",
];

/// The parts of a step's message that are templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Subject,
    Html,
    Text,
    UnsubscribeUrl,
    UnsubscribeMailto,
    /// A call's evidence (a call's reason is its `Subject`, its remedy its `Text`).
    Evidence,
    /// The link to the one-question survey (any medium): rendered before the bodies, which
    /// show it as `{{ survey_url }}`.
    SurveyUrl,
}

impl Part {
    pub const ALL: [Part; 7] = [
        Part::Subject,
        Part::Html,
        Part::Text,
        Part::UnsubscribeUrl,
        Part::UnsubscribeMailto,
        Part::Evidence,
        Part::SurveyUrl,
    ];

    /// The pipeline-file key of this part (also the template's name).
    pub fn key(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
            Part::UnsubscribeUrl => "unsubscribe_url",
            Part::UnsubscribeMailto => "unsubscribe_mailto",
            Part::Evidence => "call_evidence",
            Part::SurveyUrl => "survey_url",
        }
    }
}

/// The template sources of one step (already read from `*_file` where given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateSources {
    pub parts: BTreeMap<Part, String>,
}

/// A template that failed to compile or render, naming the part, never the recipient.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {detail}")]
pub struct TemplateError {
    pub part: &'static str,
    pub detail: String,
}

/// One recipient's rendered message parts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rendered {
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: String,
    pub unsubscribe_url: Option<String>,
    pub unsubscribe_mailto: Option<String>,
    /// A call's evidence.
    pub evidence: Option<String>,
}

/// The compiled templates of one step.
pub struct StepTemplates {
    env: Environment<'static>,
    present: BTreeSet<Part>,
    sources: TemplateSources,
}

impl fmt::Debug for StepTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepTemplates")
            .field("parts", &self.present)
            .finish()
    }
}

/// What the planner knows about the recipient, besides the audience row.
#[derive(Debug, Clone)]
pub struct RenderInput<'a> {
    pub fields: &'a Fields,
    pub customer_id: &'a str,
    pub campaign: &'a str,
    pub step: u32,
    pub entry_date: &'a str,
    pub unsubscribe_token: &'a str,
    /// The customer's survey token ([`crate::unsubscribe_token::TokenKeys::issue_survey`]).
    pub survey_token: &'a str,
}

impl StepTemplates {
    /// Compile every part; all failures are returned together.
    pub fn compile(sources: &TemplateSources) -> Result<StepTemplates, Vec<TemplateError>> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name == Part::Html.key() {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // A null column renders as nothing rather than "none".
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let mut errors = Vec::new();
        let mut present = BTreeSet::new();
        for (part, source) in &sources.parts {
            match env.add_template_owned(part.key(), source.clone()) {
                Ok(()) => {
                    present.insert(*part);
                }
                Err(e) => errors.push(TemplateError {
                    part: part.key(),
                    detail: describe(&e, true),
                }),
            }
        }
        if errors.is_empty() {
            Ok(StepTemplates {
                env,
                present,
                sources: sources.clone(),
            })
        } else {
            Err(errors)
        }
    }

    /// The source text of a part, as written.
    pub fn source(&self, part: Part) -> Option<&str> {
        self.sources.parts.get(&part).map(String::as_str)
    }

    pub fn has(&self, part: Part) -> bool {
        self.present.contains(&part)
    }

    /// The top-level variables each part reads (minus the ones the template sets itself).
    pub fn variables(&self) -> BTreeMap<Part, BTreeSet<String>> {
        self.present
            .iter()
            .filter_map(|part| {
                let tmpl = self.env.get_template(part.key()).ok()?;
                Some((
                    *part,
                    tmpl.undeclared_variables(false).into_iter().collect(),
                ))
            })
            .collect()
    }

    /// Render one part with a context object.
    fn render_part(&self, part: Part, ctx: &Value) -> Result<Option<String>, TemplateError> {
        if !self.present.contains(&part) {
            return Ok(None);
        }
        let err = |e: minijinja::Error| TemplateError {
            part: part.key(),
            detail: describe(&e, false),
        };
        let tmpl = self.env.get_template(part.key()).map_err(err)?;
        tmpl.render(ctx.clone()).map(Some).map_err(err)
    }

    /// Render every part for one recipient: the unsubscribe link first, then the survey
    /// link, so the body can show them as `{{ unsubscribe_url }}` and `{{ survey_url }}`.
    pub fn render(&self, input: &RenderInput<'_>) -> Result<Rendered, TemplateError> {
        let row = Arc::new(RowContext {
            fields: input.fields.clone(),
            customer_id: Value::from(input.customer_id),
            campaign: Value::from(input.campaign),
            step: input.step,
            entry_date: Value::from(input.entry_date),
            unsubscribe_token: Value::from(input.unsubscribe_token),
            unsubscribe_url: OnceLock::new(),
            survey_token: Value::from(input.survey_token),
            survey_url: OnceLock::new(),
        });
        let ctx = Value::from_dyn_object(Arc::clone(&row));
        let unsubscribe_url = self.render_part(Part::UnsubscribeUrl, &ctx)?;
        let unsubscribe_mailto = self.render_part(Part::UnsubscribeMailto, &ctx)?;
        if let Some(url) = &unsubscribe_url {
            let _ = row.unsubscribe_url.set(Value::from(url.as_str()));
        }
        if let Some(url) = self.render_part(Part::SurveyUrl, &ctx)? {
            let _ = row.survey_url.set(Value::from(url));
        }
        Ok(Rendered {
            subject: self.render_part(Part::Subject, &ctx)?,
            html: self.render_part(Part::Html, &ctx)?,
            text: self.render_part(Part::Text, &ctx)?.unwrap_or_default(),
            unsubscribe_url,
            unsubscribe_mailto,
            evidence: self.render_part(Part::Evidence, &ctx)?,
        })
    }
}

/// A minijinja error as one line: kind and line number, plus minijinja's detail for
/// compile errors (about the template text). A render error's detail may quote a
/// recipient's value (an address), so it is left out there.
fn describe(e: &minijinja::Error, with_detail: bool) -> String {
    let mut s = e.kind().to_string();
    if with_detail && let Some(detail) = e.detail() {
        s.push_str(": ");
        s.push_str(detail);
    }
    if let Some(line) = e.line() {
        s.push_str(&format!(" (line {line})"));
    }
    s
}

/// The template context: the planner's fields, then the audience row's columns. Looked
/// up lazily, so rendering never copies the row.
#[derive(Debug)]
struct RowContext {
    fields: Fields,
    customer_id: Value,
    campaign: Value,
    step: u32,
    entry_date: Value,
    unsubscribe_token: Value,
    /// Set once the link is rendered (so the link's own template cannot use it).
    unsubscribe_url: OnceLock<Value>,
    survey_token: Value,
    /// Set once the step's survey link is rendered (never on a step without one).
    survey_url: OnceLock<Value>,
}

impl Object for RowContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match key {
            "customer_id" => Some(self.customer_id.clone()),
            "campaign" => Some(self.campaign.clone()),
            "step" => Some(Value::from(self.step)),
            "entry_date" => Some(self.entry_date.clone()),
            "unsubscribe_token" => Some(self.unsubscribe_token.clone()),
            "unsubscribe_url" => self.unsubscribe_url.get().cloned(),
            "survey_token" => Some(self.survey_token.clone()),
            "survey_url" => self.survey_url.get().cloned(),
            _ => self.fields.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sources(parts: &[(Part, &str)]) -> TemplateSources {
        TemplateSources {
            parts: parts.iter().map(|(p, s)| (*p, s.to_string())).collect(),
        }
    }

    fn fields(pairs: &[(&str, serde_json::Value)]) -> Fields {
        Fields::from_pairs(pairs)
    }

    fn input<'a>(f: &'a Fields) -> RenderInput<'a> {
        RenderInput {
            fields: f,
            customer_id: "C1",
            campaign: "quick",
            step: 2,
            entry_date: "2026-06-04",
            unsubscribe_token: "tok123",
            survey_token: "srv456",
        }
    }

    #[test]
    fn renders_all_parts_and_escapes_html_only() {
        let t = StepTemplates::compile(&sources(&[
            (Part::Subject, "{{ segment }} & you, {{ customer_id }}"),
            (Part::Html, "<p>{{ segment }} & {{ unsubscribe_url }}</p>"),
            (
                Part::Text,
                "Step {{ step }} of {{ campaign }}: {{ segment }} {{ days }}d",
            ),
            (
                Part::UnsubscribeUrl,
                "https://shop.example/u/{{ unsubscribe_token }}?a=1&b=2",
            ),
        ]))
        .unwrap();
        let f = fields(&[("segment", json!("At <Risk>")), ("days", json!(92))]);
        let r = t.render(&input(&f)).unwrap();
        assert_eq!(r.subject.as_deref(), Some("At <Risk> & you, C1"));
        assert_eq!(
            r.html.as_deref(),
            Some(
                "<p>At &lt;Risk&gt; & https:&#x2f;&#x2f;shop.example&#x2f;u&#x2f;tok123?a=1&amp;b=2</p>"
            )
        );
        assert_eq!(r.text, "Step 2 of quick: At <Risk> 92d");
        assert_eq!(
            r.unsubscribe_url.as_deref(),
            Some("https://shop.example/u/tok123?a=1&b=2")
        );
        assert_eq!(r.unsubscribe_mailto, None);
    }

    #[test]
    fn the_survey_link_is_rendered_before_the_bodies() {
        let t = StepTemplates::compile(&sources(&[
            (
                Part::Text,
                "One question: {{ survey_url }} Leave: {{ unsubscribe_url }}",
            ),
            (Part::Html, "<a href=\"{{ survey_url }}\">survey</a>"),
            (
                Part::UnsubscribeUrl,
                "https://shop.example/u/{{ unsubscribe_token }}",
            ),
            (
                Part::SurveyUrl,
                "https://shop.example/s/{{ survey_token }}?c={{ campaign }}",
            ),
        ]))
        .unwrap();
        let f = fields(&[]);
        let r = t.render(&input(&f)).unwrap();
        assert_eq!(
            r.text,
            "One question: https://shop.example/s/srv456?c=quick Leave: https://shop.example/u/tok123"
        );
        assert_eq!(
            r.html.as_deref(),
            Some(
                "<a href=\"https:&#x2f;&#x2f;shop.example&#x2f;s&#x2f;srv456?c=quick\">survey</a>"
            )
        );
        // Without a survey_url template there is no link to show: an error, never a blank.
        let t = StepTemplates::compile(&sources(&[(Part::Text, "{{ survey_url }}")])).unwrap();
        assert_eq!(t.render(&input(&f)).unwrap_err().part, "text");
    }

    #[test]
    fn unknown_field_is_an_error_and_null_is_blank() {
        let t = StepTemplates::compile(&sources(&[(Part::Text, "Hi {{ first_name }}!")])).unwrap();
        let f = fields(&[]);
        let e = t.render(&input(&f)).unwrap_err();
        assert_eq!(e.part, "text");
        let f = fields(&[("first_name", serde_json::Value::Null)]);
        assert_eq!(t.render(&input(&f)).unwrap().text, "Hi !");
        let t =
            StepTemplates::compile(&sources(&[(Part::Text, "Hi {{ first_name or 'there' }}!")]))
                .unwrap();
        assert_eq!(t.render(&input(&f)).unwrap().text, "Hi there!");
    }

    #[test]
    fn render_errors_never_quote_values() {
        let t = StepTemplates::compile(&sources(&[(Part::Text, "{{ email + 1 }}")])).unwrap();
        let f = fields(&[("email", json!("anna@example.com"))]);
        let e = t.render(&input(&f)).unwrap_err();
        assert!(!e.to_string().contains("anna"), "{e}");
        assert!(e.to_string().starts_with("text: "), "{e}");
    }

    #[test]
    fn variables_and_compile_errors() {
        let t = StepTemplates::compile(&sources(&[
            (Part::Subject, "{% set x = 1 %}{{ x }} {{ a }}"),
            (
                Part::Text,
                "{{ b.c }} {% for i in items %}{{ i }}{% endfor %}",
            ),
        ]))
        .unwrap();
        let v = t.variables();
        assert_eq!(v[&Part::Subject], BTreeSet::from(["a".to_string()]));
        assert_eq!(
            v[&Part::Text],
            BTreeSet::from(["b".to_string(), "items".to_string()])
        );
        let errs = StepTemplates::compile(&sources(&[
            (Part::Subject, "{{ a "),
            (Part::Text, "{% if %}"),
        ]))
        .unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].part, "subject");
    }
}
