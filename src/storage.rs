//! The only place that turns locations (paths and URLs) into object stores and registers them.
//!
//! A plain path or `file://` is the local filesystem (the default); `s3://`, `gs://` and
//! `az://` read their endpoint, region and credentials from the usual environment variables
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`); `memory://` is one in-process store shared by the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::PipelineError;

/// A directory-like location in some object store.
#[derive(Debug, Clone)]
pub struct Location {
    /// Always ends with '/'.
    pub url: Url,
    pub store: Arc<dyn ObjectStore>,
    /// The path inside the store.
    pub prefix: StorePath,
}

impl Location {
    /// True for the local filesystem, where directories can be renamed atomically.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        (self.url.scheme() == "file")
            .then(|| self.url.to_file_path().ok())
            .flatten()
    }

    /// A child location `self/name/`.
    pub fn child(&self, name: &str) -> Location {
        let url = self
            .url
            .join(&format!("{name}/"))
            .expect("joining a plain name onto a URL");
        Location {
            prefix: self.prefix.clone().join(name),
            url,
            store: self.store.clone(),
        }
    }

    /// Every object below this location.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>, PipelineError> {
        self.store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| storage_err(&self.url, e))
    }

    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), PipelineError> {
        self.store
            .put(&self.prefix.clone().join(name), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| storage_err(&self.url, e))
    }

    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, PipelineError> {
        match self.store.get(&self.prefix.clone().join(name)).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| storage_err(&self.url, e))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_err(&self.url, e)),
        }
    }

    /// Delete every object below this location.
    pub async fn delete_all(&self) -> Result<(), PipelineError> {
        for meta in self.list().await? {
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_err(&self.url, e)),
            }
        }
        Ok(())
    }
}

/// Turn a path or URL into a directory location, building its store.
pub fn locate(location: &str) -> Result<Location, PipelineError> {
    let url = to_dir_url(location)?;
    let store = store_for(&url)?;
    let prefix = StorePath::from_url_path(url.path()).map_err(|e| storage_err(&url, e))?;
    Ok(Location { url, store, prefix })
}

/// Build the store for `location` and register it with the session so SQL can read it.
pub fn register(ctx: &SessionContext, location: &str) -> Result<Location, PipelineError> {
    let loc = locate(location)?;
    let base = Url::parse(&format!("{}://{}", loc.url.scheme(), loc.url.authority()))
        .map_err(|e| storage_err(&loc.url, e))?;
    ctx.register_object_store(&base, loc.store.clone());
    Ok(loc)
}

/// What a source location names: a folder (every data file below it), one file, or the
/// files matching a glob pattern (`data/2026-*.parquet`, `s3://b/raw/**/*.csv`).
#[derive(Debug, Clone)]
pub enum Selection {
    Folder,
    File(StorePath),
    /// Matched against each object's path relative to the location.
    Glob(glob::Pattern),
}

impl Selection {
    pub fn describe(&self) -> String {
        match self {
            Selection::Folder => "folder".into(),
            Selection::File(_) => "file".into(),
            Selection::Glob(p) => format!("glob '{}'", p.as_str()),
        }
    }
}

/// The characters that make a location a glob pattern (`?` only in plain paths: in a URL it
/// starts the query).
fn glob_start(location: &str) -> Option<usize> {
    let chars: &[char] = if location.contains("://") {
        &['*', '[']
    } else {
        &['*', '?', '[']
    };
    location.find(chars)
}

/// Resolve a source location into the folder it lives in and what it selects there. A
/// location with `*`, `?` or `[` is a glob; otherwise one existing file is that file, and
/// anything else is a folder. The store is registered with the session for SQL to read.
pub async fn register_selection(
    ctx: &SessionContext,
    location: &str,
) -> Result<(Location, Selection), PipelineError> {
    let user = |message: String| PipelineError::Storage {
        url: location.to_string(),
        message,
        blame: crate::error::Blame::User,
    };
    if let Some(at) = glob_start(location) {
        let base_end = location[..at].rfind('/').map_or(0, |i| i + 1);
        let (base, pattern) = location.split_at(base_end);
        let base = if base.is_empty() { "." } else { base };
        let pattern = glob::Pattern::new(pattern)
            .map_err(|e| user(format!("not a valid glob pattern: {e}")))?;
        return Ok((register(ctx, base)?, Selection::Glob(pattern)));
    }
    // A path that ends in '/', or names only a bucket, is a folder.
    let (base, name) = match location.rfind('/') {
        Some(i) => (&location[..=i], &location[i + 1..]),
        None => ("./", location),
    };
    if !name.is_empty() && !base.ends_with("://") {
        let parent = register(ctx, base)?;
        let path = parent.prefix.clone().join(name);
        let is_file = match parent.local_dir() {
            Some(dir) => dir.join(name).is_file(),
            // Not found (a prefix, not an object): a folder; other failures show when
            // the folder is listed.
            None => parent.store.head(&path).await.is_ok(),
        };
        if is_file {
            return Ok((parent, Selection::File(path)));
        }
    }
    Ok((register(ctx, location)?, Selection::Folder))
}

impl Location {
    /// The files a selection names, sorted by path. A folder gives every file with the
    /// extension, skipping names that start with `_` or `.` at any level (markers,
    /// staging, hidden files); a glob gives every file it matches; a file gives itself.
    pub async fn select(
        &self,
        selection: &Selection,
        extension: &str,
    ) -> Result<Vec<ObjectMeta>, PipelineError> {
        let mut metas: Vec<ObjectMeta> = match selection {
            Selection::File(path) => vec![
                self.store
                    .head(path)
                    .await
                    .map_err(|e| storage_err(&self.url, e))?,
            ],
            Selection::Folder | Selection::Glob(_) => {
                let options = glob::MatchOptions {
                    require_literal_separator: true,
                    ..glob::MatchOptions::new()
                };
                self.list()
                    .await?
                    .into_iter()
                    .filter(|m| {
                        let rel = m
                            .location
                            .as_ref()
                            .strip_prefix(self.prefix.as_ref())
                            .unwrap_or(m.location.as_ref())
                            .trim_start_matches('/');
                        match selection {
                            Selection::Glob(p) => p.matches_with(rel, options),
                            _ => {
                                rel.ends_with(extension)
                                    && !rel
                                        .split('/')
                                        .any(|part| part.starts_with('_') || part.starts_with('.'))
                            }
                        }
                    })
                    .collect()
            }
        };
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(metas)
    }
}

fn to_dir_url(location: &str) -> Result<Url, PipelineError> {
    let mut url = if location.contains("://") {
        Url::parse(location).map_err(|e| PipelineError::Storage {
            url: location.to_string(),
            message: format!("not a valid URL: {e}"),
            blame: crate::error::Blame::User,
        })?
    } else {
        let path =
            normalize(
                &std::path::absolute(location).map_err(|e| PipelineError::Storage {
                    url: location.to_string(),
                    message: e.to_string(),
                    blame: crate::error::Blame::User,
                })?,
            );
        Url::from_directory_path(&path).map_err(|_| PipelineError::Storage {
            url: location.to_string(),
            message: "not a usable local path".into(),
            blame: crate::error::Blame::User,
        })?
    };
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// Resolve `.` and `..` without touching the filesystem (the folder may not exist yet).
fn normalize(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Retries of one storage request: a few quick ones for a blip. An outage is the
/// scheduler's to retry (whole runs, with its own backoff), not each request's for minutes.
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
        ..object_store::RetryConfig::default()
    }
}

fn store_for(url: &Url) -> Result<Arc<dyn ObjectStore>, PipelineError> {
    let err = |e: object_store::Error| storage_err(url, e);
    Ok(match url.scheme() {
        "file" => Arc::new(object_store::local::LocalFileSystem::new()),
        "memory" => memory_store(url.authority()),
        "s3" | "s3a" => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
            if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| e.starts_with("http://")) {
                builder = builder.with_allow_http(true);
            }
            if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err()
            {
                builder = builder.with_region("us-east-1");
            }
            Arc::new(builder.with_retry(retry()).build().map_err(err)?)
        }
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry())
                .build()
                .map_err(err)?,
        ),
        "az" | "abfs" | "abfss" | "azure" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry())
                .build()
                .map_err(err)?,
        ),
        other => {
            return Err(PipelineError::Storage {
                url: url.to_string(),
                message: format!(
                    "unsupported scheme '{other}' (use a path, file://, s3://, gs://, az:// or memory://)"
                ),
                blame: crate::error::Blame::User,
            });
        }
    })
}

/// `memory://NAME` stores live as long as the process, so a run can write what a later
/// step of the same process reads.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .expect("memory store registry lock");
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// A URL fit for logs, errors and manifests: no query string (SAS tokens), no password.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Storage errors carry the redacted URL, and whose fault they are: a bucket or object
/// that does not exist, or credentials the store refuses, are the configuration's (a retry
/// cannot help); anything else (connection refused, timeouts, 5xx) may heal.
pub fn storage_err(url: &Url, e: impl std::fmt::Display) -> PipelineError {
    let message = e.to_string();
    PipelineError::Storage {
        url: redacted(url),
        blame: storage_blame(&message),
        message,
    }
}

fn storage_blame(message: &str) -> crate::error::Blame {
    const USER: [&str; 9] = [
        "404 Not Found",
        "403 Forbidden",
        "401 Unauthorized",
        "NoSuchBucket",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ContainerNotFound",
        "invalid URL",
    ];
    if USER.iter().any(|m| message.contains(m)) {
        crate::error::Blame::User
    } else {
        crate::error::Blame::External
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_become_file_directory_urls() {
        let loc = locate("some/dir").unwrap();
        assert_eq!(loc.url.scheme(), "file");
        assert!(loc.url.path().ends_with("/some/dir/"));
        assert!(loc.local_dir().is_some());
        let up = locate("pipelines/../demo-data").unwrap();
        assert!(up.url.path().ends_with("/demo-data/"), "{}", up.url);
    }

    #[test]
    fn unknown_schemes_are_refused_with_the_alternatives() {
        let e = locate("ftp://host/x").unwrap_err().to_string();
        assert!(e.contains("unsupported scheme 'ftp'"), "{e}");
    }

    #[tokio::test]
    async fn memory_locations_share_one_store_per_name() {
        let a = locate("memory://shared/x").unwrap();
        a.put("f.txt", b"hi".to_vec()).await.unwrap();
        let b = locate("memory://shared/x").unwrap();
        assert_eq!(b.get("f.txt").await.unwrap().unwrap(), b"hi");
    }
}
