//! The state database's tables as DataFusion sees them, for SQL stages to read: the run
//! history (`winback_runs`) and the send ledger (`sends`, without addresses). They sit
//! beside the engine, so `state/` itself depends on SQLite only.

pub mod history_table;
pub mod ledger_table;
pub mod suppressions_table;
