//! The per-customer summary a model stage reads from its input table: its columns, and
//! those columns as plain vectors for the model functions of `crate::models`.

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, StringArray};

use crate::models::Observation;

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
    /// The summary from its columns in `SUMMARY_COLUMNS` order: ids as Utf8, the numbers as
    /// Float64 (a missing number reads as 0; negative mean spend as 0).
    pub fn from_columns(cols: &[ArrayRef]) -> Result<Summary, String> {
        let ids = cols[0]
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("customer_id is read as text")?
            .clone();
        let f: Vec<Vec<f64>> = cols[1..SUMMARY_COLUMNS.len()]
            .iter()
            .map(|c| floats(c, 0.0))
            .collect();
        let [x, t_x, t, spend, total]: [Vec<f64>; 5] = f.try_into().expect("five columns");
        Ok(Summary {
            ids,
            x,
            t_x,
            t,
            spend: spend.into_iter().map(|m| m.max(0.0)).collect(),
            total,
        })
    }

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

fn floats(a: &ArrayRef, default: f64) -> Vec<f64> {
    let a = a
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("scored columns are read as Float64");
    (0..a.len())
        .map(|i| if a.is_null(i) { default } else { a.value(i) })
        .collect()
}
