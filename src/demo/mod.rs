//! `winback demo`: realistic synthetic shop data, so the product can be tried with no
//! account and no network.

pub mod call_outcomes;
pub mod comebacks;
pub mod feedback;
pub mod generate;

pub use generate::{DemoOptions, DemoReport, generate};
