//! Error types shared by the library, each knowing whose fault it is and the exit code it maps to.

use std::path::PathBuf;

/// Exit code for a run that completed.
pub const EXIT_OK: i32 = 0;
/// Exit code for a run that failed (external or internal problem).
pub const EXIT_FAILED: i32 = 1;
/// Exit code for a run where some recipients were not delivered.
pub const EXIT_PARTIAL: i32 = 2;
/// Exit code for invalid configuration or input (sysexits' EX_CONFIG, as vector uses).
pub const EXIT_CONFIG: i32 = 78;

/// Whose fault an error is: decides the exit code and whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The configuration or input data is wrong: fix it, a retry will not help.
    User,
    /// Something outside winback failed (storage, network): a retry may help.
    External,
    /// A bug in winback.
    Internal,
}

/// A problem with pipeline files, schedules or command-line overrides.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("--set {key}: {message}")]
    Override { key: String, message: String },
    #[error("{} problem(s) found:\n  - {}", .0.len(), .0.join("\n  - "))]
    Many(Vec<String>),
}

/// A problem found while reading, checking or running the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("storage {url}: {message}")]
    Storage { url: String, message: String },
    #[error("source '{source_name}': {message}")]
    Source {
        source_name: String,
        message: String,
    },
    #[error("source '{source_name}', file {file}: column '{column}' {problem}")]
    Schema {
        source_name: String,
        file: String,
        column: String,
        problem: String,
    },
    #[error("stage '{stage}' ({file}): {message}")]
    Stage {
        stage: String,
        file: String,
        message: String,
    },
    #[error("stage '{stage}' failed its test: {message}")]
    DataTest { stage: String, message: String },
    #[error("writing output '{table}': {message}")]
    Output { table: String, message: String },
    #[error("model '{model}': {message}")]
    Model { model: String, message: String },
    #[error("{0}")]
    Internal(String),
}

impl PipelineError {
    /// Whose fault the error is.
    pub fn blame(&self) -> Blame {
        match self {
            PipelineError::Config(_)
            | PipelineError::Source { .. }
            | PipelineError::Schema { .. }
            | PipelineError::Stage { .. }
            | PipelineError::DataTest { .. }
            | PipelineError::Model { .. } => Blame::User,
            PipelineError::Storage { .. } | PipelineError::Output { .. } => Blame::External,
            PipelineError::Internal(_) => Blame::Internal,
        }
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            PipelineError::Config(_)
            | PipelineError::Source { .. }
            | PipelineError::Schema { .. }
            | PipelineError::Stage { .. } => EXIT_CONFIG,
            _ => EXIT_FAILED,
        }
    }
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
