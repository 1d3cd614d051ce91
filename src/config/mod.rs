//! Pipeline configuration: the raw file, `--set` overrides, and the validated pipeline.

pub mod budget;
pub mod campaigns;
pub mod engine;
pub mod file_format;
pub mod listen;
pub mod models;
pub mod names;
pub mod overrides;
pub mod raw;
mod resolve;
pub mod sources;
pub mod variables;

pub use engine::Engine;
pub use models::{ModelKind, ModelSpec};
pub use resolve::{
    ColumnKind, ColumnSpec, FileFormat, LoadOptions, OPT_OUTS_SOURCE, OutputSpec, Pipeline, Source,
    StageSpec, load,
};
pub use variables::Variable;
