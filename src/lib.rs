//! winback: a scheduled batch pipeline that finds lapsing customers and wins them back.
//!
//! Where things live: `config/` (the pipeline file), `source/` (checked inputs), `stage/`
//! (SQL and model stages), `pipeline/` (one run of one `as_of`: set-up, execution,
//! commit, manifest), `schedule/` (when runs happen), `state/` (what is remembered: run
//! history, locks), `commands/` (one file per command).

pub mod campaign;
pub mod channel_rules;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod engine;
pub mod error;
pub mod functions;
pub mod manifest;
pub mod mask;
pub mod memory_cap;
pub mod message;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod source;
pub mod spill;
pub mod stage;
pub mod state;
pub mod state_tables;
pub mod storage;
