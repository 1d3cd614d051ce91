//! Committing a run's staged tables and its manifest, all or nothing.
//!
//! **On a local disk** every run of an `as_of` becomes a version folder, and one rename
//! switches all of its tables and its manifest at once:
//!
//! ```text
//! <output>/_versions/as_of=<D>/<run_id>/<table>/part-*.parquet, _SUCCESS
//! <output>/_versions/as_of=<D>/<run_id>/manifest.json
//! <output>/_versions/as_of=<D>/current -> <run_id>           (swapped by one rename)
//! <output>/<table>/as_of=<D>  -> ../_versions/as_of=<D>/current/<table>
//! <output>/_runs/as_of=<D>/manifest.json -> ../../_versions/as_of=<D>/current/manifest.json
//! ```
//!
//! The table links never change once made, so readers keep using the plain hive layout
//! (`<output>/<table>/as_of=<D>/`) and see either the whole previous run or the whole new
//! one. Tables a run did not write (`--select`) are carried into its version by hard
//! links. The previous version is kept for readers still reading it; older ones are
//! removed.
//!
//! **On object stores** nothing can be renamed: each table's files are copied into
//! `<output>/<table>/as_of=<D>/` with a `_SUCCESS` marker holding the run id, and
//! `_runs/as_of=<D>/manifest.json` is written last. The reader's rule: trust a table when
//! its `_SUCCESS` names the `run_id` of `manifest.json`.

use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;

use super::{OutputWriter, WrittenTable, out_err};
use crate::error::PipelineError;

/// The manifest's file name, beside every run's tables.
pub const MANIFEST: &str = "manifest.json";

impl OutputWriter {
    /// Commit `tables` and `manifest` (the run's manifest, JSON): afterwards readers see
    /// this run, or, when it fails, the previous run untouched. Not cancellable: it is
    /// short, and stopping half-way is what it exists to prevent. Without a manifest (a
    /// table added by a tool such as `ltv backtest`) the previous manifest stays.
    pub async fn commit(
        &self,
        tables: &[WrittenTable],
        manifest: Option<&[u8]>,
    ) -> Result<(), PipelineError> {
        match (self.staging.local_dir(), self.root.local_dir()) {
            (Some(staged), Some(root)) => {
                let result = commit_local(
                    &staged,
                    &root,
                    self.partition(),
                    &self.run_id,
                    tables,
                    manifest,
                );
                if result.is_err() {
                    let version = versions_dir(&root, self.partition()).join(&self.run_id);
                    let _ = std::fs::remove_dir_all(version);
                }
                result?;
            }
            _ => self.commit_remote(tables, manifest).await?,
        }
        self.discard().await
    }

    /// Replace this run's committed `manifest.json` (deliveries happen after the commit).
    pub async fn update_manifest(&self, manifest: &[u8]) -> Result<(), PipelineError> {
        match self.root.local_dir() {
            Some(root) => {
                let version = versions_dir(&root, self.partition()).join(&self.run_id);
                let tmp = version.join(format!(".{MANIFEST}.tmp"));
                std::fs::write(&tmp, manifest)
                    .and_then(|()| std::fs::rename(&tmp, version.join(MANIFEST)))
                    .map_err(|e| out_err(MANIFEST, e))
            }
            None => {
                let runs = self.root.child("_runs").child(self.partition());
                runs.put(MANIFEST, manifest.to_vec()).await
            }
        }
    }

    async fn commit_remote(
        &self,
        tables: &[WrittenTable],
        manifest: Option<&[u8]>,
    ) -> Result<(), PipelineError> {
        for t in tables {
            let staged = self.staging.child(&t.table);
            let target = self.final_location(&t.table);
            target.delete_all().await?;
            for meta in staged.list().await? {
                let name = meta
                    .location
                    .as_ref()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                let dest = target.prefix.clone().join(name);
                target
                    .store
                    .copy(&meta.location, &dest)
                    .await
                    .map_err(|e| out_err(&t.table, e))?;
            }
            target
                .put("_SUCCESS", self.run_id.as_bytes().to_vec())
                .await?;
        }
        // Last: the manifest is what readers trust.
        match manifest {
            Some(m) => {
                let runs = self.root.child("_runs").child(self.partition());
                runs.put(MANIFEST, m.to_vec()).await
            }
            None => Ok(()),
        }
    }
}

fn versions_dir(root: &Path, partition: &str) -> PathBuf {
    root.join("_versions").join(partition)
}

fn commit_local(
    staged: &Path,
    root: &Path,
    partition: &str,
    run_id: &str,
    tables: &[WrittenTable],
    manifest: Option<&[u8]>,
) -> Result<(), PipelineError> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| out_err(&what, e)
    };
    let versions = versions_dir(root, partition);
    std::fs::create_dir_all(&versions).map_err(err("_versions"))?;
    let version = versions.join(run_id);
    // 1. The staged tables become this run's version.
    for t in tables {
        std::fs::write(staged.join(&t.table).join("_SUCCESS"), run_id).map_err(err(&t.table))?;
    }
    std::fs::rename(staged, &version).map_err(err("_staging"))?;
    if let Some(m) = manifest {
        std::fs::write(version.join(MANIFEST), m).map_err(err(MANIFEST))?;
    }
    // 2. Tables of the previous version this run did not write (--select) stay, and so
    //    does its manifest when this commit brings none.
    let current = versions.join("current");
    if let Ok(previous) = std::fs::canonicalize(&current) {
        carry_forward(&previous, &version, tables)?;
        let old = previous.join(MANIFEST);
        if manifest.is_none() && old.exists() {
            std::fs::hard_link(&old, version.join(MANIFEST)).map_err(err(MANIFEST))?;
        }
    }
    // 3. Every table has its stable link before anything switches, so a failure here
    //    leaves the previous run in place.
    let mut legacy = Vec::new();
    let names: Vec<String> = table_dirs(&version)?;
    for name in &names {
        let link = root.join(name).join(partition);
        let target = Path::new("../_versions")
            .join(partition)
            .join("current")
            .join(name);
        ensure_link(&link, &target, &mut legacy).map_err(err(name))?;
    }
    let manifest_link = root.join("_runs").join(partition).join(MANIFEST);
    let target = Path::new("../../_versions")
        .join(partition)
        .join("current")
        .join(MANIFEST);
    if version.join(MANIFEST).exists() {
        ensure_link(&manifest_link, &target, &mut legacy).map_err(err(MANIFEST))?;
    }
    // 4. The switch: one rename of a fresh `current` link over the old one.
    let previous = std::fs::read_link(&current).ok();
    let fresh = versions.join(format!(".current-{run_id}"));
    let _ = std::fs::remove_file(&fresh);
    std::os::unix::fs::symlink(run_id, &fresh).map_err(err("current"))?;
    std::fs::rename(&fresh, &current).map_err(err("current"))?;
    // 5. After the switch: outputs written by winback before versions existed (real
    //    folders where the links go) are replaced by links once; then old versions go.
    for (path, target) in legacy {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed
            .and_then(|()| std::os::unix::fs::symlink(&target, &path))
            .map_err(err("legacy output"))?;
    }
    remove_old_versions(&versions, run_id, previous.as_deref());
    Ok(())
}

/// The table folders of a version.
fn table_dirs(version: &Path) -> Result<Vec<String>, PipelineError> {
    let entries = std::fs::read_dir(version).map_err(|e| out_err("_versions", e))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Hard-link the tables of `previous` that `tables` does not replace into `version`.
fn carry_forward(
    previous: &Path,
    version: &Path,
    tables: &[WrittenTable],
) -> Result<(), PipelineError> {
    for name in table_dirs(previous)? {
        if tables.iter().any(|t| t.table == name) {
            continue;
        }
        let (from, to) = (previous.join(&name), version.join(&name));
        let err = |e: std::io::Error| out_err(&name, e);
        std::fs::create_dir_all(&to).map_err(err)?;
        for file in std::fs::read_dir(&from).map_err(err)?.flatten() {
            std::fs::hard_link(file.path(), to.join(file.file_name())).map_err(err)?;
        }
    }
    Ok(())
}

/// Make `link` a symlink to `target`. A real file or folder already there (written before
/// versions existed) is noted in `legacy` and replaced after the switch.
fn ensure_link(
    link: &Path,
    target: &Path,
    legacy: &mut Vec<(PathBuf, PathBuf)>,
) -> std::io::Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if std::fs::read_link(link)? != target {
                std::fs::remove_file(link)?;
                std::os::unix::fs::symlink(target, link)?;
            }
            Ok(())
        }
        Ok(_) => {
            legacy.push((link.to_path_buf(), target.to_path_buf()));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(target, link)
        }
        Err(e) => Err(e),
    }
}

/// Keep the current version and the one it replaced (a reader may still be in it).
fn remove_old_versions(versions: &Path, current: &str, previous: Option<&Path>) {
    let Ok(entries) = std::fs::read_dir(versions) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let keep =
            name == "current" || name == current || previous.is_some_and(|p| p.as_os_str() == name);
        if !keep
            && entry.path().is_dir()
            && let Err(e) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an old output version");
        }
    }
}
