//! Customer-lifetime-value math (BG/NBD, Gamma-Gamma, discounted CLV) as pure functions over plain data.
//!
//! Everything here works in DAYS on per-customer summaries:
//! `x` = repeat purchase days (distinct purchase days - 1), `t_x` = days from the
//! first to the last purchase day, `t` (the papers' `T`) = days from the first
//! purchase to the end of observation, with `T >= t_x >= 0` and `t_x = 0` exactly when `x = 0`.
//!
//! No I/O happens in this module: no files, no printing, no logging. Every
//! per-customer output is checked to be finite; anything that cannot be computed
//! is reported as a [`ModelError`] with a message saying what was wrong and what
//! to do about it.

pub mod backtest;
pub mod bgnbd;
pub mod clv;
pub mod gamma_gamma;
pub mod hyp2f1;
pub mod optimize;
pub mod simulate;

pub use backtest::{BacktestRow, backtest_table};
pub use bgnbd::{BgNbdParams, fit_bgnbd};
pub use clv::{
    ClvOptions, Scores, discounted_clv, population_mean_spend, score_all, score_with_mean,
};
pub use gamma_gamma::{GammaGammaParams, fit_gamma_gamma, frequency_spend_correlation};

/// One customer's purchase summary, all in days (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Repeat purchase days: distinct purchase days minus one (a whole number >= 0).
    pub x: f64,
    /// Days between the first and the last purchase day (0 when `x = 0`).
    pub t_x: f64,
    /// Days between the first purchase and the end of observation (the papers' `T`).
    pub t: f64,
}

impl Observation {
    /// `Observation { x, t_x, t }` in one call.
    pub const fn new(x: f64, t_x: f64, t: f64) -> Self {
        Self { x, t_x, t }
    }
}

/// Settings shared by the maximum-likelihood fits.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Optimiser iteration cap; a fit that reaches it returns `converged = false`.
    pub max_iterations: usize,
    /// Convergence threshold on the largest gradient component of the mean
    /// negative log-likelihood with respect to the log-parameters.
    pub gradient_tolerance: f64,
    /// L2 penalty `penalizer * sum(ln(theta)^2)` added to the mean negative
    /// log-likelihood: a stabiliser in the spirit of lifetimes' `penalizer_coef`
    /// (0 = plain maximum likelihood). Note that it pulls `alpha` (in days) and
    /// `v` (in currency) towards 1, so it depends on the units.
    pub penalizer: f64,
    /// Fewest usable customers a fit accepts (BG/NBD: customers; Gamma-Gamma:
    /// repeat buyers with positive spend). Below it the fit returns
    /// [`ModelError::TooFewCustomers`].
    pub min_customers: usize,
    /// Worker threads for likelihood sums and scoring; 0 = all available cores.
    pub threads: usize,
    /// The most customers a model stage fits on; above it, a sample the same every run
    /// (see `stage::model::frame`). Not used by the fit functions themselves.
    pub max_customers: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            max_iterations: 500,
            gradient_tolerance: 1e-7,
            penalizer: 0.0,
            min_customers: 10,
            max_customers: 1_000_000,
            threads: 0,
        }
    }
}

/// What a fit found, with enough context to judge it.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport<P> {
    /// Fitted parameters (meaningful even when `converged` is false: the best point found).
    pub params: P,
    /// Total log-likelihood over all customers used (without the penalty).
    pub log_likelihood: f64,
    /// Optimiser iterations performed.
    pub iterations: usize,
    /// True when the gradient tolerance was met before the iteration cap.
    pub converged: bool,
    /// Customers that entered the likelihood.
    pub n_customers: usize,
    /// Largest gradient component of the penalised mean negative log-likelihood
    /// (in log-parameters) at the returned point.
    pub gradient_norm: f64,
}

impl crate::error::Blamed for ModelError {
    /// A fit that cannot be made is not retried and is not the configuration's fault:
    /// the run reports it as the model's (`PipelineError::Model`).
    fn blame(&self) -> crate::error::Blame {
        crate::error::Blame::Internal
    }
}

/// Everything that can go wrong in the models; each message says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// No data at all.
    #[error("{context}: no customers were given; pass at least one customer summary")]
    Empty { context: &'static str },
    /// Too little data for a meaningful fit.
    #[error(
        "{context}: only {found} usable customers, at least {required} are needed; \
         collect a longer history or lower FitOptions::min_customers"
    )]
    TooFewCustomers {
        context: &'static str,
        found: usize,
        required: usize,
    },
    /// Columns of different lengths.
    #[error(
        "{context}: column `{column}` has {found} rows but {expected} were expected; pass equally long columns"
    )]
    LengthMismatch {
        context: &'static str,
        column: &'static str,
        expected: usize,
        found: usize,
    },
    /// One customer's summary is not valid.
    #[error(
        "{}: {field} = {value} {problem}; fix the customer summary upstream \
         (x = distinct purchase days - 1, t_x and T in days with 0 <= t_x <= T)",
        row.map_or_else(|| "customer".to_string(), |r| format!("customer row {r}"))
    )]
    InvalidObservation {
        row: Option<usize>,
        field: &'static str,
        value: f64,
        problem: &'static str,
    },
    /// BG/NBD needs repeat purchases to learn anything about dropout.
    #[error(
        "BG/NBD fit: none of the {n_customers} customers made a repeat purchase, so purchase \
         rates and dropout cannot be estimated; use a longer observation window"
    )]
    NoRepeatBuyers { n_customers: usize },
    /// Gamma-Gamma needs repeat buyers with positive spend.
    #[error(
        "Gamma-Gamma fit: none of the {n_customers} customers has x > 0 and a positive mean \
         repeat spend; check that spend is joined correctly (all zero or missing?)"
    )]
    NoPositiveSpend { n_customers: usize },
    /// A model parameter or option is outside its domain.
    #[error("{name} = {value} {problem}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        problem: &'static str,
    },
    /// The Gamma-Gamma population mean spend `p*v/(q-1)` does not exist.
    #[error(
        "Gamma-Gamma: q = {q} <= 1 means the fitted spend distribution has no finite mean; \
         use the empirical mean spend of repeat buyers instead (score_all does this) or refit \
         with a penalizer"
    )]
    InfiniteMeanSpend { q: f64 },
    /// A statistic is undefined because its inputs do not vary.
    #[error(
        "{context}: frequency or spend is constant among repeat buyers, so the statistic is undefined"
    )]
    ZeroVariance { context: &'static str },
    /// A computation produced a non-finite value although inputs were valid.
    #[error(
        "{context}: the result is not a finite number ({detail}); the fitted parameters are \
         probably extreme: inspect the FitReport and consider FitOptions::penalizer"
    )]
    NotFinite {
        context: &'static str,
        detail: String,
    },
    /// The likelihood could not be evaluated at the starting point.
    #[error("{context}: {detail}")]
    FitFailed {
        context: &'static str,
        detail: String,
    },
}

/// Checks one customer summary (see the module docs of `models`).
pub fn check_observation(row: Option<usize>, x: f64, t_x: f64, t: f64) -> Result<(), ModelError> {
    let bad = |field, value, problem| {
        Err(ModelError::InvalidObservation {
            row,
            field,
            value,
            problem,
        })
    };
    for (field, v) in [("x", x), ("t_x", t_x), ("T", t)] {
        if !v.is_finite() {
            return bad(field, v, "is not a finite number");
        }
        if v < 0.0 {
            return bad(field, v, "is negative");
        }
    }
    if x.fract() != 0.0 {
        return bad("x", x, "is not a whole number of repeat purchase days");
    }
    if t_x > t {
        return bad("t_x", t_x, "is larger than the customer's T");
    }
    if x == 0.0 && t_x != 0.0 {
        return bad(
            "t_x",
            t_x,
            "is not 0 although x = 0 (a single purchase day)",
        );
    }
    if x > 0.0 && t_x == 0.0 {
        return bad(
            "t_x",
            t_x,
            "is 0 although x > 0 (repeat days come after the first day)",
        );
    }
    Ok(())
}

pub(crate) fn check_horizon(horizon: f64) -> Result<(), ModelError> {
    if horizon.is_finite() && horizon >= 0.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidParameter {
            name: "horizon (days)",
            value: horizon,
            problem: "must be a finite number >= 0",
        })
    }
}

pub(crate) fn check_options(opts: &FitOptions) -> Result<(), ModelError> {
    let bad = |name, value, problem| {
        Err(ModelError::InvalidParameter {
            name,
            value,
            problem,
        })
    };
    if !(opts.penalizer.is_finite() && opts.penalizer >= 0.0) {
        return bad(
            "FitOptions::penalizer",
            opts.penalizer,
            "must be a finite number >= 0",
        );
    }
    if !(opts.gradient_tolerance.is_finite() && opts.gradient_tolerance > 0.0) {
        return bad(
            "FitOptions::gradient_tolerance",
            opts.gradient_tolerance,
            "must be a finite number > 0",
        );
    }
    Ok(())
}

/// Number of worker threads to use for `n` work items (`requested` 0 = all cores).
pub(crate) fn worker_count(requested: usize, n: usize, min_per_thread: usize) -> usize {
    let cores = if requested == 0 {
        std::thread::available_parallelism().map_or(1, |c| c.get())
    } else {
        requested
    };
    cores.min(n / min_per_thread.max(1)).max(1)
}

/// Fails unless `value` is finite; `context` names the quantity for the message.
pub(crate) fn finite(
    value: f64,
    context: &'static str,
    detail: impl FnOnce() -> String,
) -> Result<f64, ModelError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::NotFinite {
            context,
            detail: detail(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_summaries_name_the_row_field_and_fix() {
        let cases = [
            (Observation::new(f64::NAN, 0.0, 10.0), "x"),
            (Observation::new(-1.0, 0.0, 10.0), "x"),
            (Observation::new(1.5, 3.0, 10.0), "x"),
            (Observation::new(1.0, 3.0, f64::INFINITY), "T"),
            (Observation::new(0.0, 0.0, -2.0), "T"),
            (Observation::new(2.0, 12.0, 10.0), "t_x"),
            (Observation::new(0.0, 4.0, 10.0), "t_x"),
        ];
        for (o, field) in cases {
            let err = check_observation(Some(7), o.x, o.t_x, o.t).unwrap_err();
            let ok = matches!(err, ModelError::InvalidObservation { row: Some(7), field: f, .. } if f == field);
            assert!(ok, "{err}");
            assert!(
                err.to_string().starts_with("customer row 7: ") && err.to_string().contains("fix")
            );
        }
        assert!(check_observation(None, 3.0, 0.0, 0.0).is_err());
        assert!(check_observation(None, 0.0, 0.0, 0.0).is_ok());
        assert!(
            check_options(&FitOptions {
                gradient_tolerance: 0.0,
                ..FitOptions::default()
            })
            .is_err()
        );
    }
}
