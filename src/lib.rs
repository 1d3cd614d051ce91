//! winback: a scheduled batch pipeline that finds lapsing customers and wins them back.
//!
//! Where things live: the modules sit in five layers, each importing only its own layer and
//! the ones below (`ARCHITECTURE.md` says what each module holds; `tests/architecture.rs`
//! keeps the order): entry (`cli`, `commands`, `demo`), run (`pipeline`, `manifest`), work
//! (`schedule`, `stage`, `campaign`, `delivery`, `report`), adapters (`channels`, `state`,
//! `source`, `output`, `engine`) and foundation (`config`, `message`, `channel_rules`,
//! `feedback`, `models`, `functions`, `storage`, `clock`, `error`, `mask`, `progress`,
//! `memory_cap`, `spill`).

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
pub mod feedback;
pub mod functions;
pub mod listen;
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
pub mod unsubscribe_token;
