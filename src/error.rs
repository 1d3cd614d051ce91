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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The configuration, the SQL or the input data is wrong: fix it, a retry will not
    /// help. Exit code 78; the scheduler never retries it.
    User,
    /// Something outside winback failed (storage, network, memory): a retry may help.
    /// Exit code 1; the scheduler retries it with backoff.
    External,
    /// A failure a retry will not heal and the user did not cause (a stage that fails at
    /// run time, a bug in winback). Exit code 1; not retried.
    Internal,
}

impl Blame {
    /// The worse of two: a part that a retry may heal, or that is winback's own, outranks
    /// the user's configuration (a run whose ledger failed is retried even when another
    /// channel's configuration is also wrong).
    pub fn worst(self, other: Blame) -> Blame {
        let rank = |b: Blame| match b {
            Blame::User => 0,
            Blame::External => 1,
            Blame::Internal => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    /// The process exit code for a failure of this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            Blame::User => EXIT_CONFIG,
            Blame::External | Blame::Internal => EXIT_FAILED,
        }
    }

    /// Whether running the same thing again may succeed.
    pub fn retriable(self) -> bool {
        self == Blame::External
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Blame::User => "user",
            Blame::External => "external",
            Blame::Internal => "internal",
        }
    }
}

/// What every error type of the library answers: whose fault it is, and so whether
/// running the same thing again may help. A run's blame is the worst of its parts'.
pub trait Blamed {
    fn blame(&self) -> Blame;

    /// Whether a retry may heal it (only external failures).
    fn retriable(&self) -> bool {
        self.blame().retriable()
    }
}

impl Blamed for ConfigError {
    /// The pipeline files, schedules and overrides (and a path to them) are the user's.
    fn blame(&self) -> Blame {
        Blame::User
    }
}

impl Blamed for PipelineError {
    fn blame(&self) -> Blame {
        PipelineError::blame(self)
    }
}

impl Blamed for datafusion::error::DataFusionError {
    fn blame(&self) -> Blame {
        blame_datafusion(self)
    }
}

/// Whose fault a DataFusion error is: planning and SQL problems, and a memory limit too
/// small for a stage, are the user's; I/O and object storage are external (a retry may
/// help); the rest (a cast that fails on a value at run time, an internal error) is neither.
pub fn blame_datafusion(e: &datafusion::error::DataFusionError) -> Blame {
    use datafusion::error::DataFusionError as E;
    match e {
        E::Plan(_)
        | E::SQL(..)
        | E::SchemaError(..)
        | E::NotImplemented(_)
        | E::Configuration(_) => Blame::User,
        // The memory limit is the run's configuration: the same limit fails again.
        E::ResourcesExhausted(_) => Blame::User,
        E::IoError(_) | E::ObjectStore(_) => Blame::External,
        E::ParquetError(p) => match p.as_ref() {
            datafusion::parquet::errors::ParquetError::External(_) => Blame::External,
            _ => Blame::Internal,
        },
        E::Context(_, inner) | E::Diagnostic(_, inner) => blame_datafusion(inner),
        E::Shared(inner) => blame_datafusion(inner),
        E::Collection(all) => all.first().map_or(Blame::Internal, blame_datafusion),
        E::External(inner) => {
            if inner.downcast_ref::<std::io::Error>().is_some()
                || inner.downcast_ref::<object_store::Error>().is_some()
            {
                Blame::External
            } else if let Some(df) = inner.downcast_ref::<datafusion::error::DataFusionError>() {
                blame_datafusion(df)
            } else {
                Blame::Internal
            }
        }
        _ => Blame::Internal,
    }
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
    Storage {
        url: String,
        message: String,
        /// Missing buckets and refused credentials are the user's; the rest may heal.
        blame: Blame,
    },
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
        /// Planning problems are the user's; run-time failures depend on the cause.
        blame: Blame,
    },
    /// A channel stopped while delivering (credentials refused, the sender's settings
    /// wrong, the ledger unwritable): the worst blame of the channels that stopped.
    #[error("delivery: {message}")]
    Delivery { message: String, blame: Blame },
    /// The state database (the send ledger, the run history) could not be read or
    /// written; its own error says whose fault (never the user's configuration, unless the
    /// database is from a newer winback).
    #[error("{message}")]
    State { message: String, blame: Blame },
    #[error("stage '{stage}' failed its test: {message}")]
    DataTest { stage: String, message: String },
    #[error("writing output '{table}': {message}")]
    Output { table: String, message: String },
    #[error("model '{model}': {message}")]
    Model { model: String, message: String },
    #[error("{0}")]
    Internal(String),
    /// Stopped on request (SIGTERM, Ctrl-C, a timeout) at a safe point.
    #[error("{0}")]
    Interrupted(String),
    /// The process's resident memory passed the run's cap; stopped before the OS kills it.
    #[error(
        "the run used {resident_mib} MiB of memory, above its cap of {cap_mib} MiB, {}: \
         raise memory_limit_mib in the pipeline file (or --memory-limit-mib), or run the \
         pipeline on a cluster; no output was changed",
        if stages.is_empty() { "between stages".to_string() } else { format!("while running stage(s) {}", stages.join(", ")) }
    )]
    MemoryCap {
        resident_mib: usize,
        cap_mib: usize,
        stages: Vec<String>,
    },
}

impl PipelineError {
    /// Whose fault the error is.
    pub fn blame(&self) -> Blame {
        match self {
            PipelineError::Config(_)
            | PipelineError::Source { .. }
            | PipelineError::Schema { .. }
            | PipelineError::DataTest { .. }
            | PipelineError::MemoryCap { .. } => Blame::User,
            PipelineError::Stage { blame, .. }
            | PipelineError::Delivery { blame, .. }
            | PipelineError::State { blame, .. } => *blame,
            PipelineError::Storage { blame, .. } => *blame,
            PipelineError::Output { .. } => Blame::External,
            PipelineError::Model { .. }
            | PipelineError::Internal(_)
            | PipelineError::Interrupted(_) => Blame::Internal,
        }
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        self.blame().exit_code()
    }

    /// A failure of the state database, blamed as its error says.
    pub fn state(e: &(impl Blamed + std::fmt::Display)) -> Self {
        PipelineError::State {
            message: e.to_string(),
            blame: e.blame(),
        }
    }

    /// A stage error from DataFusion, blamed by its cause.
    pub fn stage(stage: &str, file: &str, e: &datafusion::error::DataFusionError) -> Self {
        PipelineError::Stage {
            stage: stage.to_string(),
            file: file.to_string(),
            message: with_memory_hint(e.strip_backtrace().to_string()),
            blame: blame_datafusion(e),
        }
    }

    /// Writing an output failed; a memory limit too small for the writer is the user's.
    pub fn output(table: &str, message: impl std::fmt::Display) -> Self {
        let message = message.to_string();
        if is_memory_exhausted(&message) {
            return PipelineError::Stage {
                stage: table.to_string(),
                file: "writing its output".to_string(),
                message: with_memory_hint(message),
                blame: Blame::User,
            };
        }
        PipelineError::Output {
            table: table.to_string(),
            message,
        }
    }
}

/// DataFusion's words when an operator cannot get memory under the run's limit.
fn is_memory_exhausted(message: &str) -> bool {
    message.contains("Resources exhausted") || message.contains("Not enough memory")
}

/// DataFusion's advice names its own settings; say which of winback's to change.
fn with_memory_hint(message: String) -> String {
    if is_memory_exhausted(&message) {
        format!(
            "{message}\n  the memory limit is too small for this stage: raise --memory-limit-mib \
             or memory_limit_mib in the pipeline file (or leave both unset); operators that \
             can spill already do"
        )
    } else {
        message
    }
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
