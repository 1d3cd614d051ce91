//! The file outbox, the default channel (no account needed): each batch is appended to
//! `<outbox>/<channel>/<campaign>.jsonl`, one message (with its address) per line, for a
//! marketing tool to pick up.
//!
//! An append writes the batch's lines with one `write` on a file opened for appending,
//! then `fsync`s it: time and bytes in proportion to the batch, not to the file. A line
//! counts once its newline is written; a crash in the middle of a write leaves an
//! unterminated tail, which the next append (and reconciliation) cuts back to the last
//! newline before doing anything else, so no reader ever finds a torn line between two
//! complete ones. A crash between the write and the ledger's record leaves the rows
//! `unknown`; reconciliation settles them by reading the outbox itself (see `lookup`).

mod call_list;
mod outbox;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::channel::{Channel, RequestPreview};
use super::lookup::{Settlement, Unsettled};
use super::outcome::{ChannelError, Outcome, Sent};
use super::settings::{ChannelSettings, Limits, channel_config};
use crate::message::Message;

channel_config!(
    /// `type = "file"`: JSONL files under the run's outbox (a call list, CSV, for
    /// `medium = "call"`).
    FileConfig {}
);

impl FileConfig {
    /// Checks the table without I/O.
    pub fn validate(&self, name: &str) -> Result<ChannelSettings, ChannelError> {
        self.common().resolve(
            name,
            Limits {
                type_name: "file",
                medium: None,
                default_batch: 10_000,
                max_batch: usize::MAX,
                reconcile_after: std::time::Duration::ZERO,
                schedule: None,
            },
        )
    }
}

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
        self.file_in(&self.root, campaign)
    }

    /// The file of `campaign` under an outbox folder: `<channel>/<campaign>.jsonl`, or
    /// `.csv` for a call list (medium `call`).
    fn file_in(&self, root: &std::path::Path, campaign: &str) -> PathBuf {
        let ext = if self.calls() { "csv" } else { "jsonl" };
        root.join(safe_name(&self.settings.name))
            .join(format!("{}.{ext}", safe_name(campaign)))
    }

    fn calls(&self) -> bool {
        self.settings.medium == crate::message::Medium::Call
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

impl FileChannel {
    /// A handle for a blocking task (shares the writer lock).
    fn handle(&self) -> FileChannel {
        FileChannel {
            settings: self.settings.clone(),
            root: self.root.clone(),
            lock: self.lock.clone(),
        }
    }

    /// The outbox folder of the run for `as_of`: the partition beside this run's one when
    /// the outbox is partitioned by `as_of=`, else this run's.
    fn root_for(&self, as_of: chrono::NaiveDate) -> PathBuf {
        let partitioned = self
            .root
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("as_of="));
        match self.root.parent() {
            Some(parent) if partitioned => parent.join(format!("as_of={as_of}")),
            _ => self.root.clone(),
        }
    }

    fn settle(&self, sends: &[Unsettled]) -> Result<Vec<Settlement>, ChannelError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys_of: std::collections::HashMap<PathBuf, std::collections::HashSet<String>> =
            std::collections::HashMap::new();
        let mut out = Vec::with_capacity(sends.len());
        for s in sends {
            let path = self.file_in(&self.root_for(s.as_of), &s.campaign);
            if !keys_of.contains_key(&path) {
                let keys = if self.calls() {
                    call_list::keys(&path)
                } else {
                    outbox::keys(&path)
                };
                let keys = keys.map_err(|e| ChannelError::Internal {
                    channel: self.settings.name.clone(),
                    reason: format!("cannot read the outbox file {}: {e}", path.display()),
                })?;
                keys_of.insert(path.clone(), keys);
            }
            let found = keys_of
                .get(&path)
                .is_some_and(|k| k.contains(&s.idempotency_key));
            out.push(if found {
                Settlement::Accepted {
                    provider_id: None,
                    reason: "reconciled: the line is in the outbox".into(),
                }
            } else {
                Settlement::NotAccepted {
                    reason: "reconciled: the outbox holds no line with this key".into(),
                }
            });
        }
        Ok(out)
    }

    fn write_batch(&self, batch: &[Message]) -> Vec<Outcome> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut campaigns: Vec<&str> = batch.iter().map(|m| m.campaign.as_str()).collect();
        campaigns.sort_unstable();
        campaigns.dedup();
        let mut out = vec![Outcome::Delivered { provider_id: None }; batch.len()];
        for campaign in campaigns {
            let path = self.path_for(campaign);
            let mut buf = Vec::new();
            let header = if self.calls() {
                call_list::header()
            } else {
                vec![]
            };
            for m in batch.iter().filter(|m| m.campaign == campaign) {
                if self.calls() {
                    buf.extend(call_list::line(m));
                // A Message always serialises (plain strings and numbers).
                } else if serde_json::to_writer(&mut buf, m).is_ok() {
                    buf.push(b'\n');
                }
            }
            if let Err(e) = outbox::append_under(&path, &header, &buf) {
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

    fn send<'a>(&'a self, batch: &'a [Message]) -> BoxFuture<'a, Sent> {
        Box::pin(async move {
            let me = self.handle();
            let owned = batch.to_vec();
            match tokio::task::spawn_blocking(move || me.write_batch(&owned)).await {
                Ok(outcomes) => Sent::settled(outcomes),
                Err(e) => Sent::halted(
                    batch.len(),
                    ChannelError::Internal {
                        channel: self.settings.name.clone(),
                        reason: format!("outbox writer panicked: {e}"),
                    },
                ),
            }
        })
    }

    /// The outbox is this channel's own record: a line with the key means it went out;
    /// none (once the file's torn tail, if any, is cut) means it did not.
    fn lookup<'a>(
        &'a self,
        sends: &'a [Unsettled],
    ) -> BoxFuture<'a, Result<Vec<Settlement>, ChannelError>> {
        Box::pin(async move {
            let me = self.handle();
            let owned = sends.to_vec();
            tokio::task::spawn_blocking(move || me.settle(&owned))
                .await
                .map_err(|e| ChannelError::Internal {
                    channel: self.settings.name.clone(),
                    reason: format!("outbox reader panicked: {e}"),
                })?
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
