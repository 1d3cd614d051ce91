//! The tables model stages write, computed from a customer summary with the pure model
//! functions of `crate::models`; no I/O here, so it can run on a blocking thread.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use crate::config::{ModelKind, ModelSpec};
use crate::models::{
    self, BgNbdParams, FitReport, GammaGammaParams, Observation, fit_bgnbd, fit_gamma_gamma,
    frequency_spend_correlation, score_all,
};

/// A clv model's fitted parameters, handed by the stage executor to the models that build
/// on it (sltv): a value of the run plan, not shared state.
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
        ModelKind::Sltv => vec![
            id,
            f("sltv"),
            f("winback_cost"),
            Field::new("channel", DataType::Utf8, false),
            Field::new("chase", DataType::Boolean, false),
            Field::new("basis", DataType::Utf8, false),
        ],
    }))
}

/// Columns a model needs from its input table.
pub const SUMMARY_COLUMNS: [&str; 6] = [
    "customer_id",
    "frequency",
    "t_x_days",
    "tenure_days",
    "repeat_monetary_avg",
    "monetary_total",
];

/// The per-customer summary as plain columns.
pub struct Summary {
    pub ids: StringArray,
    pub x: Vec<f64>,
    pub t_x: Vec<f64>,
    pub t: Vec<f64>,
    /// Mean repeat spend; refunds can make it negative or absent: read as 0.
    pub spend: Vec<f64>,
    pub total: Vec<f64>,
}

impl Summary {
    pub fn observations(&self) -> Vec<Observation> {
        (0..self.x.len())
            .map(|i| Observation {
                x: self.x[i],
                t_x: self.t_x[i],
                t: self.t[i],
            })
            .collect()
    }
}

type Built = Result<(RecordBatch, serde_json::Value, Option<Fit>), String>;

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

fn batch(kind: ModelKind, cols: Vec<ArrayRef>) -> Result<RecordBatch, String> {
    RecordBatch::try_new(output_schema(kind), cols).map_err(|e| e.to_string())
}

fn f64s(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

/// `high` for the top 20% by value, `medium` for the next 30%, `low` for the rest. Equal
/// values at a boundary are ranked by customer id (never by row position, which depends on
/// how the query engine partitioned the input).
fn tiers(values: &[f64], ids: &StringArray) -> Vec<&'static str> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        values[b]
            .total_cmp(&values[a])
            .then_with(|| ids.value(a).cmp(ids.value(b)))
    });
    let n = values.len() as f64;
    let mut out = vec!["low"; values.len()];
    for (rank, i) in order.into_iter().enumerate() {
        let q = (rank as f64 + 1.0) / n;
        out[i] = if q <= 0.2 {
            "high"
        } else if q <= 0.5 {
            "medium"
        } else {
            "low"
        };
    }
    out
}

/// Compute a model stage's table, diagnostics and (clv) fit; `upstream` is the fit of the
/// clv model an sltv stage builds on.
pub fn build(
    spec: &ModelSpec,
    s: &Summary,
    lapsed: Option<&ArrayRef>,
    upstream: Option<Fit>,
) -> Built {
    let e = |e: models::ModelError| e.to_string();
    let ids: ArrayRef = Arc::new(s.ids.clone());
    match spec.kind {
        ModelKind::Bgnbd => {
            let bg = fit_bgnbd(&s.observations(), &spec.fit).map_err(e)?;
            let p = &bg.params;
            let mut alive = Vec::with_capacity(s.x.len());
            let mut expected = Vec::with_capacity(s.x.len());
            for i in 0..s.x.len() {
                alive.push(p.p_alive(s.x[i], s.t_x[i], s.t[i]).map_err(e)?);
                expected.push(
                    p.conditional_expected_purchases(
                        spec.clv.horizon_days,
                        s.x[i],
                        s.t_x[i],
                        s.t[i],
                    )
                    .map_err(e)?,
                );
            }
            let new_customer = p
                .expected_purchases_new_customer(spec.clv.horizon_days)
                .map_err(e)?;
            let diag = json!({"type": "bgnbd", "bgnbd": bg_json(&bg),
                "expected_purchases_new_customer": new_customer, "horizon_days": spec.clv.horizon_days});
            Ok((
                batch(spec.kind, vec![ids, f64s(alive), f64s(expected)])?,
                diag,
                None,
            ))
        }
        ModelKind::GammaGamma => {
            let gg = fit_gamma_gamma(&s.x, &s.spend, &spec.fit).map_err(e)?;
            let mean = gg.params.population_mean_spend().map_err(e)?;
            let values = (0..s.x.len())
                .map(|i| {
                    if s.x[i] > 0.0 {
                        gg.params
                            .conditional_expected_average_value(s.x[i], s.spend[i])
                            .map_err(e)
                    } else {
                        Ok(mean)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let corr = frequency_spend_correlation(&s.x, &s.spend).ok();
            let diag = json!({"type": "gamma_gamma", "gamma_gamma": gg_json(&gg),
                "population_mean_spend": mean, "frequency_spend_correlation": corr});
            Ok((batch(spec.kind, vec![ids, f64s(values)])?, diag, None))
        }
        ModelKind::Clv => {
            let bg = fit_bgnbd(&s.observations(), &spec.fit).map_err(e)?;
            let gg = fit_gamma_gamma(&s.x, &s.spend, &spec.fit).map_err(e)?;
            let scores = score_all(
                &bg.params, &gg.params, &s.x, &s.t_x, &s.t, &s.spend, &spec.clv,
            )
            .map_err(e)?;
            let corr = frequency_spend_correlation(&s.x, &s.spend).ok();
            let new_customer = bg
                .params
                .expected_purchases_new_customer(spec.clv.horizon_days)
                .map_err(e)?;
            let diag = json!({
                "type": "clv", "customers": s.x.len(), "bgnbd": bg_json(&bg), "gamma_gamma": gg_json(&gg),
                "frequency_spend_correlation": corr,
                "population_mean_spend": scores.population_mean_spend,
                "used_empirical_mean_spend": scores.used_empirical_mean_spend,
                "expected_purchases_new_customer": new_customer,
                "horizon_days": spec.clv.horizon_days, "annual_discount_rate": spec.clv.annual_discount_rate,
                "margin": spec.clv.margin,
            });
            let tier: ArrayRef = Arc::new(StringArray::from(tiers(&scores.clv, &s.ids)));
            let cols = vec![
                ids,
                f64s(s.total.clone()),
                f64s(scores.p_alive),
                f64s(scores.expected_purchases),
                f64s(scores.expected_avg_value),
                f64s(scores.clv),
                tier,
            ];
            Ok((batch(spec.kind, cols)?, diag, Some((bg.params, gg.params))))
        }
        ModelKind::Sltv => sltv_table(spec, s, lapsed, upstream),
    }
}

/// Second lifetime value: what a lapsed customer is worth if won back now (valued as if
/// they bought again today, with their own history: x + 1 repeat days, last purchase at T),
/// minus the cheapest win-back channel's cost. Only customers who are lapsed, or whose
/// p_alive is below the threshold, are listed.
fn sltv_table(
    spec: &ModelSpec,
    s: &Summary,
    lapsed: Option<&ArrayRef>,
    upstream: Option<Fit>,
) -> Built {
    let e = |e: models::ModelError| e.to_string();
    let source = spec.model.clone().unwrap_or_default();
    let (bg, gg) = upstream
        .ok_or_else(|| format!("model '{source}' has no fit in this run (is it a clv model?)"))?;
    let lapsed: HashSet<&str> = lapsed
        .and_then(|a| a.as_any().downcast_ref::<StringArray>())
        .map(|a| {
            (0..a.len())
                .filter(|i| !a.is_null(*i))
                .map(|i| a.value(i))
                .collect()
        })
        .unwrap_or_default();
    let (channel, cost) = spec
        .winback_cost
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(c, v)| (c.clone(), *v))
        .ok_or("no win-back cost configured")?;
    let mean = gg.population_mean_spend().or_else(|_| {
        let mut repeat: Vec<f64> = (0..s.x.len())
            .filter(|i| s.x[*i] > 0.0)
            .map(|i| s.spend[i])
            .collect();
        repeat.sort_unstable_by(f64::total_cmp); // summed in an order the rows cannot change
        Ok::<f64, String>(repeat.iter().sum::<f64>() / repeat.len().max(1) as f64)
    })?;
    let (mut ids, mut values, mut basis) = (Vec::new(), Vec::new(), Vec::new());
    // CLV is linear in the spend per purchase: value one unit of spend once per (x, T).
    let mut unit_clv: HashMap<(u64, u64), f64> = HashMap::new();
    for i in 0..s.x.len() {
        let id = s.ids.value(i);
        let alive = bg.p_alive(s.x[i], s.t_x[i], s.t[i]).map_err(e)?;
        if !lapsed.contains(id) && alive >= spec.p_alive_below {
            continue;
        }
        let own = s.x[i] > 0.0;
        let ev = if own {
            gg.conditional_expected_average_value(s.x[i], s.spend[i])
                .unwrap_or(s.spend[i])
        } else {
            mean
        };
        let key = (s.x[i].to_bits(), s.t[i].to_bits());
        let unit = match unit_clv.get(&key) {
            Some(u) => *u,
            None => {
                let u = models::discounted_clv(&bg, s.x[i] + 1.0, s.t[i], s.t[i], 1.0, &spec.clv)
                    .map_err(e)?;
                unit_clv.insert(key, u);
                u
            }
        };
        let won_back = unit * ev;
        ids.push(id.to_string());
        values.push(models::sltv(won_back, cost).map_err(e)?);
        basis.push(if own { "own_history" } else { "population" });
    }
    let n = ids.len();
    let chase: Vec<bool> = values.iter().map(|v| *v > 0.0).collect();
    let chased = chase.iter().filter(|c| **c).count();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        f64s(values),
        f64s(vec![cost; n]),
        Arc::new(StringArray::from(vec![channel.as_str(); n])),
        Arc::new(BooleanArray::from(chase)),
        Arc::new(StringArray::from(basis)),
    ];
    let diag = json!({"type": "sltv", "model": source, "lapsed_customers": n, "chase": chased,
        "channel": channel, "winback_cost": cost});
    Ok((batch(spec.kind, cols)?, diag, None))
}

#[cfg(test)]
mod tests {
    use super::tiers;
    use datafusion::arrow::array::StringArray;

    #[test]
    fn tiers_split_20_30_50_by_value() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let ids = StringArray::from_iter_values((0..10).map(|i| format!("c{i}")));
        let t = tiers(&v, &ids);
        assert_eq!(t[9], "high");
        assert_eq!(t[8], "high");
        assert_eq!(t[7], "medium");
        assert_eq!(t[5], "medium");
        assert_eq!(t[4], "low");
        assert_eq!(t[0], "low");
    }

    #[test]
    fn tiers_break_ties_by_customer_id_not_row_order() {
        // Ten customers worth exactly the same: the two smallest ids are the top 20%.
        let ids = ["c7", "c2", "c9", "c0", "c5", "c1", "c3", "c8", "c4", "c6"];
        let v = vec![5.0; ids.len()];
        let by_id = |ids: &[&str]| {
            let t = tiers(&v, &StringArray::from(ids.to_vec()));
            ids.iter()
                .zip(t)
                .map(|(i, t)| (i.to_string(), t))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let tiers = by_id(&ids);
        let mut reversed = ids;
        reversed.reverse();
        assert_eq!(tiers, by_id(&reversed));
        let want = [
            "high", "high", "medium", "medium", "medium", "low", "low", "low", "low", "low",
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(tiers[&format!("c{i}")], *w, "c{i}");
        }
    }
}
