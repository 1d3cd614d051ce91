//! The BG/NBD backtest over plain data: given a fit on the calibration period, each
//! customer's calibration summary and the purchase days seen in the holdout period, the
//! repeat purchases predicted against those seen, in total and by calibration frequency
//! (the classic validation table).

use serde::{Deserialize, Serialize};

use super::{BgNbdParams, ModelError, Observation};

/// One line of the validation table: the customers of one calibration-period frequency
/// (`0` to `6`, `7+`) or all of them (`total`), and the repeat purchases predicted and seen
/// in the holdout period. [`backtest_table`] gives averages per customer for a frequency
/// and sums for the total; the report shows averages per customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BacktestRow {
    pub frequency: String,
    pub customers: u64,
    pub predicted: f64,
    pub actual: f64,
}

/// The frequencies of a table: `0` to `6`, then `7+` for all the higher ones.
const FREQUENCIES: usize = 8;

/// The validation table of `params` over a holdout of `horizon` days: one line per
/// calibration frequency that has customers, then the `total`. `customers` gives each
/// customer's calibration summary and the purchase days seen in the holdout.
pub fn backtest_table(
    params: &BgNbdParams,
    horizon: f64,
    customers: impl IntoIterator<Item = (Observation, f64)>,
) -> Result<Vec<BacktestRow>, ModelError> {
    // (customers, predicted, actual) per frequency.
    let mut by_x: Vec<(u64, f64, f64)> = vec![(0, 0.0, 0.0); FREQUENCIES];
    for (o, actual) in customers {
        let predicted = params.conditional_expected_purchases(horizon, o.x, o.t_x, o.t)?;
        let slot = &mut by_x[(o.x as usize).min(FREQUENCIES - 1)];
        slot.0 += 1;
        slot.1 += predicted;
        slot.2 += actual;
    }
    let mut rows: Vec<BacktestRow> = by_x
        .iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(x, s)| BacktestRow {
            frequency: if x == FREQUENCIES - 1 {
                "7+".into()
            } else {
                x.to_string()
            },
            customers: s.0,
            predicted: s.1 / s.0 as f64,
            actual: s.2 / s.0 as f64,
        })
        .collect();
    let (n, p, a) = by_x
        .iter()
        .fold((0, 0.0, 0.0), |t, s| (t.0 + s.0, t.1 + s.1, t.2 + s.2));
    rows.push(BacktestRow {
        frequency: "total".into(),
        customers: n,
        predicted: p,
        actual: a,
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_grouped_by_frequency_up_to_7_plus_and_summed_in_total() {
        let params = BgNbdParams {
            r: 0.8,
            alpha: 40.0,
            a: 0.6,
            b: 2.4,
        };
        let customers = [
            (Observation::new(0.0, 0.0, 100.0), 0.0),
            (Observation::new(2.0, 50.0, 100.0), 1.0),
            (Observation::new(2.0, 80.0, 100.0), 3.0),
            (Observation::new(9.0, 90.0, 100.0), 4.0),
        ];
        let rows = backtest_table(&params, 30.0, customers).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.frequency.as_str()).collect();
        assert_eq!(names, ["0", "2", "7+", "total"]);
        assert_eq!(rows[1].customers, 2);
        assert_eq!(rows[1].actual, 2.0);
        assert_eq!(rows[3].customers, 4);
        assert_eq!(rows[3].actual, 8.0);
        let per_group: f64 = rows[..3]
            .iter()
            .map(|r| r.predicted * r.customers as f64)
            .sum();
        assert!((rows[3].predicted - per_group).abs() < 1e-9);
    }
}
