//! winback: a scheduled batch pipeline that finds lapsing customers and wins them back.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod engine;
pub mod engine_runner;
pub mod error;
pub mod functions;
pub mod history_table;
pub mod manifest;
pub mod models;
pub mod progress;
pub mod run;
pub mod schedule;
pub mod source;
pub mod stage;
pub mod state;
pub mod storage;
