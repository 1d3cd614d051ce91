//! What each command does; `cli.rs` says what it accepts.

pub mod cluster;
pub mod demo;
pub mod explain;
pub mod listen;
pub mod ltv;
pub mod report;
pub mod run;
pub mod schedule;
pub mod send_test;
pub mod sends;
pub mod signals;
pub mod summary;
pub mod validate;
