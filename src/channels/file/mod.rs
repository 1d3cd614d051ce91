//! The file outbox, the default channel (no account needed): each batch is appended to
//! `<outbox>/<channel>/<campaign>.jsonl`, one message (with its address) per line, for a
//! marketing tool to pick up. Every write goes to a temporary file that is then renamed, so
//! a reader never sees a half-written line, even after a crash.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{Channel, ChannelError, ChannelSettings, Outcome, RequestPreview};
use crate::campaign::message::Message;

/// A file-outbox channel.
pub struct FileChannel {
    settings: ChannelSettings,
    root: PathBuf,
    /// Serialises writers: two batches of one campaign must not race on its file.
    lock: Arc<Mutex<()>>,
}

impl FileChannel {
    /// `outbox` is the run's outbox root, e.g. `<output>/_outbox/as_of=<D>/`.
    pub fn new(settings: ChannelSettings, outbox: PathBuf) -> FileChannel {
        FileChannel {
            settings,
            root: outbox,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The file a campaign's messages go to.
    pub fn path_for(&self, campaign: &str) -> PathBuf {
        self.root
            .join(safe_name(&self.settings.name))
            .join(format!("{}.jsonl", safe_name(campaign)))
    }
}

/// Keeps a name usable as one path component.
fn safe_name(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_start_matches('.') {
        "" => "_".to_string(),
        t => t.to_string(),
    }
}

/// Appends `lines` to `target` atomically: copy, append, fsync, rename.
fn append_atomic(target: &Path, lines: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        if target.exists() {
            std::fs::copy(target, &tmp)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&tmp)?;
        f.write_all(lines)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl FileChannel {
    fn write_batch(&self, batch: &[Message]) -> Vec<Outcome> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut campaigns: Vec<&str> = batch.iter().map(|m| m.campaign.as_str()).collect();
        campaigns.sort_unstable();
        campaigns.dedup();
        let mut out = vec![Outcome::Delivered { provider_id: None }; batch.len()];
        for campaign in campaigns {
            let mut buf = Vec::new();
            for m in batch.iter().filter(|m| m.campaign == campaign) {
                // A Message always serialises (plain strings and numbers).
                if serde_json::to_writer(&mut buf, m).is_ok() {
                    buf.push(b'\n');
                }
            }
            let path = self.path_for(campaign);
            if let Err(e) = append_atomic(&path, &buf) {
                let reason = format!("cannot write the outbox file {}: {e}", path.display());
                for (i, m) in batch.iter().enumerate() {
                    if m.campaign == campaign {
                        out[i] = Outcome::retriable(reason.clone(), None);
                    }
                }
            }
        }
        out
    }
}

impl Channel for FileChannel {
    fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    fn send<'a>(
        &'a self,
        batch: &'a [Message],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, ChannelError>> {
        Box::pin(async move {
            let me = FileChannel {
                settings: self.settings.clone(),
                root: self.root.clone(),
                lock: self.lock.clone(),
            };
            let owned = batch.to_vec();
            tokio::task::spawn_blocking(move || me.write_batch(&owned))
                .await
                .map_err(|e| ChannelError::Internal {
                    channel: self.settings.name.clone(),
                    reason: format!("outbox writer panicked: {e}"),
                })
        })
    }

    fn preview(&self, batch: &[Message]) -> Vec<RequestPreview> {
        let mut campaigns: Vec<&str> = batch.iter().map(|m| m.campaign.as_str()).collect();
        campaigns.sort_unstable();
        campaigns.dedup();
        campaigns
            .into_iter()
            .map(|c| {
                let ms: Vec<&Message> = batch.iter().filter(|m| m.campaign == c).collect();
                RequestPreview {
                    channel: self.settings.name.clone(),
                    method: "APPEND".into(),
                    url: self.path_for(c).display().to_string(),
                    headers: vec![],
                    body: serde_json::to_value(&ms).unwrap_or_default(),
                    idempotency_keys: ms.iter().map(|m| m.idempotency_key.clone()).collect(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
