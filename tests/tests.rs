//! winback's integration tests: one binary (each test binary links DataFusion).

mod support;

mod aa_test;
mod architecture;
mod at_risk;
mod bad_inputs;
#[cfg(feature = "ballista")]
mod ballista;
mod campaigns;
mod cli;
mod determinism;
mod economics;
mod emulators;
mod engine;
mod exactly_once;
mod functions;
mod golden;
mod incremental;
mod inputs;
mod lapse;
mod listen;
mod ltv;
mod memory;
mod report;
mod run_path;
mod s3;
mod send_test;
mod send_windows;
mod serve;
mod validate;
