//! `[models.NAME]`: model stages as typed configuration, a closed set chosen by `type`,
//! validated with the rest of the pipeline file (names, inputs, parameters), with every
//! default visible here.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Variable;
use crate::models::{ClvOptions, FitOptions};

/// Which model a stage fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Bgnbd,
    GammaGamma,
    Clv,
    WonBackClv,
}

/// The input every model reads by default: one row per customer.
pub const DEFAULT_INPUT: &str = "customer_summary";

fn default_input() -> String {
    DEFAULT_INPUT.into()
}

fn default_p_alive_below() -> f64 {
    0.3
}

/// Keys every fitted model (bgnbd, gamma_gamma, clv) takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFit {
    /// The per-customer summary (customer_id, frequency, t_x_days, tenure_days,
    /// repeat_monetary_avg, monetary_total).
    #[serde(default = "default_input")]
    pub input: String,
    /// L2 penalty on the log-parameters (0 = plain maximum likelihood).
    #[serde(default)]
    pub penalizer: f64,
    /// The most customers the fit reads; above it, a sample of them the same every run
    /// (every customer is still scored).
    #[serde(default = "default_fit_customers")]
    pub fit_customers: usize,
    /// Fail the run when the model cannot be fitted (default: an empty table and the
    /// reason in the manifest).
    #[serde(default)]
    pub required: bool,
}

/// `type = "won_back_clv"`: the CLV each lapsed customer would have if won back now, from
/// a clv model's fit (the SQL stage `sltv` weighs it against the chance and the cost).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWonBackClv {
    #[serde(default = "default_input")]
    pub input: String,
    /// The clv model whose fit it reuses.
    pub model: String,
    /// The table of lapsed customers (customer_id).
    pub lapsed: String,
    /// Also value customers whose p_alive is below this.
    #[serde(default = "default_p_alive_below")]
    pub p_alive_below: f64,
    #[serde(default)]
    pub required: bool,
}

/// `[models.NAME]` as written: a closed set of types.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawModel {
    Bgnbd(RawFit),
    GammaGamma(RawFit),
    Clv(RawFit),
    WonBackClv(RawWonBackClv),
}

/// A validated model stage.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub input: String,
    /// won_back_clv: the clv model whose fit it reuses.
    pub model: Option<String>,
    /// won_back_clv: the table of lapsed customers.
    pub lapsed: Option<String>,
    pub p_alive_below: f64,
    pub fit: FitOptions,
    pub clv: ClvOptions,
    pub required: bool,
}

impl ModelSpec {
    /// The tables the model reads.
    pub fn reads(&self) -> Vec<String> {
        let mut r = vec![self.input.clone()];
        r.extend(self.model.iter().cloned());
        r.extend(self.lapsed.iter().cloned());
        r
    }
}

fn default_fit_customers() -> usize {
    FitOptions::default().max_customers
}

fn number(vars: &BTreeMap<String, Variable>, name: &str, default: f64) -> f64 {
    match vars.get(name) {
        Some(Variable::Float(f)) => *f,
        Some(Variable::Integer(i)) => *i as f64,
        _ => default,
    }
}

/// Validate `[models]`: names are table names, inputs are identifiers, won_back_clv builds on a
/// clv model of the same file, parameters are in range. Every problem is collected.
pub fn resolve(
    raw: &BTreeMap<String, toml::Value>,
    variables: &BTreeMap<String, Variable>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, ModelSpec> {
    let clv = ClvOptions {
        horizon_days: number(variables, "horizon_days", 365.0),
        annual_discount_rate: number(variables, "annual_discount_rate", 0.10),
        margin: number(variables, "margin", 1.0),
        threads: 0,
    };
    let mut out = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for (name, value) in raw {
        if !super::names::is_identifier(name) {
            problems.push(format!(
                "models.{name:?}: a model's name is its table name and must be a lowercase identifier (a-z, 0-9, _)"
            ));
            continue;
        }
        if value.get("type").and_then(|t| t.as_str()) == Some("sltv") {
            problems.push(format!(
                "models.{name}: type \"sltv\" is gone: the model is now type = \"won_back_clv\" \
                 (the CLV if won back, without winback_cost) and SLTV is the SQL stage \
                 sql/marts/sltv.sql (P(win back) x CLV if won back - the campaign's cost); \
                 costs are set once, cost_per_message per channel and offer_cost per \
                 campaign step (README: \"Win-back economics\")"
            ));
            continue;
        }
        let parsed: RawModel = match value.clone().try_into() {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("models.{name}: {}", e.to_string().trim_end()));
                continue;
            }
        };
        if let Err(e) = clv.validate() {
            problems.push(format!("models.{name}: {e}"));
        }
        let spec = match &parsed {
            RawModel::Bgnbd(f) => fit_spec(name, ModelKind::Bgnbd, f, &clv, problems),
            RawModel::GammaGamma(f) => fit_spec(name, ModelKind::GammaGamma, f, &clv, problems),
            RawModel::Clv(f) => fit_spec(name, ModelKind::Clv, f, &clv, problems),
            RawModel::WonBackClv(s) => won_back_clv_spec(name, s, &clv, problems),
        };
        if spec.fit.penalizer < 0.0 || !spec.fit.penalizer.is_finite() {
            problems.push(format!(
                "models.{name}.penalizer: must be a finite number >= 0"
            ));
        }
        for table in spec.reads() {
            if !super::names::is_identifier(&table) {
                problems.push(format!(
                    "models.{name}: '{table}' is not a table name (a lowercase identifier)"
                ));
            }
        }
        kinds.insert(name.clone(), spec.kind);
        out.insert(name.clone(), spec);
    }
    check_upstream(raw, &out, &kinds, problems);
    out
}

/// A model that fits its own parameters (bgnbd, gamma_gamma, clv): at least 100
/// customers to fit on.
fn fit_spec(
    name: &str,
    kind: ModelKind,
    f: &RawFit,
    clv: &ClvOptions,
    problems: &mut Vec<String>,
) -> ModelSpec {
    if f.fit_customers < 100 {
        problems.push(format!(
            "models.{name}.fit_customers: {} is too few to fit on (at least 100)",
            f.fit_customers
        ));
    }
    ModelSpec {
        kind,
        input: f.input.clone(),
        model: None,
        lapsed: None,
        p_alive_below: default_p_alive_below(),
        fit: FitOptions {
            penalizer: f.penalizer,
            max_customers: f.fit_customers,
            ..FitOptions::default()
        },
        clv: clv.clone(),
        required: f.required,
    }
}

/// A won_back_clv model: its `p_alive_below` must be a probability.
fn won_back_clv_spec(
    name: &str,
    s: &RawWonBackClv,
    clv: &ClvOptions,
    problems: &mut Vec<String>,
) -> ModelSpec {
    if !(0.0..=1.0).contains(&s.p_alive_below) {
        problems.push(format!(
            "models.{name}.p_alive_below: {} must be between 0 and 1",
            s.p_alive_below
        ));
    }
    ModelSpec {
        kind: ModelKind::WonBackClv,
        input: s.input.clone(),
        model: Some(s.model.clone()),
        lapsed: Some(s.lapsed.clone()),
        p_alive_below: s.p_alive_below,
        fit: FitOptions::default(),
        clv: clv.clone(),
        required: s.required,
    }
}

/// Each won_back_clv model builds on a clv model of the same file.
fn check_upstream(
    raw: &BTreeMap<String, toml::Value>,
    out: &BTreeMap<String, ModelSpec>,
    kinds: &BTreeMap<String, ModelKind>,
    problems: &mut Vec<String>,
) {
    for (name, spec) in out {
        if let Some(m) = &spec.model
            && raw.contains_key(m)
            && kinds.get(m) != Some(&ModelKind::Clv)
        {
            problems.push(format!(
                "models.{name}.model: '{m}' must be a model of type clv"
            ));
        } else if let Some(m) = &spec.model
            && !raw.contains_key(m)
        {
            problems.push(format!("models.{name}.model: there is no [models.{m}]"));
        }
    }
}
