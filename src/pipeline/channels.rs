//! The pipeline's channels, built from its configuration and the environment (secrets are
//! read here, at send time, never before), and the outbox folder the file channel and dry
//! runs write to. Planning builds them to reconcile, delivery to send.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::channels::{BuildContext, Channel, ChannelError};
use crate::config::Pipeline;

/// Build the channel `name` of the pipeline with the secrets of this process's
/// environment (`None`: the pipeline has no such channel).
pub fn build_channel(
    pipeline: &Pipeline,
    name: &str,
    outbox: &Path,
) -> Option<Result<Arc<dyn Channel>, ChannelError>> {
    let env = |k: &str| std::env::var(k).ok();
    let ctx = BuildContext {
        outbox: outbox.to_path_buf(),
    };
    let channel = pipeline.channels.get(name)?;
    Some(channel.config.build(name, &env, &ctx))
}

/// Every channel of the pipeline that can be built (its secrets set), by name, and why
/// each other one cannot.
pub fn build_channels(pipeline: &Pipeline, outbox: &Path) -> crate::delivery::reconcile::Built {
    let (mut built, mut missing) = (BTreeMap::new(), BTreeMap::new());
    for name in pipeline.channels.keys() {
        match build_channel(pipeline, name, outbox).expect("a channel of the pipeline") {
            Ok(c) => {
                built.insert(name.clone(), c);
            }
            Err(e) => {
                missing.insert(name.clone(), e.to_string());
            }
        }
    }
    (built, missing)
}

/// Where the file channel writes and a dry run puts its requests: beside the outputs on a
/// local disk, else in the state folder.
pub fn outbox_dir(
    root: &crate::storage::Location,
    as_of: &str,
    state_dir: Option<&std::path::Path>,
) -> std::path::PathBuf {
    let part = format!("as_of={as_of}");
    match root.local_dir() {
        Some(dir) => dir.join("_outbox").join(part),
        None => state_dir
            .unwrap_or(std::path::Path::new(".winback"))
            .join("outbox")
            .join(part),
    }
}
