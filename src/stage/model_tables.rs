//! The tables model stages write, computed from a customer summary with the pure model
//! functions of `crate::models`; no I/O here, so it can run on a blocking thread.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use super::model_summary::Summary;
use crate::config::{ModelKind, ModelSpec};
use crate::models::{
    self, BgNbdParams, FitReport, GammaGammaParams, fit_bgnbd, fit_gamma_gamma,
    frequency_spend_correlation,
};

/// A clv model's fitted parameters, handed by the stage executor to the models that build
/// on it (won_back_clv): a value of the run plan, not shared state.
pub type Fit = (BgNbdParams, GammaGammaParams);

/// The columns a model stage writes.
pub fn output_schema(kind: ModelKind) -> SchemaRef {
    let f = |n: &str| Field::new(n, DataType::Float64, false);
    let id = Field::new("customer_id", DataType::Utf8, false);
    Arc::new(Schema::new(match kind {
        ModelKind::Bgnbd => vec![id, f("p_alive"), f("expected_purchases")],
        ModelKind::GammaGamma => vec![id, f("expected_avg_value")],
        ModelKind::Clv => vec![
            id,
            f("historical_value"),
            f("p_alive"),
            f("expected_purchases"),
            f("expected_avg_value"),
            f("clv"),
            Field::new("value_tier", DataType::Utf8, false),
        ],
        ModelKind::WonBackClv => vec![
            id,
            f("clv_if_won_back"),
            Field::new("basis", DataType::Utf8, false),
        ],
    }))
}

fn bg_json(r: &FitReport<BgNbdParams>) -> serde_json::Value {
    json!({
        "r": r.params.r, "alpha": r.params.alpha, "a": r.params.a, "b": r.params.b,
        "log_likelihood": r.log_likelihood, "iterations": r.iterations,
        "converged": r.converged, "n_customers": r.n_customers, "gradient_norm": r.gradient_norm,
    })
}

fn gg_json(r: &FitReport<GammaGammaParams>) -> serde_json::Value {
    json!({
        "p": r.params.p, "q": r.params.q, "v": r.params.v,
        "log_likelihood": r.log_likelihood, "iterations": r.iterations,
        "converged": r.converged, "n_customers": r.n_customers, "gradient_norm": r.gradient_norm,
    })
}

fn f64s(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

/// A model fitted for one stage: everything scoring a batch of customers needs.
#[derive(Debug, Clone)]
pub struct Fitted {
    kind: ModelKind,
    bg: Option<BgNbdParams>,
    gg: Option<GammaGammaParams>,
    /// Spend per purchase for customers without repeats (and whether it is the empirical
    /// mean of repeat buyers rather than the Gamma-Gamma population mean).
    mean: (f64, bool),
    clv: models::ClvOptions,
    /// won_back_clv: the p_alive threshold.
    p_alive_below: f64,
}

type Built = Result<(Fitted, serde_json::Value, Option<Fit>), String>;

/// Fit a model stage on `s` (all customers, or the sample `fit_sample` takes), with
/// `customers` the number of customers it will score; `upstream` is the fit of the clv
/// model a won_back_clv stage builds on. Returns the fitted model, its diagnostics and (clv) fit.
pub fn fit(spec: &ModelSpec, s: &Summary, customers: u64, upstream: Option<Fit>) -> Built {
    let e = |e: models::ModelError| e.to_string();
    let (fitted, mut diag, fit) = match spec.kind {
        ModelKind::Bgnbd => {
            let bg = fit_bgnbd(&s.observations(), &spec.fit).map_err(e)?;
            let new_customer = bg
                .params
                .expected_purchases_new_customer(spec.clv.horizon_days)
                .map_err(e)?;
            let diag = json!({"type": "bgnbd", "bgnbd": bg_json(&bg),
                "expected_purchases_new_customer": new_customer, "horizon_days": spec.clv.horizon_days});
            (
                fitted(spec, Some(bg.params), None, (0.0, false)),
                diag,
                None,
            )
        }
        ModelKind::GammaGamma => {
            let gg = fit_gamma_gamma(&s.x, &s.spend, &spec.fit).map_err(e)?;
            let mean = gg.params.population_mean_spend().map_err(e)?;
            let corr = frequency_spend_correlation(&s.x, &s.spend).ok();
            let diag = json!({"type": "gamma_gamma", "gamma_gamma": gg_json(&gg),
                "population_mean_spend": mean, "frequency_spend_correlation": corr});
            (
                fitted(spec, None, Some(gg.params), (mean, false)),
                diag,
                None,
            )
        }
        ModelKind::Clv => fit_clv(spec, s).map_err(e)?,
        ModelKind::WonBackClv => fit_won_back_clv(spec, s, upstream)?,
    };
    // Every model's diagnostics say how many customers it was fitted on and scores.
    let sample = json!({"fit_customers": s.x.len(), "customers": customers});
    if let (Some(d), Some(extra)) = (diag.as_object_mut(), sample.as_object()) {
        d.extend(extra.clone());
    }
    Ok((fitted, diag, fit))
}

/// A fitted model of `spec`'s kind and options.
fn fitted(
    spec: &ModelSpec,
    bg: Option<BgNbdParams>,
    gg: Option<GammaGammaParams>,
    mean: (f64, bool),
) -> Fitted {
    Fitted {
        kind: spec.kind,
        bg,
        gg,
        mean,
        clv: spec.clv.clone(),
        p_alive_below: spec.p_alive_below,
    }
}

/// clv: BG/NBD and Gamma-Gamma on the same customers, the mean spend for customers
/// without repeats, and the fit handed on to the won_back_clv models that build on it.
fn fit_clv(
    spec: &ModelSpec,
    s: &Summary,
) -> Result<(Fitted, serde_json::Value, Option<Fit>), models::ModelError> {
    let bg = fit_bgnbd(&s.observations(), &spec.fit)?;
    let gg = fit_gamma_gamma(&s.x, &s.spend, &spec.fit)?;
    let (mean, empirical) = models::population_mean_spend(&gg.params, &s.x, &s.spend)?;
    let corr = frequency_spend_correlation(&s.x, &s.spend).ok();
    let new_customer = bg
        .params
        .expected_purchases_new_customer(spec.clv.horizon_days)?;
    let diag = json!({
        "type": "clv", "bgnbd": bg_json(&bg), "gamma_gamma": gg_json(&gg),
        "frequency_spend_correlation": corr,
        "population_mean_spend": mean,
        "used_empirical_mean_spend": empirical,
        "expected_purchases_new_customer": new_customer,
        "horizon_days": spec.clv.horizon_days, "annual_discount_rate": spec.clv.annual_discount_rate,
        "margin": spec.clv.margin,
    });
    let fit = Some((bg.params, gg.params));
    let f = fitted(spec, Some(bg.params), Some(gg.params), (mean, empirical));
    Ok((f, diag, fit))
}

/// won_back_clv: no fit of its own; the `upstream` clv model's parameters and the
/// Gamma-Gamma population mean spend (or, where it has none, the mean spend of repeat
/// buyers).
fn fit_won_back_clv(
    spec: &ModelSpec,
    s: &Summary,
    upstream: Option<Fit>,
) -> Result<(Fitted, serde_json::Value, Option<Fit>), String> {
    let source = spec.model.clone().unwrap_or_default();
    let (bg, gg) = upstream
        .ok_or_else(|| format!("model '{source}' has no fit in this run (is it a clv model?)"))?;
    let mean = gg.population_mean_spend().unwrap_or_else(|_| {
        let mut repeat: Vec<f64> = (0..s.x.len())
            .filter(|i| s.x[*i] > 0.0)
            .map(|i| s.spend[i])
            .collect();
        repeat.sort_unstable_by(f64::total_cmp); // summed in an order the rows cannot change
        repeat.iter().sum::<f64>() / repeat.len().max(1) as f64
    });
    let diag = json!({"type": "won_back_clv", "model": source});
    Ok((fitted(spec, Some(bg), Some(gg), (mean, false)), diag, None))
}

/// The columns `Fitted::score` writes: the stage's table, less `value_tier` for clv (given
/// by rank over all customers afterwards, see `tier_sql`).
pub fn scored_schema(kind: ModelKind) -> SchemaRef {
    let full = output_schema(kind);
    let fields: Vec<Field> = full
        .fields()
        .iter()
        .filter(|f| f.name() != "value_tier")
        .map(|f| f.as_ref().clone())
        .collect();
    Arc::new(Schema::new(fields))
}

impl Fitted {
    /// Score one batch of customers (`SUMMARY_COLUMNS`, then `_lapsed` for won_back_clv;
    /// numbers as Float64, ids as Utf8): every row is a customer of the output, except for
    /// won_back_clv, which lists
    /// only customers who are lapsed or whose p_alive is below the threshold.
    pub fn score(&self, b: &RecordBatch) -> Result<RecordBatch, String> {
        let e = |e: models::ModelError| e.to_string();
        let ids = b.column(0).clone();
        let s = Summary::from_columns(b.columns())?;
        let (x, t_x, t, spend) = (&s.x, &s.t_x, &s.t, &s.spend);
        let schema = scored_schema(self.kind);
        let done = |cols: Vec<ArrayRef>| {
            RecordBatch::try_new(schema.clone(), cols).map_err(|e| e.to_string())
        };
        match self.kind {
            ModelKind::Bgnbd => {
                let p = self.bg.expect("a fitted BG/NBD");
                let (mut alive, mut expected) = (Vec::new(), Vec::new());
                for i in 0..x.len() {
                    alive.push(p.p_alive(x[i], t_x[i], t[i]).map_err(e)?);
                    expected.push(
                        p.conditional_expected_purchases(self.clv.horizon_days, x[i], t_x[i], t[i])
                            .map_err(e)?,
                    );
                }
                done(vec![ids, f64s(alive), f64s(expected)])
            }
            ModelKind::GammaGamma => {
                let gg = self.gg.expect("a fitted Gamma-Gamma");
                let values = (0..x.len())
                    .map(|i| {
                        if x[i] > 0.0 {
                            gg.conditional_expected_average_value(x[i], spend[i])
                                .map_err(e)
                        } else {
                            Ok(self.mean.0)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                done(vec![ids, f64s(values)])
            }
            ModelKind::Clv => {
                let (bg, gg) = (self.bg.expect("fitted"), self.gg.expect("fitted"));
                let scores =
                    models::score_with_mean(&bg, &gg, self.mean, x, t_x, t, spend, &self.clv)
                        .map_err(e)?;
                done(vec![
                    ids,
                    f64s(s.total),
                    f64s(scores.p_alive),
                    f64s(scores.expected_purchases),
                    f64s(scores.expected_avg_value),
                    f64s(scores.clv),
                ])
            }
            ModelKind::WonBackClv => self.score_won_back_clv(b, &s, &schema),
        }
    }

    /// What a lapsed customer is worth if won back now: the CLV they would have if they
    /// bought again today, with their own history (x + 1 repeat days, last purchase at T).
    /// The SQL stage `sltv` weighs it against the chance of a win-back and its cost.
    fn score_won_back_clv(
        &self,
        b: &RecordBatch,
        s: &Summary,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, String> {
        let (x, t_x, t, spend) = (&s.x, &s.t_x, &s.t, &s.spend);
        let e = |e: models::ModelError| e.to_string();
        let (bg, gg) = (self.bg.expect("fitted"), self.gg.expect("fitted"));
        let lapsed = b
            .column(6)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or("_lapsed is boolean")?;
        let (mut out_ids, mut values, mut basis) = (Vec::new(), Vec::new(), Vec::new());
        // CLV is linear in the spend per purchase: value one unit of spend once per (x, T).
        let mut unit_clv: HashMap<(u64, u64), f64> = HashMap::new();
        for i in 0..x.len() {
            let alive = bg.p_alive(x[i], t_x[i], t[i]).map_err(e)?;
            let is_lapsed = lapsed.is_valid(i) && lapsed.value(i);
            if !is_lapsed && alive >= self.p_alive_below {
                continue;
            }
            let own = x[i] > 0.0;
            let ev = if own {
                gg.conditional_expected_average_value(x[i], spend[i])
                    .unwrap_or(spend[i])
            } else {
                self.mean.0
            };
            let key = (x[i].to_bits(), t[i].to_bits());
            let unit = match unit_clv.get(&key) {
                Some(u) => *u,
                None => {
                    let u = models::discounted_clv(&bg, x[i] + 1.0, t[i], t[i], 1.0, &self.clv)
                        .map_err(e)?;
                    unit_clv.insert(key, u);
                    u
                }
            };
            out_ids.push(s.ids.value(i));
            values.push(unit * ev);
            basis.push(if own { "own_history" } else { "population" });
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(out_ids)),
            f64s(values),
            Arc::new(StringArray::from(basis)),
        ];
        RecordBatch::try_new(schema.clone(), cols).map_err(|e| e.to_string())
    }
}

/// The clv table from its scored rows (`scored`, `customers` of them): `value_tier` is
/// `high` for the top 20% by value, `medium` for the next 30%, `low` for the rest. Equal
/// values at a boundary are ranked by customer id (never by row position, which depends
/// on how the query engine partitioned the input). One sort, which spills under a limit.
pub fn tier_sql(scored: &str, customers: u64) -> String {
    format!(
        "select customer_id, historical_value, p_alive, expected_purchases, expected_avg_value, clv, \
         case when _q <= 0.2 then 'high' when _q <= 0.5 then 'medium' else 'low' end as value_tier \
         from (select *, cast(row_number() over (order by clv desc, customer_id) as double) \
         / cast({customers} as double) as _q from {scored})"
    )
}

#[cfg(test)]
#[path = "model_tables_tests.rs"]
mod tests;
